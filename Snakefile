# isslide: Sentinel-1 InSAR -> ISSLIDE dataset -> detectors.  snakemake --cores 16
# Thin by design: config, validation, includes, rule all. Logic lives in src/isslide.


# The embedded demo is the default; a --configfile replaces it (it is not merged into it).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/insar.smk"
include: "workflow/rules/interferograms.smk"
include: "workflow/rules/detect.smk"
include: "workflow/rules/report.smk"


# detection.only: interferograms and detection with a model from another run; the rules that
# would make (or remake) labels, datasets and models are not even defined.
if not config["detection"]["only"]:

    include: "workflow/rules/labels.smk"
    include: "workflow/rules/dataset.smk"
    include: "workflow/rules/train.smk"


rule all:
    default_target: True
    input:
        interferogram_targets(),
        [] if config["detection"]["only"] else dataset_targets(),
        [] if config["detection"]["only"] else evaluation_targets(),
        detection_targets(),
        report_targets(),
