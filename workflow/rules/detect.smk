# Detection on whole interferograms (isslide.detect, docs/detection.md).
# detection_model picks the model (detection.model: best F1, or a folder) and its threshold;
# detect runs it over each interferogram (probability, mask, per-pair candidates);
# stack_candidates gathers a stack's candidates (repetitions, shared ids); pair_candidates
# writes each interferogram's share of them, ready to be saved as its annotation file;
# detection_preview draws the first interferograms of a stack for the report.
# GPU: detect declares resources gpu=1 unless detection.device is cpu (as train/evaluate).


rule detection_model:
    input:
        unpack(detection_model_input),
    output:
        choice=f"{DETECTIONS}/model.json",
    log:
        "logs/detection_model/model.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        folders=detection_model_dirs(),
        choice=config["detection"]["model"],
        threshold=config["detection"]["threshold"],
    script:
        "../scripts/detection_model.py"


rule detect:
    input:
        unpack(detect_input),
    output:
        probability=f"{DETECTIONS}/{PAIR}/probability.tif",
        probability_style=f"{DETECTIONS}/{PAIR}/probability.qml",
        mask=f"{DETECTIONS}/{PAIR}/mask.tif",
        mask_style=f"{DETECTIONS}/{PAIR}/mask.qml",
        summary=f"{DETECTIONS}/{PAIR}/detection.json",
        candidates=f"{WORK}/detections/{PAIR}.gpkg",
    log:
        f"logs/detect/{PAIR}.log",
    benchmark:
        f"benchmarks/detect/{PAIR}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["detection"]["threads"]
    resources:
        gpu=detection_gpu,
        mem_mb=8000,
        runtime=60,
    params:
        cfg=detection_params,
    script:
        "../scripts/detect.py"


rule stack_candidates:
    input:
        candidates=stack_detection_input,
    output:
        candidates=f"{DETECTIONS}/{{stack}}/candidates.gpkg",
        style=f"{DETECTIONS}/{{stack}}/candidates.qml",
    log:
        "logs/stack_candidates/{stack}.log",
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    script:
        "../scripts/stack_candidates.py"


rule pair_candidates:
    input:
        stack=f"{DETECTIONS}/{{stack}}/candidates.gpkg",
    output:
        candidates=f"{DETECTIONS}/{PAIR}/candidates.gpkg",
        style=f"{DETECTIONS}/{PAIR}/candidates.qml",
    log:
        f"logs/pair_candidates/{PAIR}.log",
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    script:
        "../scripts/pair_candidates.py"


rule detection_preview:
    input:
        unpack(detection_preview_input),
    output:
        preview=report(
            f"{DETECTIONS}/{{stack}}/preview.png",
            caption="../report/detection_preview.rst",
            category="Detection",
            labels={"stack": "{stack}"},
        ),
    log:
        "logs/detection_preview/{stack}.log",
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        pairs=preview_pairs,
    script:
        "../scripts/detection_preview.py"
