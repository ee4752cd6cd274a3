"""ISSLIDE's published layout: writer (fast small GeoTIFFs) and loader.

Layout under a root (ours: ``results/dataset/ready/isslide/{stack}``)::

    {delay}d/{zone}/{reference}_{secondary}/phase/{id}_{k}.tif        float32 radians, nodata -9999
    {delay}d/{zone}/{reference}_{secondary}/coherence/{id}_{k}.tif    float32 [0, 1], nodata -9999
    {delay}d/{zone}/Segmentations/{reference}_{secondary}/{id}_{k}.tif  uint8 mask: 0 no motion,
                                                                       1 motion, 255 invalid (nodata)

``{id}`` is the phenomenon id, ``{k}`` the centre's number within the area. Every file is a
georeferenced (EPSG:4326) GeoTIFF of one patch.

:func:`load_isslide` reads such a tree (ours or the released ISSLIDE data) into the arrays of
the training store (``coherence, phase, label, valid, sample_id``) plus an index frame; the
delay and dates are parsed from the folder names when they contain them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.io import MemoryFile

from ..errors import IsslideError
from .io import apply

log = logging.getLogger("isslide.dataset")

NODATA = -9999.0
MASK_NODATA = 255
SEGMENTATIONS = "Segmentations"


def layout_paths(delay: int, zone: str, interferogram: str, pid: int, k: int) -> dict[str, str]:
    name = f"{pid}_{k}.tif"
    base = os.path.join(f"{delay}d", zone)
    return {
        "phase": os.path.join(base, interferogram, "phase", name),
        "coherence": os.path.join(base, interferogram, "coherence", name),
        "mask": os.path.join(base, SEGMENTATIONS, interferogram, name),
    }


class GeoTiffTemplate:
    """Writes many same-shaped single-band GeoTIFFs fast.

    GDAL (through rasterio) makes one uncompressed single-strip template; each file is the
    template's bytes with the pixel block and the tie point (upper-left corner) replaced. The
    result is byte-for-byte what rasterio would write for that transform. Falls back to rasterio
    when the template's layout cannot be located.
    """

    _X0, _Y0 = 123.456789012345, -65.4321098765432

    def __init__(self, shape: tuple[int, int], dtype, pixel: tuple[float, float], crs, nodata):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.pixel = pixel
        self.crs = crs
        self.nodata = nodata
        h, w = self.shape
        probe = (np.arange(h * w) % 251 + 1).astype(self.dtype).reshape(h, w)
        self.bytes = bytearray(self._rasterio_bytes(probe, self._X0, self._Y0))
        data = probe.tobytes()
        self.data_at = self.bytes.find(data)
        x = np.float64(self._X0).tobytes()
        y = np.float64(self._Y0).tobytes()
        self.x_at = self.bytes.find(x)
        self.y_at = self.bytes.find(y)
        self.fast = (
            self.data_at >= 0
            and self.bytes.find(data, self.data_at + 1) < 0
            and self.x_at >= 0
            and self.y_at == self.x_at + 8
            and self.bytes.find(x, self.x_at + 1) < 0
        )

    def _profile(self, x0: float, y0: float) -> dict:
        h, w = self.shape
        return {
            "driver": "GTiff",
            "width": w,
            "height": h,
            "count": 1,
            "dtype": self.dtype.name,
            "crs": self.crs,
            "nodata": self.nodata,
            "blockysize": h,
            "transform": Affine(self.pixel[0], 0.0, x0, 0.0, -self.pixel[1], y0),
        }

    def _rasterio_bytes(self, array: np.ndarray, x0: float, y0: float) -> bytes:
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), MemoryFile() as mem:
            with mem.open(**self._profile(x0, y0)) as dst:
                dst.write(array, 1)
            return mem.read()

    def encode(self, array: np.ndarray, x0: float, y0: float) -> bytes:
        array = np.ascontiguousarray(array, dtype=self.dtype)
        if array.shape != self.shape:
            raise ValueError(f"patch shape {array.shape}, template {self.shape}")
        if not self.fast:
            return self._rasterio_bytes(array, x0, y0)
        out = bytearray(self.bytes)
        data = array.tobytes()
        out[self.data_at : self.data_at + len(data)] = data
        out[self.x_at : self.x_at + 16] = np.array([x0, y0], np.float64).tobytes()
        return bytes(out)

    def write(self, path: str, array: np.ndarray, x0: float, y0: float) -> None:
        with open(path, "wb") as fh:
            fh.write(self.encode(array, x0, y0))


class LayoutWriter:
    """The templates and folder cache used to write a stack's ISSLIDE layout under ``root``."""

    def __init__(self, root: str, size: int, pixel: tuple[float, float], crs):
        self.root = root
        self.float = GeoTiffTemplate((size, size), np.float32, pixel, crs, NODATA)
        self.mask = GeoTiffTemplate((size, size), np.uint8, pixel, crs, MASK_NODATA)
        self._dirs: set[str] = set()

    def _dir(self, path: str) -> None:
        d = os.path.dirname(path)
        if d not in self._dirs:
            os.makedirs(d, exist_ok=True)
            self._dirs.add(d)


