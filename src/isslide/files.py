"""The one I/O module: atomic writers, the raster reader and grids, the umask, copies.

Every output of the library is written through the atomic writers here (a temporary file or
folder next to the target, renamed onto it on success), so an interrupted job never leaves a
half-written output that looks finished.


* Every output follows the umask (``tempfile.mkstemp``/``mkdtemp`` create 0600/0700 files and
  folders; the atomic writers chmod them to :func:`file_mode`/:func:`dir_mode` before the rename),
  so a group-shared project directory (``umask 002``) works.
* :func:`copy_file` makes a copy that shares nothing with its source (a reflink where the
  filesystem supports copy-on-write clones, else a byte copy): editing the source later never
  changes the copy, unlike a hard link.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.errors
from affine import Affine
from rasterio.crs import CRS

from .errors import IsslideError
from .layout import SHAPEFILE_PARTS

# ioctl(dst, FICLONE, src): clone a whole file (btrfs, XFS with reflink=1, bcachefs, overlayfs on those)
FICLONE = 0x40049409


def umask() -> int:
    """The process umask, read without changing it where Linux exposes it (thread safe)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new regular file under the current umask (what ``open(path, 'w')`` gives)."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """Mode of a new folder under the current umask (what ``os.mkdir`` gives)."""
    return 0o777 & ~umask()


def copy_file(src: str, dst: str) -> str:
    """Copy ``src`` to ``dst`` as an independent file; return ``'reflink'`` or ``'copy'``.

    The copy's mode follows the umask (not the source's), so a read-only input gives a normal
    output file.
    """
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            return "reflink"
        except OSError:
            pass
    shutil.copyfile(src, dst)
    return "copy"


# --- grids, the raster reader, atomic writers ------------------------------------------------

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


def write_json(path: str, data, indent: int = 2) -> None:
    with atomic_path(path, ".json") as tmp:
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=indent, sort_keys=False)
            fh.write("\n")


def write_csv(path: str, frame) -> None:
    with atomic_path(path, ".csv") as tmp:
        frame.to_csv(tmp, index=False)


def write_npz(path, **arrays) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def write_bands(path, bands, transform=None, crs="EPSG:4326", nodata=None, tags=None) -> None:
    """Write a (bands, rows, cols) or (rows, cols) array as a compressed GeoTIFF, atomically
    (georeferenced when ``transform`` is given: the simulator's radar-geometry SLCs are not)."""
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


# Outputs of earlier runs never travel with a copy of a checkout (ignored by git anyway, but a
# developer's tree may hold them as untracked files); nor do benchmark records.
CHECKOUT_SKIP = ("results/", "resources/synthetic/", "logs/", ".snakemake/", ".git/")


def copy_checkout(repo: str | Path, dest: str | Path) -> Path:
    """A clean copy of a git checkout (tracked and untracked-not-ignored files, as a fresh
    clone would hold them plus the uncommitted work), without earlier outputs. For tests and
    benchmarks that run the workflow where it cannot touch the checkout."""
    repo, dest = Path(repo), Path(dest)
    listing = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for f in filter(None, listing.split("\0")):
        if f.startswith(CHECKOUT_SKIP) or (f.startswith("benchmarks/") and f.count("/") > 1):
            continue
        src = repo / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    return dest
