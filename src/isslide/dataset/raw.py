"""The raw dataset of a stack and the dataset manifest (counts in the paper's terms).

Raw dataset, ``results/dataset/raw/{stack}/``::

    {delay}d/{reference}_{secondary}/coherence.tif, phase.tif, layover_shadow.tif   (interferogram)
    {delay}d/{reference}_{secondary}/labels.tif                                    (label raster)
    {delay}d/{reference}_{secondary}/annotations/{reference}_{secondary}.shp (+ sidecars) or .gpkg
    {delay}d/{reference}_{secondary}/manifest.json   dates, delay, polygons per class, areas
    manifest.json, manifest.csv                       one entry per interferogram + totals

Files are independent copies of the workflow's products and of the annotators' files
(reflinks, which cost no space, where the filesystem supports them): editing an input later never
changes the raw dataset, which is written atomically (the complete folder appears, or nothing).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os

import pandas as pd

from ..files import atomic_dir, copy_file, write_csv, write_json
from ..labels import CLASSES, annotation_files, read_annotations

log = logging.getLogger("isslide.dataset")


def _iso(date: str) -> str:
    return dt.datetime.strptime(date, "%Y%m%d").date().isoformat()


def build_raw(stack: str, pairs: list[dict], out_dir: str) -> dict:
    """``pairs``: dicts with delay, reference, secondary, coherence, phase, layover_shadow, label and
    annotation (path or None). Writes ``out_dir`` atomically; returns the stack manifest."""
    entries = []
    with atomic_dir(out_dir) as tmp:
        for p in sorted(pairs, key=lambda p: (int(p["delay"]), p["reference"], p["secondary"])):
            name = f"{p['reference']}_{p['secondary']}"
            rel = os.path.join(f"{int(p['delay'])}d", name)
            d = os.path.join(tmp, rel)
            os.makedirs(d, exist_ok=True)
            for key, target in (
                ("coherence", "coherence.tif"),
                ("phase", "phase.tif"),
                ("layover_shadow", "layover_shadow.tif"),
                ("label", "labels.tif"),
            ):
                copy_file(p[key], os.path.join(d, target))
            counts = dict.fromkeys(CLASSES, 0)
            areas = 0
            annotation = p.get("annotation")
            if annotation and os.path.exists(annotation):
                for f in annotation_files(annotation):
                    copy_file(f, os.path.join(d, "annotations", os.path.basename(f)))
                # the copy, so the manifest describes exactly the files in the raw dataset
                ann = read_annotations(os.path.join(d, "annotations", os.path.basename(annotation)))
                for cls, n in ann["class"].value_counts().items():
                    counts[str(cls)] = int(n)
                areas = int(ann["id"].nunique())
                annotation = os.path.join("annotations", os.path.basename(annotation))
            else:
                annotation = None
            entry = {
                "stack": stack,
                "delay": int(p["delay"]),
                "reference": _iso(p["reference"]),
                "secondary": _iso(p["secondary"]),
                "interferogram": name,
                "path": rel,
                "annotation": annotation,
                "polygons": counts,
                "polygons_total": int(sum(counts.values())),
                "areas": areas,
            }
            write_json(os.path.join(d, "manifest.json"), entry)
            entries.append(entry)
        totals = {
            "interferograms": len(entries),
            "interferograms_per_delay": {
                str(k): int(v)
                for k, v in sorted(
                    pd.Series([e["delay"] for e in entries], dtype=int).value_counts().items()
                )
            },
            "polygons": {c: int(sum(e["polygons"][c] for e in entries)) for c in CLASSES},
            "polygons_total": int(sum(e["polygons_total"] for e in entries)),
            "annotated_interferograms": int(sum(e["annotation"] is not None for e in entries)),
        }
        manifest = {"stack": stack, "totals": totals, "interferograms": entries}
        write_json(os.path.join(tmp, "manifest.json"), manifest)
        rows = [
            {k: v for k, v in e.items() if k != "polygons"}
            | {f"polygons_{c}": e["polygons"][c] for c in CLASSES}
            for e in entries
        ]
        write_csv(os.path.join(tmp, "manifest.csv"), pd.DataFrame(rows))
    log.info("stack %s: raw dataset of %d interferograms in %s", stack, len(entries), out_dir)
    return manifest


def dataset_counts(
    index: pd.DataFrame, raw_manifests: list[dict], centres: dict[str, pd.DataFrame]
) -> dict:
    """The dataset's counts in the paper's terms (JSON-ready)."""
    has_motion = index["has_motion"].astype(bool) if len(index) else pd.Series([], dtype=bool)
    split = index["split"] if len(index) else pd.Series([], dtype=str)
    per_delay: dict[str, int] = {}
    for m in raw_manifests:
        for k, v in m["totals"]["interferograms_per_delay"].items():
            per_delay[k] = per_delay.get(k, 0) + int(v)
    areas = {s: int(c["phenomenon_id"].nunique()) for s, c in centres.items()}

    def split_counts(name):
        sel = split == name
        return {
            "samples": int(sel.sum()),
            "with_motion": int((sel & has_motion).sum()),
            "no_move": int((sel & ~has_motion).sum()),
            "interferograms": int(
                index.loc[sel, ["stack", "reference", "secondary"]].drop_duplicates().shape[0]
            )
            if len(index)
            else 0,
            "areas": int(index.loc[sel, ["stack", "phenomenon_id"]].drop_duplicates().shape[0])
            if len(index)
            else 0,
        }

    return {
        "stacks": sorted(centres),
        "moving_areas": int(sum(areas.values())),
        "moving_areas_per_stack": areas,
        "interferograms": int(sum(m["totals"]["interferograms"] for m in raw_manifests)),
        "interferograms_per_delay": dict(sorted(per_delay.items(), key=lambda kv: int(kv[0]))),
        "polygons": {
            c: int(sum(m["totals"]["polygons"][c] for m in raw_manifests)) for c in CLASSES
        },
        "centres": int(sum(len(c) for c in centres.values())),
        "centres_outside_zones": int(
            sum(int((c["zone"].fillna("") == "").sum()) for c in centres.values())
        ),
        "samples": int(len(index)),
        "samples_with_motion": int(has_motion.sum()),
        "no_move_samples": int((~has_motion).sum()),
        "train": split_counts("train"),
        "val": split_counts("val"),
        "eval": split_counts("eval"),
        "unused": split_counts("unused"),
        "samples_per_delay": {str(k): int(v) for k, v in index.groupby("delay").size().items()}
        if len(index)
        else {},
        "samples_per_zone": {str(k): int(v) for k, v in index.groupby("zone").size().items()}
        if len(index)
        else {},
    }


def counts_table(counts: dict) -> pd.DataFrame:
    """Flatten the counts into rows (metric, value) for the CSV."""
    rows = []

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            rows.append((prefix, ";".join(map(str, value))))
        else:
            rows.append((prefix, value))

    walk("", counts)
    return pd.DataFrame(rows, columns=["metric", "value"])


def write_manifest(
    index_path: str,
    raw_dirs: list[str],
    centres_paths: dict[str, str],
    out_json: str,
    out_csv: str,
    notes: list[str] | None = None,
    temporal: str | None = None,
) -> dict:
    """Write the dataset counts; ``notes``: what the plan dropped or noted (missing acquisitions,
    products ignored and why, duplicates used once), kept with the counts as ``planning_notes``;
    ``temporal``: the multi-temporal samples' summary (``temporal.json``), kept as ``temporal``
    (per split: targets, complete, padded, dropped, missing steps, samples)."""
    from .centres import read_centres

    index = pd.read_csv(index_path, dtype={"reference": str, "secondary": str, "zone": str})
    index["zone"] = index["zone"].fillna("")
    manifests = []
    for d in raw_dirs:
        with open(os.path.join(d, "manifest.json")) as fh:
            manifests.append(json.load(fh))
    centres = {s: read_centres(p) for s, p in centres_paths.items()}
    counts = dataset_counts(index, manifests, centres)
    counts["planning_notes"] = list(notes or [])
    if temporal:
        with open(temporal) as fh:
            counts["temporal"] = json.load(fh)
    write_json(out_json, counts)
    write_csv(out_csv, counts_table(counts))
    log.info(
        "dataset manifest: %s",
        json.dumps(
            {
                k: counts[k]
                for k in ("moving_areas", "samples", "samples_with_motion", "no_move_samples")
            }
        ),
    )
    return counts
