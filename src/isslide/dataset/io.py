"""Small I/O helpers shared by the label and dataset code: atomic writes, grids, the raster reader."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from ..errors import IsslideError
from ..files import dir_mode, file_mode

WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class Grid:
    """A raster grid: transform, shape and CRS (all rasters of a stack share one)."""

    transform: Affine
    height: int
    width: int
    crs: CRS | None

    @classmethod
    def of(cls, path: str) -> Grid:
        try:
            with rasterio.open(path) as src:
                return cls(src.transform, src.height, src.width, src.crs)
        except rasterio.errors.RasterioError as exc:
            raise IsslideError(unreadable_raster(path, exc)) from None

    def same_as(self, other: Grid, tol: float = 1e-9) -> bool:
        return (
            self.height == other.height
            and self.width == other.width
            and self.transform.almost_equals(other.transform, precision=tol)
        )

    def describe(self) -> str:
        t = self.transform
        return f"{self.width}x{self.height} px, origin ({t.c:.6f}, {t.f:.6f}), pixel {t.a:.3g}"


def apply(transform: Affine, col, row):
    """(x, y) of pixel coordinates (col, row) (scalars or arrays) through ``transform``."""
    t = transform
    return t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f


def check_same_grid(reference: Grid, reference_path: str, path: str) -> Grid:
    grid = Grid.of(path)
    if not grid.same_as(reference):
        raise IsslideError(
            f"{path}: grid {grid.describe()} differs from {reference_path} ({reference.describe()}); "
            "all rasters of a stack must share the interferograms' grid — rerun the steps that made them"
        )
    return grid


# Where the workflow writes each raster: (pattern, rule, its log's job name from the groups).
_PAIR = r"(?P<stack>[^/]+)/(?P<delay>\d+)d/(?P<pair>\d{8}_\d{8})"
_MAKERS = (
    (rf"results/interferograms/{_PAIR}/[^/]+\.tif$", "terrain_correct", "{stack}/{delay}d/{pair}"),
    (rf"results/labels/{_PAIR}\.tif$", "rasterize_labels", "{stack}/{delay}d/{pair}"),
    (
        r"resources/synthetic/(?P<stack>[^/]+)/slc/(?P<date>\d{8})\.tif$",
        "simulate_acquisition",
        "{stack}/{date}",
    ),
    (
        r"resources/synthetic/(?P<stack>[^/]+)/truth/(?P<delay>\d+)d/(?P<pair>\d{8}_\d{8})_\w+\.tif$",
        "simulate_annotations",
        "{stack}/{delay}d/{pair}",
    ),
    (r"resources/synthetic/(?P<stack>[^/]+)/(truth/)?[^/]+\.tif$", "simulate_scene", "{stack}"),
)


def made_by(path: str) -> tuple[str, str] | None:
    """``(rule, job)`` of the workflow rule that writes ``path`` (job: as in its log file
    ``logs/{rule}/{job}.log``), or None for a file the workflow does not make."""
    norm = os.path.abspath(path).replace(os.sep, "/")
    for pattern, rule, job in _MAKERS:
        m = re.search(pattern, norm)
        if m:
            return rule, job.format(**m.groupdict())
    return None


def maker_clause(path: str) -> str:
    """', made by rule R for J (log: logs/R/J.log)' for a workflow output, else ''."""
    maker = made_by(path)
    if maker is None:
        return ""
    rule, job = maker
    return f", made by rule {rule} for {job.replace('/', ' ')} (log: logs/{rule}/{job}.log)"


def remake_fix(path: str) -> str:
    """How to get a good copy of a bad raster: remake it (workflow output) or replace it."""
    if made_by(path) is None:
        return "replace it with a good copy (re-export it) and rerun"
    return "delete it and rerun snakemake, which remakes it"


def unreadable_raster(path: str, exc: BaseException) -> str:
    """One line for a raster that cannot be read: its full path, what failed, who made it, the fix."""
    cause = exc.__cause__ or exc.__context__
    detail = " ".join(str(cause if cause and "previous exception" in str(exc) else exc).split())
    return (
        f"{os.path.abspath(path)}: corrupt or unreadable GeoTIFF ({detail[:200]})"
        f"{maker_clause(path)}; {remake_fix(path)}"
    )


def read_band(path: str, window=None, band: int = 1) -> tuple[np.ndarray, float | None]:
    """``(array, nodata)`` of one band of a raster (optionally a window); a corrupt or truncated
    file is an IsslideError naming the file, the rule that made it and the fix."""
    try:
        with rasterio.open(path) as src:
            return src.read(band, window=window), src.nodata
    except rasterio.errors.RasterioError as exc:
        raise IsslideError(unreadable_raster(path, exc)) from None


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=".part-", suffix=suffix or os.path.splitext(path)[1]
    )
    os.close(fd)
    try:
        yield tmp
        # outputs follow the umask: mkstemp makes 0600, and SQLite (GeoPackage) 0644
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str):
    """Yield a temporary directory next to ``path``; it replaces ``path`` on success."""
    parent = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".part-" + os.path.basename(path) + "-")
    os.chmod(tmp, dir_mode())  # mkdtemp makes 0700; outputs follow the umask
    try:
        yield tmp
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_raster(
    path: str,
    array: np.ndarray,
    transform: Affine,
    crs,
    nodata,
    tags: dict | None = None,
    compress: str | None = "deflate",
) -> None:
    """Write a single-band GeoTIFF atomically (tiled, compressed)."""
    array = np.asarray(array)
    profile = {
        "driver": "GTiff",
        "width": array.shape[1],
        "height": array.shape[0],
        "count": 1,
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    if compress:
        profile.update(compress=compress, predictor=2 if array.dtype.kind in "iu" else 1)
    if array.shape[0] >= 256 and array.shape[1] >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with atomic_path(path, ".tif") as tmp:
        with rasterio.Env(GDAL_PAM_ENABLED="NO"):
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(array, 1)
                if tags:
                    dst.update_tags(
                        **{k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()}
                    )


def write_json(path: str, data) -> None:
    with atomic_path(path, ".json") as tmp:
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=False)
            fh.write("\n")


def write_csv(path: str, frame) -> None:
    with atomic_path(path, ".csv") as tmp:
        frame.to_csv(tmp, index=False)