def write_layout(
    store_path: str, index_path: str, grid_path: str, out_dir: str, listing_path: str
) -> dict:
    """Write or refresh a stack's ISSLIDE layout under ``out_dir`` from its store and index.

    Incremental: a file whose bytes did not change is not rewritten, files of samples that no
    longer exist are removed (only files this function wrote: it keeps their digests in
    ``out_dir/.isslide-digests.json``, dropped while it works so a failed run rewrites
    everything next time). ``listing_path`` (CSV: sample_id and the three relative paths) is
    written last. Returns counts of written / unchanged / removed files.
    """
    from .io import Grid, atomic_path, write_json
    from .store import read_rows, store_layout

    index = pd.read_csv(index_path, dtype={"reference": str, "secondary": str, "zone": str})
    grid = Grid.of(grid_path)
    layout = store_layout(store_path)
    n, h, w = layout["coherence"][2] if len(layout["coherence"][2]) == 3 else (0, 0, 0)
    if n != len(index):
        raise IsslideError(
            f"{store_path}: {n} samples but {index_path} has {len(index)} rows; rerun extract_patches"
        )
    os.makedirs(out_dir, exist_ok=True)
    digests_path = os.path.join(out_dir, ".isslide-digests.json")
    old: dict[str, str] = {}
    if os.path.exists(digests_path):
        try:
            with open(digests_path) as fh:
                old = json.load(fh)
        except (OSError, ValueError):
            old = {}
        os.unlink(digests_path)
    new: dict[str, str] = {}
    writer = (
        LayoutWriter(out_dir, h, (abs(grid.transform.a), abs(grid.transform.e)), grid.crs)
        if n
        else None
    )
    written = unchanged = 0
    listing = []
    sids = index["sample_id"].astype("int64").tolist()
    delays = index["delay"].astype(int).tolist()
    zones = index["zone"].fillna("").tolist()
    ifgs = (index["reference"] + "_" + index["secondary"]).tolist()
    pids = index["phenomenon_id"].astype(int).tolist()
    ks = index["k"].astype(int).tolist()
    lons = index["window_lon"].astype(float).tolist()
    lats = index["window_lat"].astype(float).tolist()
    for start in range(0, n, 256):
        rows = np.arange(start, min(n, start + 256))
        data = read_rows(
            store_path, rows, ("coherence", "phase", "label", "valid", "sample_id"), layout
        )
        valid = data["valid"].astype(bool)
        coh = np.where(valid, data["coherence"], NODATA).astype(np.float32)
        pha = np.where(valid, data["phase"], NODATA).astype(np.float32)
        mask = np.where(valid, data["label"], MASK_NODATA).astype(np.uint8)
        for i, r in enumerate(rows):
            if sids[r] != int(data["sample_id"][i]):
                raise IsslideError(
                    f"{store_path}: sample {r} is not the index's; rerun extract_patches"
                )
            paths = layout_paths(delays[r], zones[r], ifgs[r], pids[r], ks[r])
            x0, y0 = lons[r], lats[r]
            for key, array, template in (
                ("phase", pha[i], writer.float),
                ("coherence", coh[i], writer.float),
                ("mask", mask[i], writer.mask),
            ):
                blob = template.encode(array, x0, y0)
                digest = hashlib.blake2b(blob, digest_size=16).hexdigest()
                rel = paths[key]
                new[rel] = digest
                full = os.path.join(out_dir, rel)
                if old.get(rel) == digest and os.path.exists(full):
                    unchanged += 1
                    continue
                writer._dir(full)
                with open(full, "wb") as fh:
                    fh.write(blob)
                written += 1
            listing.append((sids[r], paths["phase"], paths["coherence"], paths["mask"]))
    removed = 0
    for rel in sorted(set(old) - set(new)):
        full = os.path.join(out_dir, rel)
        if os.path.exists(full):
            os.unlink(full)
            removed += 1
    write_json(digests_path, new)
    frame = pd.DataFrame(listing, columns=["sample_id", "phase", "coherence", "mask"])
    with atomic_path(listing_path, ".csv") as tmp:
        frame.to_csv(tmp, index=False)
    counts = {"written": written, "unchanged": unchanged, "removed": removed}
    log.info("%s: ISSLIDE layout of %d samples: %s", out_dir, n, counts)
    return counts


