"""Everything wrong with a config and its input files that can be known before the first job.

:func:`preflight` is the one entry point: the workflow calls it when it parses the Snakefile (so a
bad input stops ``snakemake``, dry-runs included, before any job), and ``isslide check-config``
and ``isslide plan`` call it too, so the three accept and refuse exactly the same configs. It
takes a validated, defaults-filled config and returns the acquisition/pair plan.

Checks, in pipeline order (the first problem found is raised as one line
``<key or file>: <what>; <fix>``):

* zones: ``[lon_min, lat_min, lon_max, lat_max]`` in that order and in degrees, train and
  evaluation zones disjoint, each zone inside the simulated scene (simulated stacks) or the area of
  interest (``stacks.<name>.aoi``);
* model names: every name of ``training.models`` and ``training.per_model`` in the registry;
* the backend fits the stacks' sources, a simulated stack's annotation extension is ``shp``, and
  the files named by the config exist: ``simulation.dem``, with the SNAP backend
  ``snap.dem.external_file`` and ``snap.orbit.directory``;
* the plan (:func:`isslide.plan.plan_stacks`): products, duplicates, polarisation, pairs;
* for stacks of real products, every expected annotation file: present (all missing ones listed
  at once), not replaced by a file of another extension or case, complete, with a plausible CRS;
* training files: the checkpoints the ``_p`` models need (or ``training.weights.download``),
  ``training.weights.backbone``, ``evaluation.reference_table``.

Annotation and training files are needed only by the dataset and training stages: when the targets
asked for stop before them (``snakemake --until terrain_correct``, or interferogram paths; read by
:func:`stages_from_command_line`), those checks are skipped, so interferograms can be computed
before they are annotated.
"""

from __future__ import annotations

import math
import os

from .errors import IsslideError
from .geometry import EARTH_RADIUS
from .inputs import check_annotation_layer, variant_hint
from .insar import BACKENDS, SOURCE_WORDS, STEPS, get_backend
from .models import get_spec
from .plan import StackPlan, annotation_path, fmt, plan_stacks

INSAR_RULES = {*STEPS, "simulate_scene", "simulate_acquisition", "simulate_annotations"}
DATASET_RULES = {
    "rasterize_labels",
    "patch_centres",
    "extract_patches",
    "isslide_layout",
    "assemble_dataset",
    "temporal_index",
    "raw_dataset",
    "dataset_manifest",
}
_STAGE_OF_PATH = (
    ("results/interferograms/", "insar"),
    ("results/work/", "insar"),
    ("resources/synthetic/", "insar"),
    ("results/labels/", "dataset"),
    ("results/dataset/", "dataset"),
)
STAGES = ("insar", "dataset", "training")


def stages_needed(targets=(), until=()) -> set[str]:
    """The stages a Snakemake invocation can reach: ``insar``, ``dataset``, ``training``.

    ``targets``: the files or rules asked for (none: the default target, everything);
    ``until``: ``--until`` rules. Anything not recognised counts as everything.
    """
    reach = {"insar"}
    if until:
        rules = set(until)
        if rules <= INSAR_RULES:
            return reach
        if rules <= INSAR_RULES | DATASET_RULES:
            return reach | {"dataset"}
        return set(STAGES)
    if not targets:
        return set(STAGES)
    for target in targets:
        t = str(target).replace(os.sep, "/").lstrip("./")
        stage = next((s for prefix, s in _STAGE_OF_PATH if t.startswith(prefix)), None)
        if stage is None and t in INSAR_RULES:
            stage = "insar"
        elif stage is None and t in DATASET_RULES:
            stage = "dataset"
        if stage is None:
            return set(STAGES)
        reach.add(stage)
    return reach


