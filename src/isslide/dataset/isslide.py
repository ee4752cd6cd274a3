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
delay and dates are parsed from the folder names when they contain them (``6d``/``6days``,
``20180702_20180708`` or the authors' ``02Jul2018_08Jul2018``).

Trees written by the authors' extraction code (github Ant89ne/ISSLIDE,
``MovingAreasExtraction``) have three quirks the loader accepts (:func:`read_isslide`):

* border patches of 101 x 100 or 100 x 99 pixels (windows cut by float-coordinate ``.loc``
  slicing, inclusive at both ends): cropped (first rows/columns kept) or padded (invalid pixels
  at the bottom/right) to the tree's patch size, counted in the log and the import manifest;
* ids wrapped modulo 256 in file names (the global segmentation is cast to uint8, so area 259 is
  written ``3_k`` and area 256 ``0_k``): the file's number is kept as ``phenomenon_id``; when two
  zones then share (interferogram, id, k), the sample ids include the zone;
* segmentation masks whose nodata value is 0 (the no-motion value): such a nodata is ignored.

A file that cannot be read, lacks its coherence or mask, or is far from the patch size is
skipped and counted; it never aborts the import.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import tempfile
from collections import Counter

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.io import MemoryFile

from ..errors import IsslideError
from ..files import apply, file_mode

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
    from ..files import Grid, atomic_path, write_json
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
_DATES_SNAP = re.compile(r"(\d{2}[A-Za-z]{3}\d{4})\D+(\d{2}[A-Za-z]{3}\d{4})")
SIZE_TOLERANCE = 2  # pixels per axis cropped or padded; farther from the patch size: skipped
MAX_LISTED = 20  # skipped files named in the manifest


def _read(path: str):
    with rasterio.open(path) as src:
        return src.read(1), src.nodata, src.transform, src.crs


def parse_dates(name: str) -> tuple[str, str]:
    """YYYYMMDD reference and secondary dates of an interferogram folder name, or ("", "")."""
    m = _DATES.search(name)
    if m:
        return m.group(1), m.group(2)
    m = _DATES_SNAP.search(name)  # the authors' folders, SNAP's date style: 02Jul2018_08Jul2018
    if m:
        try:
            return tuple(
                dt.datetime.strptime(d.title(), "%d%b%Y").strftime("%Y%m%d") for d in m.groups()
            )
        except ValueError:
            pass
    return "", ""


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
                reference, secondary = parse_dates(ifg)
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
                            "reference": reference,
                            "secondary": secondary,
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


def _shape(path: str):
    with rasterio.open(path) as src:
        return src.height, src.width


def fit(array: np.ndarray, size: int, fill) -> np.ndarray:
    """``array`` cropped (first rows/columns kept) or padded (``fill`` at the bottom/right) to
    ``size`` x ``size``."""
    out = np.full((size, size), fill, array.dtype)
    h, w = min(size, array.shape[0]), min(size, array.shape[1])
    out[:h, :w] = array[:h, :w]
    return out


def _valid(array, nodata, ignore=()):
    ok = np.isfinite(array)
    if nodata is not None and nodata not in ignore:
        ok &= array != nodata
    return ok


class ImportReport:
    """What the loader did with each file: imported, cropped, padded, skipped (and why)."""

    def __init__(self, found: int, size: int):
        self.found, self.size = found, size
        self.cropped = self.padded = 0
        self.skipped: Counter = Counter()
        self.skipped_files: list[dict] = []
        self.zone_in_sample_id = False
        self.ids: Counter = Counter()

    def skip(self, path: str, reason: str) -> None:
        self.skipped[reason] += 1
        if len(self.skipped_files) < MAX_LISTED:
            self.skipped_files.append({"file": path, "reason": reason})
        log.warning("%s: skipped (%s)", path, reason)

    def as_dict(self, imported: int) -> dict:
        return {
            "patches_found": self.found,
            "patch_size": self.size,
            "imported": imported,
            "cropped_to_size": self.cropped,
            "padded_to_size": self.padded,
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_files": self.skipped_files,
            "max_phenomenon_id": max(self.ids) if self.ids else None,
            "files_with_id_0": int(self.ids.get(0, 0)),
            "phenomenon_ids_may_be_modulo_256": bool(self.ids) and max(self.ids) <= 255,
            "zone_in_sample_id": self.zone_in_sample_id,
        }


