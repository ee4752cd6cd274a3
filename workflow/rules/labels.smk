# Rasterised annotations: one label raster per interferogram (isslide.labels).
# results/labels/{stack}/{delay}d/{reference}_{secondary}.tif, int32 phenomenon id,
# 0 background, -1 layover/shadow/nodata. Input: that pair's annotation file set and its
# interferogram's layover_shadow.tif / coherence.tif (grid) and phase.tif (checked: a corrupt,
# all-nodata or constant interferogram stops here), so editing one shapefile re-rasterises only
# that pair.


rule rasterize_labels:
    input:
        unpack(rasterize_input),
    output:
        labels=f"{LABELS}/{PAIR}.tif",
    log:
        f"logs/rasterize_labels/{PAIR}.log",
    benchmark:
        f"benchmarks/rasterize_labels/{PAIR}.tsv"
    conda:
        "../../envs/geo.yaml"
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