def stages_from_command_line(argv: list[str]) -> set[str] | None:
    """The stages a ``snakemake`` command line can reach (its targets, ``--until``,
    ``--target-jobs``), or None (everything) when ``argv`` is not one Snakemake's parser reads.

    The Snakefile is parsed before Snakemake hands the targets to the workflow, so they are read
    from the command line itself, with Snakemake's own argument parser.
    """
    try:
        from snakemake.cli import get_argument_parser

        args, _ = get_argument_parser().parse_known_args(list(argv[1:]))
    except BaseException:  # argparse exits on what it cannot read: check everything
        return None
    targets = set(getattr(args, "targets", None) or ())
    for job in getattr(args, "target_jobs", None) or ():  # TargetSpec, or 'rule:wildcards'
        targets.add(getattr(job, "rulename", None) or str(job).split(":")[0])
    return stages_needed(targets, set(getattr(args, "until", None) or ()))


# --- zones ---------------------------------------------------------------------------------


def scene_box(sim: dict) -> tuple[float, float, float, float]:
    """[west, south, east, north] of a simulated scene (the simulator's
    ``isslide.simulate.terrain.scene_bounds``, without importing the simulator; a test keeps the
    two equal)."""
    lon0, lat0 = sim["center"]
    width_km, height_km = sim["size_km"]
    m_per_deg = math.pi / 180.0 * EARTH_RADIUS
    half_lon = width_km * 500.0 / (m_per_deg * math.cos(math.radians(lat0)))
    half_lat = height_km * 500.0 / m_per_deg
    return (lon0 - half_lon, lat0 - half_lat, lon0 + half_lon, lat0 + half_lat)


def aoi_box(stack_name: str, stack: dict) -> tuple[float, float, float, float] | None:
    """Bounds of ``stacks.<name>.aoi`` (WKT, EPSG:4326), or None when the stack has none."""
    text = stack.get("aoi")
    if not text:
        return None
    import shapely
    import shapely.wkt

    try:
        geom = shapely.wkt.loads(text)
    except Exception as exc:
        raise IsslideError(
            f"stacks.{stack_name}.aoi: not valid WKT ({' '.join(str(exc).split())[:120]}); write "
            "e.g. POLYGON((6.0 45.0, 6.5 45.0, 6.5 45.5, 6.0 45.5, 6.0 45.0)) in lon/lat"
        ) from None
    if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise IsslideError(
            f"stacks.{stack_name}.aoi: a {geom.geom_type} with no area; give a POLYGON in lon/lat"
        )
    box = tuple(float(v) for v in geom.bounds)
    if not (-180 <= box[0] <= box[2] <= 180 and -90 <= box[1] <= box[3] <= 90):
        raise IsslideError(
            f"stacks.{stack_name}.aoi: bounds {list(box)} are not longitudes/latitudes; write the "
            "area of interest in EPSG:4326 degrees (lon lat)"
        )
    return box


def _fmt_box(box) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in box) + "]"


def check_zones(config: dict) -> None:
    for name, stack in config["stacks"].items():
        zones = stack["zones"]
        for zname, zone in zones.items():
            key = f"stacks.{name}.zones.{zname}.bbox"
            w, s, e, n = zone["bbox"]
            if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
                raise IsslideError(
                    f"{key}: {zone['bbox']} is not a lon/lat box; zones are "
                    "[lon_min, lat_min, lon_max, lat_max] in degrees (EPSG:4326)"
                )
            if w >= e or s >= n:
                what = (
                    f"lon_min {w} is not less than lon_max {e}"
                    if w >= e
                    else f"lat_min {s} is not less than lat_max {n}"
                )
                fixed = [min(w, e), min(s, n), max(w, e), max(s, n)]
                hint = f", i.e. {fixed}" if fixed[0] < fixed[2] and fixed[1] < fixed[3] else ""
                raise IsslideError(
                    f"{key}: {what} (reversed or empty box); write "
                    f"[lon_min, lat_min, lon_max, lat_max]{hint}"
                )
        train = {z: v["bbox"] for z, v in sorted(zones.items()) if v["role"] == "train"}
        evaluation = {z: v["bbox"] for z, v in sorted(zones.items()) if v["role"] == "evaluation"}
        for tz, tb in train.items():
            for ez, eb in evaluation.items():
                if max(tb[0], eb[0]) < min(tb[2], eb[2]) and max(tb[1], eb[1]) < min(tb[3], eb[3]):
                    raise IsslideError(
                        f"stacks.{name}.zones: train zone '{tz}' {tb} and evaluation zone '{ez}' "
                        f"{eb} overlap, so the evaluation would not be independent; make the boxes "
                        "disjoint (they may share an edge)"
                    )
        if stack["source"] == "simulated":
            area, what = scene_box(config["simulation"]), "the simulated scene"
            fix = "move the zone, or simulation.center / simulation.size_km"
        else:
            area, what = aoi_box(name, stack), f"stacks.{name}.aoi"
            fix = f"move the zone or widen stacks.{name}.aoi"
        if area is None:
            continue
        for zname, zone in sorted(zones.items()):
            w, s, e, n = zone["bbox"]
            if min(e, area[2]) <= max(w, area[0]) or min(n, area[3]) <= max(s, area[1]):
                raise IsslideError(
                    f"stacks.{name}.zones.{zname}.bbox: {zone['bbox']} lies outside {what} "
                    f"{_fmt_box(area)}; {fix}"
                )