# --------------------------------------------------------------------------- loader
_DATES = re.compile(r"(\d{8})\D+(\d{8})")


def _read(path: str):
    with rasterio.open(path) as src:
        return src.read(1), src.nodata, src.transform, src.crs


def sample_id(stack: str, delay, reference: str, secondary: str, pid, k) -> int:
    """A stable non-negative int64 from a sample's identity (the same for the store and loader)."""
    text = f"{stack}/{delay}d/{reference}_{secondary}/{pid}_{k}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") >> 1


def scan_isslide(root: str) -> pd.DataFrame:
    """One row per patch of an ISSLIDE-layout tree: delay, zone, interferogram, id, k, paths."""
    if not os.path.isdir(root):
        raise IsslideError(f"{root}: ISSLIDE data folder not found; point it at the release's root")
    rows = []
    for delay_dir in sorted(os.listdir(root)):
        dpath = os.path.join(root, delay_dir)
        m = re.search(r"\d+", delay_dir)
        if not os.path.isdir(dpath) or not m:
            continue
        delay = int(m.group())
        for zone in sorted(os.listdir(dpath)):
            zpath = os.path.join(dpath, zone)
            if not os.path.isdir(zpath):
                continue
            for ifg in sorted(os.listdir(zpath)):
                ipath = os.path.join(zpath, ifg)
                if ifg == SEGMENTATIONS or not os.path.isdir(os.path.join(ipath, "phase")):
                    continue
                dates = _DATES.search(ifg)
                for name in sorted(os.listdir(os.path.join(ipath, "phase"))):
                    if not name.lower().endswith((".tif", ".tiff")):
                        continue
                    stem = os.path.splitext(name)[0]
                    mm = re.fullmatch(r"(\d+)_(\d+)", stem)
                    rows.append(
                        {
                            "delay": delay,
                            "zone": zone,
                            "interferogram": ifg,
                            "reference": dates.group(1) if dates else "",
                            "secondary": dates.group(2) if dates else "",
                            "phenomenon_id": int(mm.group(1)) if mm else -1,
                            "k": int(mm.group(2)) if mm else -1,
                            "name": stem,
                            "phase_path": os.path.join(ipath, "phase", name),
                            "coherence_path": os.path.join(ipath, "coherence", name),
                            "mask_path": os.path.join(zpath, SEGMENTATIONS, ifg, name),
                        }
                    )
    if not rows:
        raise IsslideError(
            f"{root}: no patches found; expected {{delay}}/{{zone}}/{{interferogram}}/phase/{{id}}_{{k}}.tif"
        )
    return pd.DataFrame(rows)