def read_isslide(
    root: str, stack: str = "isslide", patch_size: int | None = None
) -> tuple[dict[str, np.ndarray], pd.DataFrame, dict]:
    """Read an ISSLIDE-layout tree into store arrays + index + an import report (dict).

    ``patch_size`` None: the most common phase-patch size of the tree (square). Patches within
    :data:`SIZE_TOLERANCE` pixels of it are cropped or padded, the others skipped.
    """
    frame = scan_isslide(root)
    shapes = []
    for path in frame["phase_path"]:
        try:
            shapes.append(_shape(path))
        except rasterio.errors.RasterioIOError:
            shapes.append(None)
    if patch_size is None:
        common = Counter(s for s in shapes if s)
        if not common:
            raise IsslideError(f"{root}: no readable phase patch (every GeoTIFF failed to open)")
        (h, w), _ = common.most_common(1)[0]
        patch_size = max(h, w) if abs(h - w) <= SIZE_TOLERANCE else min(h, w)
    size = int(patch_size)
    report = ImportReport(len(frame), size)
    n = len(frame)
    arrays = {
        "coherence": np.zeros((n, size, size), np.float32),
        "phase": np.zeros((n, size, size), np.float32),
        "label": np.zeros((n, size, size), np.uint8),
        "valid": np.zeros((n, size, size), np.uint8),
    }
    keep = np.zeros(n, bool)
    lons, lats, motion = np.zeros(n), np.zeros(n), np.zeros(n, bool)
    for i, row in enumerate(frame.itertuples()):
        missing = next(
            (
                key
                for key in ("coherence_path", "mask_path")
                if not os.path.exists(getattr(row, key))
            ),
            None,
        )
        if missing:
            report.skip(row.phase_path, f"no {missing[:-5]} file")
            continue
        try:
            phase, pnd, transform, _ = _read(row.phase_path)
            coh, cnd, _, _ = _read(row.coherence_path)
            mask, mnd, _, _ = _read(row.mask_path)
        except rasterio.errors.RasterioIOError:
            report.skip(row.phase_path, "unreadable GeoTIFF")
            continue
        shapes_ = {phase.shape, coh.shape, mask.shape}
        if any(
            abs(h - size) > SIZE_TOLERANCE or abs(w - size) > SIZE_TOLERANCE for h, w in shapes_
        ):
            report.skip(row.phase_path, f"not about {size} x {size} pixels")
            continue
        if any(h > size or w > size for h, w in shapes_):
            report.cropped += 1
        if any(h < size or w < size for h, w in shapes_):
            report.padded += 1
        valid = (
            fit(_valid(phase, pnd), size, False)
            & fit(_valid(coh, cnd), size, False)
            & fit(_valid(mask, mnd, ignore=(0, 1)), size, False)
        )
        label = (fit(mask, size, 0) > 0) & valid
        arrays["phase"][i] = np.where(valid, fit(phase, size, 0), 0)
        arrays["coherence"][i] = np.where(valid, fit(coh, size, 0), 0)
        arrays["label"][i] = label
        arrays["valid"][i] = valid
        lons[i], lats[i] = apply(transform, size / 2, size / 2)
        motion[i] = bool(label.any())
        keep[i] = True
        if row.phenomenon_id >= 0:
            report.ids[row.phenomenon_id] += 1
    if not keep.any():
        raise IsslideError(
            f"{root}: none of the {n} patches could be imported ({dict(report.skipped)}); "
            "check the tree against docs/dataset.md"
        )
    frame = frame[keep].reset_index(drop=True)
    arrays = {k: v[keep] for k, v in arrays.items()}
    lons, lats, motion = lons[keep], lats[keep], motion[keep]
    refs = np.where(frame["reference"] != "", frame["reference"], frame["interferogram"])
    secs = np.where(frame["reference"] != "", frame["secondary"], "")
    named = frame["phenomenon_id"] >= 0

    def ids(with_zone: bool) -> np.ndarray:
        out = np.zeros(len(frame), np.int64)
        for i, row in enumerate(frame.itertuples()):
            if named.iloc[i]:
                pid = f"{row.zone}/{row.phenomenon_id}" if with_zone else row.phenomenon_id
                k = row.k
            else:
                pid, k = f"{row.zone}/{row.name}", 0
            out[i] = sample_id(stack, row.delay, refs[i], secs[i], pid, k)
        return out

    sids = ids(False)
    if len(np.unique(sids)) < len(sids):  # (interferogram, id, k) repeats across zones
        sids = ids(True)
        report.zone_in_sample_id = True
        log.warning(
            "%s: (interferogram, id, k) repeats across zones (ids numbered per zone, or wrapped "
            "modulo 256); sample ids include the zone",
            root,
        )
    arrays["sample_id"] = sids
    index = pd.DataFrame(
        {
            "sample_id": sids,
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
    summary = report.as_dict(len(index))
    log.info(
        "%s: %d of %d patches imported (%d cropped, %d padded to %d x %d), %d skipped %s",
        root,
        len(index),
        n,
        report.cropped,
        report.padded,
        size,
        size,
        sum(report.skipped.values()),
        dict(report.skipped) or "",
    )
    return arrays, index, summary


def load_isslide(
    root: str, stack: str = "isslide", patch_size: int | None = None
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Read an ISSLIDE-layout tree into store arrays + index (same meaning as the store)."""
    arrays, index, _ = read_isslide(root, stack, patch_size)
    return arrays, index


IMPORT_MANIFEST = "import_manifest.json"


def import_isslide(
    root: str,
    out_dir: str,
    evaluation_zones: list[str],
    eval_fraction: float = 0.2,
    seed: int = 0,
    motion_only: bool = False,
    patch_size: int | None = None,
    val_fraction: float | None = None,
    split_rule: str = "hash",
) -> dict:
    """Convert an ISSLIDE-layout tree into ``train.npz``, ``val.npz``, ``eval.npz``,
    ``index.csv`` and ``import_manifest.json`` (what was read, cropped, padded, skipped; the
    split sizes). ``val_fraction`` None: the schema's ``dataset.val_fraction``. Returns the
    manifest (``train``, ``val`` and ``eval``: sample counts). ``split_rule`` ``last_by_date``
    (the authors' code): the last ``eval_fraction`` of each delay and zone's interferograms by
    date are evaluation, in every zone (``evaluation_zones`` not used)."""
    from ..config import load_schema
    from ..files import write_json
    from .split import assign_split, split_interferograms

    if val_fraction is None:
        val_fraction = load_schema()["properties"]["dataset"]["properties"]["val_fraction"][
            "default"
        ]

    arrays, index, report = read_isslide(root, patch_size=patch_size)
    zones = set(index["zone"])
    unknown = sorted(set(evaluation_zones) - zones)
    if unknown:
        raise IsslideError(
            f"--eval-zone {unknown[0]}: no such zone in {root} (zones: {', '.join(sorted(zones))})"
        )
    by_date = split_rule == "last_by_date"
    # last_by_date splits each delay and zone's interferograms: the zone is part of the key
    parts = ["stack", "delay", "zone", "interferogram"] if by_date else ["stack", "interferogram"]
    key = index[parts[0]].astype(str)
    for col in parts[1:]:
        key = key + "/" + index[col].astype(str)
    dated = {
        k: ((d, z), r or i, c)
        for k, d, z, r, c, i in zip(
            key,
            index["delay"],
            index["zone"],
            index["reference"],
            index["secondary"],
            index["interferogram"],
            strict=True,
        )
    }
    out_keys, val_keys = split_interferograms(
        sorted(set(key)), eval_fraction, val_fraction, seed, split_rule, dated
    )
    roles = np.where(index["zone"].isin(evaluation_zones), "evaluation", "train")
    index["split"] = assign_split(
        roles,
        key.isin(out_keys).to_numpy(),
        index["has_motion"].to_numpy(),
        motion_only,
        is_val=key.isin(val_keys).to_numpy(),
        use_roles=not by_date,
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
    os.chmod(tmp, file_mode())  # outputs follow the umask (mkstemp makes 0600)
    index.to_csv(tmp, index=False)
    os.replace(tmp, os.path.join(out_dir, "index.csv"))
    manifest = {
        "source": os.path.abspath(root),
        **report,
        "evaluation_zones": sorted(evaluation_zones),
        "train": sizes["train"],
        "val": sizes["val"],
        "eval": sizes["eval"],
        "unused": int((index["split"] == "unused").sum()),
    }
    write_json(os.path.join(out_dir, IMPORT_MANIFEST), manifest)
    return manifest
