"""What each rule gets: params, inputs, targets and seeds, computed from the validated config.

``workflow/rules/common.smk`` builds one :class:`Workflow` from the validated config and the plan
(:func:`isslide.preflight.preflight`) and its input and param functions are one-line calls of its
methods, so the code the workflow runs is the code the tests exercise (tests/test_workflow_lib.py,
without Snakemake). Paths come from :mod:`isslide.layout`; a backend's own inputs from its
registry entry (:data:`isslide.insar.BACKENDS`).

Params hold only what shapes a rule's outputs, with sorted keys (:func:`canonical`), so unrelated
config edits, or reordered keys, never rerun a job (Snakemake compares params by repr).
"""

from __future__ import annotations

import os

from .insar import get_backend
from .layout import (
    DATASET,
    DETECTIONS,
    EVALUATION,
    FIGURES,
    IFG,
    LABELS,
    MODELS,
    PAIR,
    READY,
    REPORT,
    SHAPEFILE_PARTS,
    SYNTH,
    TRUTH,
    WORK,
)
from .models import REGISTRY
from .plan import expected_dates, fmt

REALISM_FIGURES = ("realism", "layover_blocks")


def canonical(obj):
    """Mappings with sorted keys, recursively: params that do not change when a config file's
    keys are reordered (Snakemake compares params by repr, so key order would rerun jobs).
    """
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list | tuple):
        return [canonical(v) for v in obj]
    return obj


# --- simulation (also used outside the workflow: tests, benchmarks) ---------------------------

SIMULATION_RULES = ("scene", "acquisition", "annotations")


def simulation_time_axis(config: dict) -> dict:
    """Origin and step of a simulated stack's time axis (never dates.end)."""
    return {"start": config["dates"]["start"], "revisit_days": config["revisit_days"]}


def simulation_params(config: dict, stack: str, rule: str | None = None, dates=None) -> dict:
    """The simulation rules' params for a validated config.

    ``rule`` "scene": the whole world but no date list (extending dates.end never reruns the
    scene); "acquisition": the time axis only (the date is the wildcard); "annotations" or None:
    the scene's params plus the planned ``dates`` (default: the config's expected dates) and the
    delays (repetition counts depend on them), a superset every library entry accepts.
    """
    scene = {
        "simulation": config["simulation"],
        "insar": config["insar"],
        "seed": config["seed"],
        "stack": config["stacks"][stack],
        **simulation_time_axis(config),
    }
    if rule == "scene":
        return canonical(scene)
    if rule == "acquisition":
        return canonical(simulation_time_axis(config))
    if rule not in (None, "annotations"):
        raise ValueError(f"rule {rule!r}: one of {SIMULATION_RULES}")
    if dates is None:
        dates = [fmt(d) for d in expected_dates(config)]
    return canonical({**scene, "dates": list(dates), "delays": config["delays"]})


def insar_params(config: dict, stack: str, backend: str | None = None, snap_install=None) -> dict:
    """An InSAR step's params: only what ``backend`` (default: the config's) uses, so
    unrelated config edits never rerun InSAR jobs."""
    entry = get_backend(backend or config["backend"])
    params = {"insar": config["insar"], "backend": entry.name}
    if entry.section:
        st = config["stacks"][stack]
        params[entry.section] = config[entry.section]
        params["stack"] = {k: st.get(k) for k in ("subswaths", "aoi", "track", "pass")}
        if snap_install:
            params["snap_install"] = snap_install
    return params


def training_seed(config: dict) -> int:
    """``training.seed``, else the top-level ``seed``."""
    seed = config["training"]["seed"]
    return config["seed"] if seed is None else seed


def training_params(config: dict, model: str) -> dict:
    """Only what shapes this model's training, so unrelated config edits never retrain it
    (and the two evaluation keys its threshold choice on val.npz uses: changing them reruns the
    rule, which resumes the finished checkpoint and only re-chooses the thresholds)."""
    from .models import model_training_config

    return {
        "training": model_training_config(model, config["training"]),
        "evaluation": {k: config["evaluation"][k] for k in ("n_thresholds", "motion_only")},
        "seed": training_seed(config),
    }


