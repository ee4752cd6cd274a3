"""One interferogram in, detection layers out (used by ``isslide detect`` and the workflow).

Everything is read, checked and computed before anything is written; the layers are then
written under temporary names next to their destination and renamed into place together, so a
failure leaves no partial output that looks complete, and bad input leaves ``--out`` untouched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import tempfile
import time
import warnings

import geopandas as gpd
import numpy as np
import torch

from ..errors import IsslideError
from ..files import write_raster
from . import styles
from .candidates import MIN_SIZE, empty_frame, find_candidates, pair_subset, stack_candidates
from .infer import BATCH, STRIDE, WINDOW, predict_probability
from .models import load_model, model_file, model_threshold
from .rasters import read_pair

log = logging.getLogger("isslide.detect")

MASK_NODATA = 255
LAYER = "candidates"
_PAIR = re.compile(r"(?<!\d)(\d{8})_(\d{8})(?!\d)")


def pair_from_path(path: str) -> tuple[str | None, str | None]:
    """(reference, secondary) YYYYMMDD from a path such as .../20230904_20230916/phase.tif."""
    for m in reversed(list(_PAIR.finditer(path))):
        try:
            a, b = (dt.datetime.strptime(g, "%Y%m%d").date() for g in m.groups())
        except ValueError:
            continue
        if b > a:
            return m.group(1), m.group(2)
    return None, None


def delay_days(reference: str | None, secondary: str | None) -> int | None:
    if not reference or not secondary:
        return None
    f = "%Y%m%d"
    return (dt.datetime.strptime(secondary, f) - dt.datetime.strptime(reference, f)).days


def resolve_device(spec: str) -> torch.device:
    from ..train import resolve_device as train_device

    try:
        return train_device(spec)
    except IsslideError as exc:
        raise IsslideError(
            str(exc).replace("training.device", "--device (detection.device)")
        ) from None


def _staged(final: str, stage: dict[str, str]) -> str:
    d = os.path.dirname(os.path.abspath(final)) or "."
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".part-", suffix=os.path.basename(final))
    os.close(fd)
    os.unlink(tmp)
    stage[final] = tmp
    return tmp


def _commit(stage: dict[str, str]) -> None:
    for final, tmp in stage.items():
        os.replace(tmp, final)


def _abort(stage: dict[str, str]) -> None:
    for tmp in stage.values():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_candidates(path: str, frame: gpd.GeoDataFrame) -> None:
    """A candidates GeoPackage (layer ``candidates``, EPSG:4326, polygons promoted to multi)."""
    frame = frame if len(frame) else empty_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        frame.to_file(
            path,
            layer=LAYER,
            driver="GPKG",
            engine="pyogrio",
            promote_to_multi=True,
            geometry_type="MultiPolygon",
        )


def read_candidates(path: str) -> gpd.GeoDataFrame:
    try:
        frame = gpd.read_file(path, layer=LAYER, engine="pyogrio")
    except Exception as exc:
        msg = " ".join(str(exc).split())[:160]
        raise IsslideError(f"{path}: unreadable candidates ({msg}); rerun detection") from None
    for col in ("reference", "secondary"):
        frame[col] = frame[col].astype("object").where(frame[col].notna(), None)
    return frame


def write_layers(
    out: dict[str, str],
    probability: np.ndarray,
    mask: np.ndarray,
    candidates: gpd.GeoDataFrame | None,
    transform,
    crs,
    nodata: float,
    threshold: float,
    tags: dict,
    styled: tuple[str, ...] = ("probability", "mask", "candidates"),
) -> None:
    """Write ``out['probability']``, ``out['mask']`` (and ``out['candidates']``), those named in
    ``styled`` with their .qml, all renamed into place at the end. ``mask``: uint8 0/1, 255
    nodata."""
    stage: dict[str, str] = {}
    try:
        prob = np.where(np.isfinite(probability), probability, nodata).astype(np.float32)
        write_raster(_staged(out["probability"], stage), prob, transform, crs, nodata, tags=tags)
        write_raster(_staged(out["mask"], stage), mask, transform, crs, MASK_NODATA, tags=tags)
        layers = {"probability": styles.probability_qml(threshold), "mask": styles.mask_qml()}
        if candidates is not None and out.get("candidates"):
            write_candidates(_staged(out["candidates"], stage), candidates)
            layers["candidates"] = styles.candidates_qml()
        for key, text in layers.items():
            if key not in styled:
                continue
            qml = os.path.splitext(out[key])[0] + ".qml"
            with open(_staged(qml, stage), "w") as fh:
                fh.write(text)
        _commit(stage)
    except BaseException:
        _abort(stage)
        raise


def detect(
    model: str,
    phase: str,
    coherence: str,
    out_dir: str | None = None,
    threshold: float | None = None,
    device: str = "auto",
    stride: int = STRIDE,
    min_size: int = MIN_SIZE,
    batch_size: int = BATCH,
    coherence_scale: float = 1.0,
    layover_shadow: str | None = None,
    reference: str | None = None,
    secondary: str | None = None,
    threshold_source: str | None = None,
    outputs: dict[str, str] | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    styled: tuple[str, ...] = ("probability", "mask", "candidates"),
) -> dict:
    """Detect slow motion in one interferogram; write probability, mask and candidates.

    ``outputs`` maps ``probability``, ``mask``, ``candidates`` (and optionally ``summary``) to
    paths; by default ``out_dir/probability.tif``, ``mask.tif``, ``candidates.gpkg``,
    ``detection.json``. ``threshold`` None: the model's own (:func:`model_threshold`).
    Returns the summary (also written as JSON).
    """
    if outputs is None:
        if not out_dir:
            raise IsslideError("--out: give the output folder")
        outputs = {
            "probability": os.path.join(out_dir, "probability.tif"),
            "mask": os.path.join(out_dir, "mask.tif"),
            "candidates": os.path.join(out_dir, "candidates.gpkg"),
            "summary": os.path.join(out_dir, "detection.json"),
        }
    if min_size < 1:
        raise IsslideError(f"--min-size: {min_size} must be at least 1 pixel")
    if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
        raise IsslideError(f"--threshold: {threshold} is not a probability in [0, 1]")
    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(int(threads))
    net, info = load_model(model)
    if threshold is None:
        threshold, threshold_source = model_threshold(model)
    else:
        threshold_source = threshold_source or "given (--threshold)"
    threshold = float(threshold)
    pair = read_pair(phase, coherence, coherence_scale, layover_shadow)
    if reference is None and secondary is None:
        reference, secondary = pair_from_path(phase)
    delay = delay_days(reference, secondary)
    log.info(
        "%s: %s on %s (%dx%d px), device %s, stride %d, threshold %.4f: %s",
        phase, info["model_name"], pair.crs.to_string(), pair.shape[1], pair.shape[0], dev,
        stride, threshold, threshold_source,
    )  # fmt: skip
    t0 = time.perf_counter()
    prob = predict_probability(
        net, pair.phase, pair.coherence, pair.valid, dev, WINDOW, stride, batch_size, progress
    )
    seconds = time.perf_counter() - t0
    flagged = pair.valid & (np.nan_to_num(prob, nan=0.0) >= threshold)
    mask = np.where(pair.valid, flagged, MASK_NODATA).astype(np.uint8)
    frame, _ = find_candidates(
        prob, flagged, pair.transform, pair.crs, threshold, min_size, reference, secondary, delay
    )
    n_valid = int(pair.valid.sum())
    summary = {
        "model": os.path.abspath(model_file(model)),
        "model_name": info["model_name"],
        "threshold": threshold,
        "threshold_source": threshold_source,
        "phase": os.path.abspath(phase),
        "coherence": os.path.abspath(coherence),
        "reference": reference,
        "secondary": secondary,
        "delay": delay,
        "stride": int(stride),
        "window": WINDOW,
        "min_size": int(min_size),
        "device": str(dev),
        "pixels": int(pair.valid.size),
        "valid_pixels": n_valid,
        "flagged_pixels": int(flagged.sum()),
        "flagged_fraction": float(flagged.sum() / max(n_valid, 1)),
        "candidates": int(len(frame)),
        "seconds": round(seconds, 3),
        "mpx_per_s": round(pair.valid.size / max(seconds, 1e-9) / 1e6, 3),
    }
    tags = {
        "ISSLIDE_MODEL": info["model_name"],
        "ISSLIDE_THRESHOLD": f"{threshold:.6g}",
        "ISSLIDE_THRESHOLD_SOURCE": threshold_source,
    }
    stage: dict[str, str] = {}
    if outputs.get("summary"):
        with open(_staged(outputs["summary"], stage), "w") as fh:
            json.dump(summary, fh, indent=2)
            fh.write("\n")
    try:
        write_layers(
            outputs, prob, mask, frame, pair.transform, pair.crs, pair.nodata, threshold, tags,
            styled,
        )  # fmt: skip
        _commit(stage)
    except BaseException:
        _abort(stage)
        raise
    log.info(
        "%s: %d candidate(s), %.3f %% of the valid pixels flagged, %.2f s (%.2f Mpx/s)",
        phase, summary["candidates"], 100 * summary["flagged_fraction"], seconds,
        summary["mpx_per_s"],
    )  # fmt: skip
    return summary


def _write_styled_candidates(path: str, frame: gpd.GeoDataFrame) -> None:
    stage: dict[str, str] = {}
    try:
        write_candidates(_staged(path, stage), frame)
        with open(_staged(os.path.splitext(path)[0] + ".qml", stage), "w") as fh:
            fh.write(styles.candidates_qml())
        _commit(stage)
    except BaseException:
        _abort(stage)
        raise


def write_stack_candidates(pair_paths: list[str], out: str) -> dict:
    """The stack-wide candidates (``repetitions``, shared ``id``) from every pair's layer."""
    frame = stack_candidates([read_candidates(p) for p in pair_paths])
    _write_styled_candidates(out, frame)
    summary = {"interferograms": len(pair_paths), "candidates": int(len(frame))}
    if len(frame):
        summary["groups"] = int(frame["id"].nunique())
        summary["repeated"] = int((frame["repetitions"] > 1).sum())
    log.info("%s: %s", out, summary)
    return summary


def write_pair_candidates(stack_path: str, reference: str, secondary: str, out: str) -> int:
    """One interferogram's candidates, as they stand in the stack-wide layer."""
    frame = pair_subset(read_candidates(stack_path), reference, secondary)
    _write_styled_candidates(out, frame)
    return int(len(frame))