# --- models, config files --------------------------------------------------------------------


def _exists(path: str, base: str) -> bool:
    return os.path.exists(path if os.path.isabs(path) else os.path.join(base, path))


def check_training(config: dict, base: str, training: bool = True) -> None:
    """Model names always; with ``training``, the files the training and evaluation need."""
    cfg = config["training"]
    for name in list(cfg["models"]) + list(cfg["per_model"]):
        get_spec(name)
    if not training:
        return
    weights = cfg["weights"]
    for name in cfg["models"]:
        spec = get_spec(name)
        field = f"training.weights.{name}"
        if spec.needs_weights:
            path = weights.get(name)
            if path and not _exists(path, base):
                raise IsslideError(
                    f"{field}: weights file {path} not found; download it (docs/training.md) and "
                    f"set {field} to its path, or remove {name} from training.models"
                )
            if not path and not weights["download"]:
                raise IsslideError(
                    f"{field}: {name} needs a pretrained checkpoint and none is given; set {field} "
                    "to the file (docs/training.md), set training.weights.download: true, or "
                    f"remove {name} from training.models"
                )
        if (
            spec.uses_backbone
            and weights.get("backbone")
            and not _exists(weights["backbone"], base)
        ):
            raise IsslideError(
                f"training.weights.backbone: weights file {weights['backbone']} not found; "
                "download it (docs/training.md) or set it to null"
            )
    table = config["evaluation"]["reference_table"]
    if table and not _exists(table, base):
        raise IsslideError(
            f"evaluation.reference_table: {table} not found; give the CSV of published values "
            "(model, F1, AUC, Dice, IoU, HD) or set it to null"
        )


def check_files(config: dict, base: str) -> None:
    simulated = [n for n, s in config["stacks"].items() if s["source"] == "simulated"]
    dem = config["simulation"]["dem"]
    if simulated and dem and not _exists(dem, base):
        raise IsslideError(
            f"{dem}: DEM file not found (simulation.dem); point it to a GeoTIFF or SRTM .hgt "
            "file in EPSG:4326, or set simulation.dem: null for procedural relief"
        )
    ext = config["annotations"]["extension"]
    if simulated and ext != "shp":
        raise IsslideError(
            f"annotations.extension: {ext}, but the simulated stack(s) {', '.join(simulated)} "
            "make shapefiles; set annotations.extension: shp (or give those stacks real products)"
        )
    backend = get_backend(config["backend"])
    for name, stack in config["stacks"].items():
        source = stack["source"]
        if source in (backend.source, "interferograms"):  # interferograms skip the InSAR steps
            continue
        fit = [b.name for b in BACKENDS.values() if b.source == source]
        raise IsslideError(
            f"backend: {backend.name} processes {backend.processes}, but stack {name} has source "
            f"{source}; set backend: {fit[0] if fit else '?'} for {SOURCE_WORDS.get(source, source)}, "
            f"or give the stack source: {backend.source}"
        )
    if backend.files_check:
        backend.files_check(config, base)