def load_isslide(root: str, stack: str = "isslide") -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Read an ISSLIDE-layout tree into store arrays + index (same meaning as the store)."""
    frame = scan_isslide(root)
    n = len(frame)
    arrays = None
    lons, lats, motion = np.zeros(n), np.zeros(n), np.zeros(n, bool)
    for i, row in enumerate(frame.itertuples()):
        for key in ("coherence_path", "mask_path"):
            if not os.path.exists(getattr(row, key)):
                raise IsslideError(
                    f"{getattr(row, key)}: missing (the patch {row.phase_path} has no {key[:-5]})"
                )
        phase, pnd, transform, _ = _read(row.phase_path)
        coh, cnd, _, _ = _read(row.coherence_path)
        mask, mnd, _, _ = _read(row.mask_path)
        if not (phase.shape == coh.shape == mask.shape):
            raise IsslideError(
                f"{row.mask_path}: shape {mask.shape} differs from its phase patch {phase.shape}"
            )
        if arrays is None:
            shape = (n, *phase.shape)
            arrays = {
                "coherence": np.zeros(shape, np.float32),
                "phase": np.zeros(shape, np.float32),
                "label": np.zeros(shape, np.uint8),
                "valid": np.zeros(shape, np.uint8),
                "sample_id": np.zeros(n, np.int64),
            }
        elif phase.shape != arrays["phase"].shape[1:]:
            raise IsslideError(
                f"{row.phase_path}: shape {phase.shape}, other patches {arrays['phase'].shape[1:]}"
            )
        valid = np.isfinite(phase) & np.isfinite(coh)
        if pnd is not None:
            valid &= phase != pnd
        if cnd is not None:
            valid &= coh != cnd
        if mnd is not None:
            valid &= mask != mnd
        label = (mask > 0) & valid
        arrays["phase"][i] = np.where(valid, phase, 0)
        arrays["coherence"][i] = np.where(valid, coh, 0)
        arrays["label"][i] = label
        arrays["valid"][i] = valid
        if row.reference:
            ref, sec = row.reference, row.secondary
        else:
            ref, sec = row.interferogram, ""
        if row.phenomenon_id >= 0:
            pid, k = row.phenomenon_id, row.k
        else:
            pid, k = f"{row.zone}/{row.name}", 0
        arrays["sample_id"][i] = sample_id(stack, row.delay, ref, sec, pid, k)
        h, w = phase.shape
        lons[i], lats[i] = apply(transform, w / 2, h / 2)
        motion[i] = bool(label.any())
    index = pd.DataFrame(
        {
            "sample_id": arrays["sample_id"],
            "stack": stack,
            "zone": frame["zone"],
            "delay": frame["delay"],
            "reference": frame["reference"],
            "secondary": frame["secondary"],
            "interferogram": frame["interferogram"],
            "lon": lons,
            "lat": lats,
            "row": -1,
            "col": -1,
            "phenomenon_id": frame["phenomenon_id"],
            "k": frame["k"],
            "class": "",
            "confidence": -1,
            "has_motion": motion,
        }
    )
    return arrays, index


def import_isslide(
    root: str,
    out_dir: str,
    evaluation_zones: list[str],
    eval_fraction: float = 0.2,
    seed: int = 0,
    motion_only: bool = False,
    val_fraction: float | None = None,
) -> dict:
    """Convert an ISSLIDE-layout tree into ``train.npz``, ``val.npz``, ``eval.npz`` and
    ``index.csv`` (``val_fraction`` None: the schema's ``dataset.val_fraction``)."""
    from ..config import load_schema
    from .split import assign_split, split_interferograms

    if val_fraction is None:
        val_fraction = load_schema()["properties"]["dataset"]["properties"]["val_fraction"][
            "default"
        ]

    arrays, index = load_isslide(root)
    zones = set(index["zone"])
    unknown = sorted(set(evaluation_zones) - zones)
    if unknown:
        raise IsslideError(
            f"--eval-zone {unknown[0]}: no such zone in {root} (zones: {', '.join(sorted(zones))})"
        )
    ifgs = index[["stack", "interferogram"]].drop_duplicates()
    keys = [f"{s}/{i}" for s, i in zip(ifgs["stack"], ifgs["interferogram"], strict=True)]
    out_keys, val_keys = split_interferograms(keys, eval_fraction, val_fraction, seed)
    roles = np.where(index["zone"].isin(evaluation_zones), "evaluation", "train")
    key = index["stack"] + "/" + index["interferogram"]
    index["split"] = assign_split(
        roles,
        key.isin(out_keys).to_numpy(),
        index["has_motion"].to_numpy(),
        motion_only,
        is_val=key.isin(val_keys).to_numpy(),
    )
    from .store import write_store

    os.makedirs(out_dir, exist_ok=True)
    sizes = {}
    for split, name in (("train", "train.npz"), ("val", "val.npz"), ("eval", "eval.npz")):
        sel = np.flatnonzero(index["split"].to_numpy() == split)
        write_store(os.path.join(out_dir, name), {k: v[sel] for k, v in arrays.items()})
        sizes[split] = int(len(sel))
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".csv.part")
    os.close(fd)
    index.to_csv(tmp, index=False)
    os.replace(tmp, os.path.join(out_dir, "index.csv"))
    return sizes
