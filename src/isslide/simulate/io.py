"""Atomic writers: every output appears complete under its final name or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import rasterio
import rasterio.errors


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # also files a library recreated (SQLite: 0644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1)
        fh.write("\n")


def write_npz(path, **arrays) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def write_raster(path, bands, transform=None, crs="EPSG:4326", nodata=None, tags=None) -> None:
    """Write a (bands, rows, cols) or (rows, cols) array as a compressed GeoTIFF, atomically."""
    data = np.asarray(bands)
    if data.ndim == 2:
        data = data[None]
    profile = dict(
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        compress="deflate",
        tiled=data.shape[1] >= 256 and data.shape[2] >= 256,
    )
    if transform is not None:
        profile.update(transform=transform, crs=crs)
    if nodata is not None:
        profile["nodata"] = nodata
    with atomic_path(path, ".tif") as tmp, warnings.catch_warnings():
        # radar-geometry rasters (SLCs) have no georeferencing, on purpose
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            if tags:
                dst.update_tags(**tags)


def write_vector(path, frame, driver: str, layer: str | None = None, append_layers=()) -> None:
    """Write a GeoDataFrame (plus optional extra ``(layer, frame)``) to a GeoPackage, atomically."""
    with atomic_path(path, ".gpkg") as tmp:
        os.remove(tmp)
        frame.to_file(tmp, driver=driver, layer=layer, engine="pyogrio")
        for name, extra in append_layers:
            extra.to_file(tmp, driver=driver, layer=name, engine="pyogrio", append=False)


SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def write_shapefile(path, frame) -> None:
    """Write an ESRI Shapefile: all sidecar files into a temporary folder, then moved in place."""
    path = Path(path)
    stem = path.with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix=f".{stem.name}.", suffix=".tmp", dir=path.parent)
    try:
        target = Path(tmpdir) / (stem.name + ".shp")
        with warnings.catch_warnings():
            # DBF field names hold 10 characters: 'repetitions' is stored as 'repetition'
            warnings.filterwarnings("ignore", message=".*(truncated|laundered).*")
            frame.to_file(
                target,
                driver="ESRI Shapefile",
                engine="pyogrio",
                geometry_type="Polygon",
                encoding="UTF-8",
            )
        for ext in SHAPEFILE_PARTS:
            src = target.with_suffix(ext)
            if not src.exists():
                raise OSError(f"{src}: the shapefile driver did not write it")
        for ext in SHAPEFILE_PARTS:
            os.replace(target.with_suffix(ext), str(stem) + ext)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