def evaluation_params(config: dict) -> dict:
    training = config["training"]
    return {
        "training": {"device": training["device"], "amp": training["amp"]},
        "evaluation": {
            k: config["evaluation"][k]
            for k in ("batch_size", "n_thresholds", "motion_only", "min_images")
        },
    }


class Workflow:
    """Every rule's params, inputs and the targets, for one validated config and its plan."""

    def __init__(self, config: dict, plan: dict, snap_install: dict | None = None):
        self.config = config
        self.plan = plan
        self.backend = get_backend(config["backend"])
        self.snap_install = snap_install
        self.insar_steps = self.backend.steps(config)
        # SNAP recipe isslide: Interferogram removes the topographic phase (DEM input), there is
        # no remove_topographic_phase rule, and goldstein reads the interferogram.
        self.topo_in_interferogram = "remove_topographic_phase" not in self.insar_steps
        self.fused = bool((config.get(self.backend.section or "", None) or {}).get("fuse"))
        self.simulated = sorted(n for n, s in plan.items() if s.source == "simulated")
        self.imported = sorted(n for n, s in plan.items() if s.source == "interferograms")
        self.detection = config["detection"]
        self._grids: dict = {}

    # -- plan ---------------------------------------------------------------------------------
    def all_pairs(self):
        return [p for s in self.plan.values() for p in s.pairs]

    def pair_paths(self, pattern: str) -> list[str]:
        """Expand a pattern with {stack}, {delay}, {reference}, {secondary} over all pairs."""
        return [pattern.format(**p.wildcards) for p in self.all_pairs()]

    def stack_pair_paths(self, stack: str, pattern: str) -> list[str]:
        return [pattern.format(**p.wildcards) for p in self.plan[stack].pairs]

    def stack_dates(self, stack: str) -> list[str]:
        return [fmt(d) for d in self.plan[stack].dates]

    def stack_pairs(self, stack: str) -> list[dict]:
        """The pairs of a stack as dicts (delay, reference, secondary), in plan order."""
        return [
            {k: p.wildcards[k] for k in ("delay", "reference", "secondary")}
            for p in self.plan[stack].pairs
        ]

    def trained_models(self) -> list[str]:
        return list(self.config["training"]["models"])

    @staticmethod
    def regex(names) -> str:
        """A wildcard constraint matching exactly ``names`` (one no name matches when empty)."""
        return "|".join(names) if names else "(?!)"

    # -- simulation -----------------------------------------------------------------------------
    def simulation_scene_input(self) -> dict:
        """The source DEM file is an input, so replacing it re-simulates the scene."""
        dem = self.config["simulation"]["dem"]
        return {"source_dem": dem} if dem and os.path.exists(dem) else {}

    def simulation_params(self, stack: str, rule: str) -> dict:
        dates = self.stack_dates(stack) if rule == "annotations" else None
        return simulation_params(self.config, stack, rule, dates)

    # -- InSAR ----------------------------------------------------------------------------------
    @property
    def insar_env(self) -> str:
        return f"../../envs/{self.backend.env}"

    def product_path(self, path: str) -> str:
        """An intermediate InSAR product: a GeoTIFF (embedded) or a DIMAP folder (SNAP)."""
        return f"{path}{self.backend.product_suffix}"

    def insar_params(self, stack: str) -> dict:
        return insar_params(self.config, stack, snap_install=self.snap_install)

    def calibrate_input(self, stack: str, date: str) -> dict:
        return self.backend.acquisition_inputs(self.config, self.plan, stack, date)

    def dem_input(self, stack: str) -> dict:
        return self.backend.dem_inputs(self.config, stack)

    def coregister_input(self, stack: str, reference: str, secondary: str) -> dict:
        inputs = {
            "reference": self.product_path(f"{WORK}/{stack}/orbit/{reference}"),
            "secondary": self.product_path(f"{WORK}/{stack}/orbit/{secondary}"),
        }
        inputs.update(self.dem_input(stack))
        return inputs

    def previous_product(self, step: str) -> tuple[str, bool]:
        """The per-pair product a step reads and whether it also reads the DEM."""
        previous = {
            "interferogram": ("coregistered", self.topo_in_interferogram),
            "remove_topographic_phase": ("interferogram", True),
            "goldstein": (
                "interferogram" if self.topo_in_interferogram else "topo_removed",
                False,
            ),
            "multilook": ("goldstein", False),
            "terrain_correct": ("multilooked", True),
        }
        return previous[step]

    def pair_step_input(self, step: str, wildcards: dict) -> dict:
        """The previous per-pair product (and the DEM where the step needs it)."""
        previous, dem = self.previous_product(step)
        out = {"product": self.product_path(f"{WORK}/{PAIR}/{previous}".format(**wildcards))}
        if dem:
            out.update(self.dem_input(wildcards["stack"]))
        return out

    def interferogram_targets(self) -> list[str]:
        return self.pair_paths(f"{IFG}/{PAIR}/coherence.tif") + self.pair_paths(
            f"{IFG}/{PAIR}/phase.tif"
        )

    # -- labels and datasets --------------------------------------------------------------------
    def annotation_stem(self, stack, delay, reference, secondary) -> str:
        """The annotation file of a pair, without extension (a pattern when given wildcards)."""
        from .plan import annotation_stem

        directory = self.config["annotations"]["directory"]
        return annotation_stem(directory, stack, delay, reference, secondary)

    def annotation_path(self, wildcards: dict) -> str:
        keys = ("stack", "delay", "reference", "secondary")
        stem = self.annotation_stem(*(wildcards[k] for k in keys))
        return f"{stem}.{self.config['annotations']['extension']}"

    def annotation_inputs(self, wildcards: dict) -> list[str]:
        """The annotation file set of a pair: made by the simulator (simulated stacks) or found
        on disk. Absent files are left to the job, which fails with a one-line message unless
        annotations.missing is no_motion."""
        path = self.annotation_path(wildcards)
        simulated = self.plan[wildcards["stack"]].source == "simulated"
        if self.config["annotations"]["extension"] == "shp":
            stem = path[: -len(".shp")]
            if simulated:
                return [f"{stem}{ext}" for ext in SHAPEFILE_PARTS]
            parts = [f"{stem}{ext}" for ext in [*SHAPEFILE_PARTS, ".qpj"]]
            return [p for p in parts if os.path.exists(p)]
        if simulated or os.path.exists(path):
            return [path]
        return []

    def rasterize_input(self, wildcards: dict) -> dict:
        pair = f"{IFG}/{PAIR}".format(**wildcards)
        return {
            "annotation": self.annotation_inputs(wildcards),
            "layover_shadow": f"{pair}/layover_shadow.tif",
            "coherence": f"{pair}/coherence.tif",
            "phase": f"{pair}/phase.tif",
        }

    def centres_input(self, stack: str) -> dict:
        return {"labels": self.stack_pair_paths(stack, f"{LABELS}/{PAIR}.tif")}

    def patches_input(self, stack: str) -> dict:
        """Patches' inputs; a simulated stack adds the simulator's truth rasters (store members
        truth and decoy, docs/dataset.md)."""
        inputs = {
            "centres": f"{DATASET}/centres/{stack}.gpkg",
            "coherence": self.stack_pair_paths(stack, f"{IFG}/{PAIR}/coherence.tif"),
            "phase": self.stack_pair_paths(stack, f"{IFG}/{PAIR}/phase.tif"),
            "labels": self.stack_pair_paths(stack, f"{LABELS}/{PAIR}.tif"),
        }
        if self.plan[stack].source == "simulated":
            for key, suffix in (
                ("truth_deformation", "deformation"),
                ("truth_valid", "valid"),
                ("decoys", "decoys"),
            ):
                inputs[key] = self.stack_pair_paths(stack, f"{SYNTH}/{TRUTH}_{suffix}.tif")
        return inputs

    def truth_visibility(self, stack: str):
        """The annotators' visibility threshold (rad): the truth rule of the dataset's truth."""
        if self.plan[stack].source != "simulated":
            return None
        return self.config["simulation"]["annotations"]["visibility_rad"]

    def stack_grid(self, stack: str) -> str:
        """One label raster of the stack: the grid (CRS, pixel size) of its patches."""
        return self.stack_pair_paths(stack, f"{LABELS}/{PAIR}.tif")[0]

    def stack_annotation_paths(self, stack: str) -> list[str]:
        return [self.annotation_path(p.wildcards) for p in self.plan[stack].pairs]

    def stack_annotation_inputs(self, stack: str) -> list[str]:
        files: list[str] = []
        for p in self.plan[stack].pairs:
            files.extend(self.annotation_inputs(p.wildcards))
        return files

    def raw_input(self, stack: str) -> dict:
        return {
            "coherence": self.stack_pair_paths(stack, f"{IFG}/{PAIR}/coherence.tif"),
            "phase": self.stack_pair_paths(stack, f"{IFG}/{PAIR}/phase.tif"),
            "layover_shadow": self.stack_pair_paths(stack, f"{IFG}/{PAIR}/layover_shadow.tif"),
            "labels": self.stack_pair_paths(stack, f"{LABELS}/{PAIR}.tif"),
            "annotations": self.stack_annotation_inputs(stack),
        }

    def dataset_targets(self) -> list[str]:
        per_stack = [
            f
            for s in sorted(self.plan)
            for f in (
                f"{DATASET}/centres/{s}.gpkg",
                f"{DATASET}/raw/{s}",
                f"{READY}/isslide/{s}/patches.csv",
            )
        ]
        return per_stack + [
            f"{READY}/train.npz",
            f"{READY}/val.npz",
            f"{READY}/eval.npz",
            f"{READY}/index.csv",
            f"{DATASET}/manifest.json",
            f"{DATASET}/manifest.csv",
        ]

    # -- training and evaluation ----------------------------------------------------------------
    def gpu_request(self) -> int:
        return 0 if self.config["training"]["device"] == "cpu" else 1

    def training_params(self, model: str) -> dict:
        return training_params(self.config, model)

    def evaluation_params(self) -> dict:
        return evaluation_params(self.config)

    def evaluation_targets(self) -> list[str]:
        if not self.trained_models():
            return []
        return [
            f"{EVALUATION}/table.csv",
            f"{EVALUATION}/table.md",
            f"{FIGURES}/figure3.png",
            f"{FIGURES}/training_curves.png",
            f"{FIGURES}/pr_curves.png",
        ]

    def all_metrics(self) -> list[str]:
        return [f"{EVALUATION}/{m}/metrics.json" for m in self.trained_models()]

    def figure_inputs(self) -> dict:
        models = self.trained_models()
        return {
            "train": f"{READY}/train.npz",
            "eval": f"{READY}/eval.npz",
            "index": f"{READY}/index.csv",
            "predictions": [f"{EVALUATION}/{m}/predictions.npz" for m in models],
            "metrics": [f"{EVALUATION}/{m}/metrics.json" for m in models],
            "histories": [f"{MODELS}/{m}/history.csv" for m in models],
        }

    # -- interferograms made elsewhere ------------------------------------------------------------
    def import_input(self, wildcards: dict) -> dict:
        """The pair's phase, coherence (and layover/shadow) files, as the patterns name them."""
        from .interferograms import pair_files

        keys = ("stack", "delay", "reference", "secondary")
        want = {k: wildcards[k] for k in keys}
        stack = want["stack"]
        pair = next(p for p in self.plan[stack].pairs if p.wildcards == want)
        return pair_files(stack, self.config["stacks"][stack], pair)

    def imported_grid(self, stack: str):
        """The stack's EPSG:4326 grid (headers of its phase files; one grid for all pairs)."""
        from .interferograms import pair_files
        from .interferograms import stack_grid as footprint_grid

        if stack not in self._grids:
            st = self.config["stacks"][stack]
            phases = [pair_files(stack, st, p)["phase"] for p in self.plan[stack].pairs]
            self._grids[stack] = footprint_grid(
                phases, self.config["insar"]["pixel_spacing_deg"], st["interferograms"]["bbox"]
            )
        return self._grids[stack]

    def import_params(self, stack: str) -> dict:
        cfg = self.config["stacks"][stack]["interferograms"]
        return {"grid": self.imported_grid(stack), "coherence_scale": cfg["coherence_scale"]}

    # -- detection ------------------------------------------------------------------------------
    def detection_model_dirs(self) -> list[str]:
        """Model folders detection chooses from: the trained ones (best) or the one given."""
        if self.detection["model"] == "best":
            return [f"{MODELS}/{m}" for m in self.trained_models()]
        return [self.detection["model"].rstrip("/")]

    def detection_score_files(self) -> list[str]:
        """Files the choice and threshold are read from (isslide.detect.models)."""
        if self.detection["model"] == "best":
            return [f"{MODELS}/{m}/thresholds.json" for m in self.trained_models()]
        from .detect.models import THRESHOLDS, evaluation_metrics_path

        folder = self.detection_model_dirs()[0]
        files = [f"{folder}/{THRESHOLDS}", evaluation_metrics_path(folder)]
        return [f for f in files if os.path.exists(f)]

    def detection_model_input(self) -> dict:
        return {
            "models": [f"{d}/model.pt" for d in self.detection_model_dirs()],
            "scores": self.detection_score_files(),
        }

    def detect_input(self, wildcards: dict) -> dict:
        pair = f"{IFG}/{PAIR}".format(**wildcards)
        return {
            "choice": f"{DETECTIONS}/model.json",
            "models": [f"{d}/model.pt" for d in self.detection_model_dirs()],
            "phase": f"{pair}/phase.tif",
            "coherence": f"{pair}/coherence.tif",
            "layover_shadow": f"{pair}/layover_shadow.tif",
        }

    def detection_params(self) -> dict:
        return {k: self.detection[k] for k in ("stride", "min_size", "batch_size", "device")}

    def detection_gpu(self) -> int:
        return 0 if self.detection["device"] == "cpu" else 1

    def stack_detection_input(self, stack: str) -> list[str]:
        return self.stack_pair_paths(stack, f"{WORK}/detections/{PAIR}.gpkg")

    def preview_pairs(self, stack: str) -> list[str]:
        """The interferograms a stack's detection preview shows (the first few of the plan)."""
        from .detect.preview import MAX_PAIRS

        return [PAIR.format(**p.wildcards) for p in self.plan[stack].pairs[:MAX_PAIRS]]

    def detection_preview_input(self, stack: str) -> dict:
        names = self.preview_pairs(stack)
        return {
            "phase": [f"{IFG}/{n}/phase.tif" for n in names],
            "probability": [f"{DETECTIONS}/{n}/probability.tif" for n in names],
            "candidates": f"{DETECTIONS}/{stack}/candidates.gpkg",
        }

    def detection_targets(self) -> list[str]:
        """Every interferogram's detection folder and each stack's candidates (when a model is
        available: detection.model is a folder, or training.models is not empty)."""
        if not self.detection_model_dirs():
            return []
        files: list[str] = []
        for name in ("probability.tif", "mask.tif", "candidates.gpkg", "detection.json"):
            files += self.pair_paths(f"{DETECTIONS}/{PAIR}/{name}")
        for s in sorted(self.plan):
            files += [f"{DETECTIONS}/{s}/candidates.gpkg", f"{DETECTIONS}/{s}/preview.png"]
        return files

    # -- multi-temporal detectors ----------------------------------------------------------------
    def temporal_models(self) -> list[str]:
        """The configured models that read K interferograms (ModelSpec.temporal)."""
        return [m for m in self.trained_models() if REGISTRY[m].temporal]

    def temporal_inputs(self, model: str) -> dict:
        """Extra inputs of train/evaluate for a multi-temporal model: the temporal index and the
        stacks' stores its steps are read from (none for the other models)."""
        if not REGISTRY[model].temporal:
            return {}
        return {
            "temporal": f"{READY}/temporal.csv",
            "stacks": [f"{READY}/stacks/{s}.npz" for s in sorted(self.plan)],
        }

    def temporal_params(self, model: str) -> dict:
        """What shapes a multi-temporal model's samples (nothing for the other models)."""
        if not REGISTRY[model].temporal:
            return {}
        keys = ("k", "mode", "missing")
        return {"stacks": sorted(self.plan), **{k: self.config["temporal"][k] for k in keys}}

    def temporal_manifest_input(self) -> list[str]:
        return [f"{READY}/temporal.json"] if self.temporal_models() else []

    # -- report -----------------------------------------------------------------------------------
    def report_targets(self) -> list[str]:
        """The realism figures of the simulated world (docs/figures/, made by
        benchmarks/bench_realism.py), where they exist and a stack is simulated."""
        if not self.simulated:
            return []
        names = [n for n in REALISM_FIGURES if os.path.exists(f"docs/figures/{n}.png")]
        return [f"{REPORT}/realism/{n}.png" for n in names]
