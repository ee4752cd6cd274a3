# Rasterised annotations: one label raster per interferogram (isslide.labels).
# results/labels/{stack}/{delay}d/{reference}_{secondary}.tif, int32 phenomenon id,
# 0 background, -1 layover/shadow/nodata. Input: that pair's annotation file set and its
# interferogram's layover_shadow.tif / coherence.tif (grid), so editing one shapefile
# re-rasterises only that pair.

LABELS = "results/labels"
SHAPEFILE_PARTS = [".shp", ".shx", ".dbf", ".prj", ".cpg"]


def annotation_path(wildcards):
    stem = f"{ANNOTATIONS}/{wildcards.stack}/{wildcards.delay}d/{wildcards.reference}_{wildcards.secondary}"
    return stem + "." + ANNOTATION_EXT


def annotation_inputs(wildcards):
    """The annotation file set of a pair: made by the simulator (simulated stacks) or found on
    disk. Absent files are left to the job, which fails with a one-line message unless
    annotations.missing is no_motion."""
    path = annotation_path(wildcards)
    if ANNOTATION_EXT == "shp":
        stem = path[: -len(".shp")]
        if PLAN[wildcards.stack].source == "simulated":
            return [stem + ext for ext in SHAPEFILE_PARTS]
        return [
            stem + ext
            for ext in SHAPEFILE_PARTS + [".qpj"]
            if os.path.exists(stem + ext)
        ]
    if PLAN[wildcards.stack].source == "simulated" or os.path.exists(path):
        return [path]
    return []


def rasterize_input(wildcards):
    pair = IFG + "/" + PAIR.format(**wildcards)
    return {
        "annotation": annotation_inputs(wildcards),
        "layover_shadow": pair + "/layover_shadow.tif",
        "coherence": pair + "/coherence.tif",
    }


rule rasterize_labels:
    input:
        unpack(rasterize_input),
    output:
        labels=LABELS + "/" + PAIR + ".tif",
    log:
        "logs/rasterize_labels/" + PAIR + ".log",
    benchmark:
        "benchmarks/rasterize_labels/" + PAIR + ".tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        annotation=annotation_path,
        all_touched=config["labels"]["all_touched"],
        missing=config["annotations"]["missing"],
    script:
        "../scripts/rasterize_labels.py"
