"""The ready-to-use dataset: patches around the centres, on every interferogram of a stack.

For every centre (in a zone) and every interferogram of its stack, a ``size x size`` patch of
coherence, phase, label and valid mask. Windows near the raster border are shifted inside it
(never padded). ``has_motion`` is true when the patch has a labelled pixel on that
interferogram; patches of areas without motion on an interferogram (a deactivation period) are
kept with an all-zero label: the paper's "no-move" samples.

:func:`extract_stack_patches` streams one interferogram at a time (windowed reads of the union
of the patch windows, prefetching the next interferograms on ``threads`` threads) into the
stack's store (:class:`~isslide.dataset.store.StoreWriter`) and its index (the ISSLIDE layout
is written from them by :func:`isslide.dataset.isslide.write_layout`).
:func:`assemble` joins the stacks' stores into ``train.npz`` / ``val.npz`` / ``eval.npz`` and
``index.csv``.

Truth (simulated stacks): when every pair also names the simulator's truth rasters
(``truth_deformation``, ``truth_valid``, ``decoys``, on the interferogram grid), the store gets
the optional members ``truth`` (``|deformation| >= visibility_rad`` on truth-valid pixels) and
``decoy`` (decoy kind codes), cut at the same windows, both 0 on invalid pixels, and
``decoy_kinds`` (the union of the rasters' ``DECOY_KINDS`` tags); see
:mod:`isslide.dataset.store`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import rasterio
from numpy.lib.stride_tricks import sliding_window_view
from rasterio.windows import Window

from ..errors import IsslideError
from ..files import Grid, apply, check_same_grid, read_band, write_csv
from ..labels import read_phenomena
from .centres import read_centres
from .isslide import sample_id
from .split import assign_split, split_interferograms
from .store import (
    KEYS,
    OPTIONAL_KEYS,
    StoreWriter,
    decoy_kinds,
    read_rows,
    read_store,
    store_layout,
)

log = logging.getLogger("isslide.dataset")

EXTRA_COLUMNS = [
    "role",
    "k",
    "annotated",
    "motion_pixels",
    "valid_fraction",
    "window_row",
    "window_col",
    "window_lon",
    "window_lat",
]
INDEX_COLUMNS = [
    "sample_id",
    "stack",
    "zone",
    "delay",
    "reference",
    "secondary",
    "lon",
    "lat",
    "row",
    "col",
    "phenomenon_id",
    "class",
    "confidence",
    "has_motion",
    "split",
]


def window_origin(row, col, size: int, height: int, width: int):
    """Upper-left corner of the ``size`` window centred on (row, col), shifted inside the raster."""
    if size > height or size > width:
        raise IsslideError(
            f"dataset.patch_size: {size} px is larger than the interferograms ({width}x{height} px); "
            "lower dataset.patch_size"
        )
    r0 = np.clip(np.asarray(row) - size // 2, 0, height - size)
    c0 = np.clip(np.asarray(col) - size // 2, 0, width - size)
    return r0.astype(np.int64), c0.astype(np.int64)


TRUTH_PATHS = ("truth_deformation", "truth_valid", "decoys")
DECOY_TAG = "DECOY_KINDS"


def _read_window(path: str, window: Window):
    return read_band(path, window=window)  # a corrupt file: one line naming it and the fix


def read_decoy_kinds(path: str) -> dict[int, str]:
    """The ``DECOY_KINDS`` tag of a decoy raster: {code: kind name}."""
    with rasterio.open(path) as src:
        raw = src.tags().get(DECOY_TAG)
    if raw is None:
        raise IsslideError(f"{path}: decoy raster without a {DECOY_TAG} tag; rerun the simulator")
    try:
        kinds = {int(k): str(v) for k, v in json.loads(raw).items()}
    except (ValueError, AttributeError):
        raise IsslideError(f"{path}: {DECOY_TAG} tag is not a JSON object of code: name") from None
    if any(not 0 < k < 256 for k in kinds):
        raise IsslideError(f"{path}: {DECOY_TAG} codes must be 1 to 255")
    return kinds


def merge_kinds(into: dict[int, str], kinds: dict[int, str], where: str) -> dict[int, str]:
    for code, name in kinds.items():
        if into.get(code, name) != name:
            raise IsslideError(
                f"{where}: decoy code {code} is {name!r} here but {into[code]!r} elsewhere; "
                "one code must mean one decoy kind"
            )
        into[code] = name
    return into


def _process_pair(j: int, pair: dict, ctx: dict) -> dict:
    """Read one interferogram's window, cut its patches and write them to the store (runs on
    a worker thread); return what the index needs."""
    window, size, r0, c0 = ctx["window"], ctx["size"], ctx["r0"], ctx["c0"]
    coh, cnd = _read_window(pair["coherence"], window)
    pha, pnd = _read_window(pair["phase"], window)
    lab, _ = _read_window(pair["label"], window)
    rr, cc = r0 - window.row_off, c0 - window.col_off

    def cut(a):
        return sliding_window_view(a, (size, size))[rr, cc]

    coh, pha, lab = cut(coh), cut(pha), cut(lab)
    valid = (lab >= 0) & np.isfinite(coh) & np.isfinite(pha)
    if cnd is not None:
        valid &= coh != cnd
    if pnd is not None:
        valid &= pha != pnd
    motion = (lab > 0) & valid
    extra = {}
    if ctx["truth"]:
        defo, _ = _read_window(pair["truth_deformation"], window)
        tvalid, _ = _read_window(pair["truth_valid"], window)
        decoys, _ = _read_window(pair["decoys"], window)
        visible = (np.abs(cut(defo)) >= ctx["visibility_rad"]) & (cut(tvalid) == 1)
        extra["truth"] = visible & valid
        extra["decoy"] = np.where(valid, cut(decoys), 0).astype(np.uint8)
    nc = len(r0)
    delay, ref, sec = int(pair["delay"]), pair["reference"], pair["secondary"]
    sids = np.array(
        [
            sample_id(ctx["stack"], delay, ref, sec, p, k)
            for p, k in zip(ctx["pids"], ctx["ks"], strict=True)
        ],
        np.int64,
    )
    ctx["store"].put(
        j * nc,
        coherence=np.where(valid, coh, 0).astype(np.float32),
        phase=np.where(valid, pha, 0).astype(np.float32),
        label=motion,
        valid=valid,
        sample_id=sids,
        **extra,
    )
    out = {}
    if extra:
        out["truth_pixels"] = extra["truth"].reshape(nc, -1).sum(axis=1)
        out["decoy_pixels"] = (extra["decoy"] > 0).reshape(nc, -1).sum(axis=1)
    return {
        **out,
        "sample_id": sids,
        "motion_pixels": motion.reshape(nc, -1).sum(axis=1),
        "valid_fraction": valid.reshape(nc, -1).mean(axis=1).round(4),
        "phenomena": read_phenomena(pair["label"]),
    }


def extract_stack_patches(
    stack: str,
    centres_path: str,
    pairs: list[dict],
    size: int,
    store_path: str,
    index_path: str,
    threads: int = 1,
    visibility_rad: float | None = None,
) -> pd.DataFrame:
    """Write a stack's store and index. ``pairs``: dicts with delay, reference,
    secondary and the paths coherence, phase, label, and for a simulated stack the truth paths
    truth_deformation, truth_valid, decoys (then ``visibility_rad`` is the annotators'
    visibility threshold, radians). Returns the index."""
    centres = read_centres(centres_path)
    centres = centres[centres["zone"] != ""].reset_index(drop=True)
    pairs = sorted(pairs, key=lambda p: (int(p["delay"]), p["reference"], p["secondary"]))
    if not pairs:
        raise IsslideError(f"stack {stack}: no interferograms to cut patches from")
    grid = Grid.of(pairs[0]["label"])
    has_truth = [all(p.get(k) for k in TRUTH_PATHS) for p in pairs]
    truth = all(has_truth)
    if any(has_truth) and not truth:
        raise IsslideError(f"stack {stack}: truth rasters for some interferograms only")
    if truth and visibility_rad is None:
        raise IsslideError(f"stack {stack}: truth rasters given without a visibility threshold")
    kinds: dict[int, str] = {}
    for p in pairs:
        for key in ("label", "coherence", "phase") + (TRUTH_PATHS if truth else ()):
            check_same_grid(grid, pairs[0]["label"], p[key])
        if truth:
            merge_kinds(kinds, read_decoy_kinds(p["decoys"]), p["decoys"])
    nc, npairs = len(centres), len(pairs)
    r0, c0 = window_origin(
        centres["row"].to_numpy(), centres["col"].to_numpy(), size, grid.height, grid.width
    )
    if nc:
        window = Window(
            int(c0.min()),
            int(r0.min()),
            int(c0.max() - c0.min()) + size,
            int(r0.max() - r0.min()) + size,
        )
    else:
        window = Window(0, 0, 1, 1)
    ul_x, ul_y = apply(grid.transform, c0, r0)
    pids = centres["phenomenon_id"].to_numpy().astype(np.int64)
    ks = centres["k"].to_numpy().astype(np.int64)
    blocks = []
    optional = tuple(OPTIONAL_KEYS) if truth else ()
    with StoreWriter(
        store_path, nc * npairs, size, optional=optional, kinds=kinds if truth else None
    ) as store:
        ctx = {
            "truth": truth,
            "visibility_rad": float(visibility_rad) if truth else None,
            "stack": stack,
            "window": window,
            "size": size,
            "r0": r0,
            "c0": c0,
            "ul_x": ul_x,
            "ul_y": ul_y,
            "pids": pids,
            "ks": ks,
            "zones": centres["zone"].tolist(),
            "store": store,
        }
        depth = max(1, int(threads))
        with ThreadPoolExecutor(depth) as pool:
            todo = iter(enumerate(pairs) if nc else [])
            pending: deque = deque()

            def fill():
                # keep at most depth + 1 interferograms in flight: memory stays bounded
                while len(pending) < depth + 1:
                    item = next(todo, None)
                    if item is None:
                        return
                    j, pair = item
                    pending.append((j, pair, pool.submit(_process_pair, j, pair, ctx)))

            fill()
            while pending:
                j, pair, future = pending.popleft()
                fill()
                data = future.result()
                blocks.append(_index_rows(stack, pair, data, centres, r0, c0, ul_x, ul_y))
    if blocks:
        index = pd.concat(blocks, ignore_index=True)
    else:
        index = pd.DataFrame(columns=[c for c in INDEX_COLUMNS if c != "split"] + EXTRA_COLUMNS)
    if index["sample_id"].duplicated().any():
        raise IsslideError(f"stack {stack}: duplicate sample ids; report this as a bug")
    write_csv(index_path, index)
    log.info(
        "stack %s: %d centres x %d interferograms = %d samples (%d with motion)",
        stack,
        nc,
        npairs,
        len(index),
        int(index["has_motion"].sum()) if len(index) else 0,
    )
    return index


def _index_rows(stack, pair, data, centres, r0, c0, ul_x, ul_y) -> pd.DataFrame:
    pids = centres["phenomenon_id"].to_numpy().astype(np.int64)
    phen = data["phenomena"]
    cls = [
        phen.get(int(p), {}).get("class", c) for p, c in zip(pids, centres["class"], strict=True)
    ]
    conf = [
        int(phen.get(int(p), {}).get("confidence", c))
        for p, c in zip(pids, centres["confidence"], strict=True)
    ]
    return pd.DataFrame(
        {
            "sample_id": data["sample_id"],
            "stack": stack,
            "zone": centres["zone"].to_numpy(),
            "role": centres["role"].to_numpy(),
            "delay": int(pair["delay"]),
            "reference": pair["reference"],
            "secondary": pair["secondary"],
            "lon": centres["lon"].to_numpy(),
            "lat": centres["lat"].to_numpy(),
            "row": centres["row"].to_numpy(),
            "col": centres["col"].to_numpy(),
            "phenomenon_id": pids,
            "k": centres["k"].to_numpy().astype(np.int64),
            "class": cls,
            "confidence": conf,
            "annotated": [int(p) in phen for p in pids],
            "has_motion": data["motion_pixels"] > 0,
            "motion_pixels": data["motion_pixels"],
            "valid_fraction": data["valid_fraction"],
            **{k: data[k] for k in ("truth_pixels", "decoy_pixels") if k in data},
            "window_row": r0,
            "window_col": c0,
            "window_lon": ul_x,
            "window_lat": ul_y,
        }
    )


def assemble(
    stacks: dict[str, dict],
    out_train: str,
    out_eval: str,
    out_index: str,
    eval_fraction: float,
    seed: int,
    motion_only: bool = False,
    out_val: str | None = None,
    val_fraction: float = 0.0,
    split_rule: str = "hash",
) -> pd.DataFrame:
    """Split the stacks' samples and write ``train.npz``, ``val.npz``, ``eval.npz``, ``index.csv``.

    ``stacks``: name -> {"store": path, "index": path}. ``out_val`` None: no validation split
    (``val_fraction`` must then be 0); ``split_rule``: see :mod:`isslide.dataset.split`. The optional truth members are carried into the split
    stores when every stack's store has them (else dropped, with a log line).
    """
    if out_val is None and val_fraction > 0:
        raise ValueError("a validation fraction needs out_val")
    frames, stores = [], {}
    for name in sorted(stacks):
        idx = pd.read_csv(
            stacks[name]["index"], dtype={"reference": str, "secondary": str, "zone": str}
        )
        idx["zone"] = idx["zone"].fillna("")
        idx["_stack_row"] = np.arange(len(idx))
        keys = (idx["reference"] + "_" + idx["secondary"]).tolist()
        dated = {
            k: (int(d), r, c)
            for k, d, r, c in zip(
                keys, idx["delay"], idx["reference"], idx["secondary"], strict=True
            )
        }
        out, val = split_interferograms(
            keys, eval_fraction, val_fraction, hash_seed(seed, name), split_rule, dated
        )
        ho = np.array([k in out for k in keys], bool)
        idx["held_out"] = ho
        idx["split"] = assign_split(
            idx["role"].fillna(""),
            ho,
            idx["has_motion"].astype(bool),
            motion_only,
            is_val=np.array([k in val for k in keys], bool),
            use_roles=split_rule == "hash",
        )
        stores[name] = store_layout(stacks[name]["store"])
        ids = read_store(stacks[name]["store"], mmap=True)["sample_id"]
        if len(ids) != len(idx) or not np.array_equal(np.asarray(ids), idx["sample_id"].to_numpy()):
            raise IsslideError(
                f"{stacks[name]['store']}: does not match {stacks[name]['index']}; rerun extract_patches"
            )
        frames.append(idx)
    index = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=INDEX_COLUMNS)
    with_truth = [n for n in stores if all(k in stores[n] for k in OPTIONAL_KEYS)]
    optional = tuple(OPTIONAL_KEYS) if stores and len(with_truth) == len(stores) else ()
    if with_truth and not optional:
        log.info("dataset: truth only for stacks %s; the split stores carry none", with_truth)
    kinds: dict[int, str] = {}
    if optional:
        for name in sorted(stores):
            part = read_store(stacks[name]["store"], mmap=True)
            merge_kinds(kinds, decoy_kinds(part), stacks[name]["store"])
    outputs = [("train", out_train), ("val", out_val), ("eval", out_eval)]
    for split, path in outputs:
        if path is None:
            continue
        sel = index[index["split"] == split]
        size = _patch_size(stores)
        with StoreWriter(
            path, len(sel), size, optional=optional, kinds=kinds if optional else None
        ) as writer:
            at = 0
            for name, grp in sel.groupby("stack", sort=True):
                rows = grp["_stack_row"].to_numpy()
                for s in range(0, len(rows), 256):
                    part = rows[s : s + 256]
                    keys = (*KEYS, *optional)
                    writer.put(at, **read_rows(stacks[name]["store"], part, keys, stores[name]))
                    at += len(part)
    index = index.drop(columns=["_stack_row"])
    cols = INDEX_COLUMNS + [c for c in index.columns if c not in INDEX_COLUMNS]
    write_csv(out_index, index[cols])
    counts = {k: int((index["split"] == k).sum()) for k in ("train", "val", "eval", "unused")}
    log.info(
        "dataset: %d samples: %d train, %d val, %d eval, %d unused",
        len(index),
        *counts.values(),
    )
    return index[cols]


def hash_seed(seed: int, stack: str) -> int:
    """The split seed of a stack (the config seed mixed with the stack name)."""
    return int.from_bytes(
        hashlib.blake2b(f"{seed}/{stack}".encode(), digest_size=4).digest(), "big"
    )


def _patch_size(layouts: dict) -> tuple[int, int]:
    for layout in layouts.values():
        shape = layout["coherence"][2]
        if len(shape) == 3:
            return shape[1], shape[2]
    return (0, 0)