# --- annotation files ----------------------------------------------------------------------


def check_annotation_files(config: dict, plans: dict[str, StackPlan], base: str) -> None:
    """Every annotation file the real-product stacks expect (simulated stacks make their own)."""
    ann = config["annotations"]
    ext, policy = ann["extension"], ann["missing"]
    directory = ann["directory"]
    for name, sp in sorted(plans.items()):
        if sp.source != "products":
            continue
        paths = [
            annotation_path(directory, name, p.delay, fmt(p.reference), fmt(p.secondary), ext)
            for p in sp.pairs
        ]
        full = {p: p if os.path.isabs(p) else os.path.join(base, p) for p in paths}
        root = os.path.join(directory, name)
        if not os.path.isdir(root if os.path.isabs(root) else os.path.join(base, root)):
            raise IsslideError(
                f"annotations.directory: {root} does not exist ({len(paths)} annotation files "
                f"expected for stack {name}, e.g. {paths[0]}); set annotations.directory to the "
                "annotators' folder"
            )
        missing = []
        for p in paths:
            if os.path.exists(full[p]):
                continue
            hint = variant_hint(full[p])
            if hint:
                raise IsslideError(f"{p}: annotation file not found, but {hint}")
            missing.append(p)
        if missing and policy == "error":
            raise IsslideError(
                f"annotations: {len(missing)} of {len(paths)} annotation files of stack {name} are "
                f"missing: {', '.join(missing)}; add them, or set annotations.missing: no_motion "
                "if those interferograms have no annotated motion"
            )
        if len(missing) == len(paths):
            raise IsslideError(
                f"annotations: none of the {len(paths)} annotation files of stack {name} exists "
                f"(e.g. {paths[0]}); even with annotations.missing: no_motion a stack needs some "
                "annotated motion: check annotations.directory and the file names"
            )
        if missing:
            sp.notes.append(
                f"{len(missing)} interferogram(s) without annotation file, labelled as no motion "
                "(annotations.missing: no_motion)"
            )
        aoi = aoi_box(name, config["stacks"][name])
        for p in paths:
            if p not in missing:
                check_annotation_layer(full[p], aoi, f"stacks.{name}.aoi")


def preflight(
    config: dict, base: str = ".", stages: set[str] | None = None
) -> dict[str, StackPlan]:
    """Check a validated, defaults-filled config and its input files; return the plan.

    ``stages`` (see :func:`stages_needed`): the stages the run can reach; annotation files are
    checked when it includes ``dataset``, weight files when it includes ``training``.
    """
    stages = set(STAGES) if stages is None else set(stages)
    check_zones(config)
    check_training(config, base, training=False)  # model names
    check_files(config, base)
    plans = plan_stacks(config, base=base)
    if "dataset" in stages or "training" in stages:
        check_annotation_files(config, plans, base)
    if "training" in stages:
        check_training(config, base)
        check_temporal_plan(config, plans)
    return plans


def check_temporal_plan(config: dict, plans: dict) -> None:
    """With a multi-temporal model in ``training.models``: the planned interferograms must give
    ``temporal.k`` consecutive ones at every delay (one-line error naming the key otherwise)."""
    import pandas as pd

    from .dataset.temporal import check_temporal
    from .models import get_spec

    if not any(get_spec(m).temporal for m in config["training"]["models"]):
        return
    rows = [
        {"stack": name, "delay": int(p.wildcards["delay"]), "reference": p.wildcards["reference"]}
        for name, plan in plans.items()
        for p in plan.pairs
    ]
    if not rows:
        return
    t = config.get("temporal") or {}
    check_temporal(
        pd.DataFrame(rows),
        int(t.get("k", 3)),
        str(t.get("mode", "consecutive")),
        config["delays"],
        int(config["revisit_days"]),
    )
