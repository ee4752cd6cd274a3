"""Intermediate product format of the embedded backend.

A product is a float32 multi-band GeoTIFF in radar geometry (no CRS): each named *field* is one
band (float fields) or two bands ``<name>.re`` / ``<name>.im`` (complex fields). The product's
metadata (kind, geometry, orbits, dates, processing history) is JSON in the GDAL metadata tag
``ISSLIDE_METADATA``. Products are written block by block (lines) to a temporary name in the
destination folder and renamed into place only when complete, so a failed step never leaves a
file that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from ..errors import IsslideError

FORMAT = "isslide-product/1"
META_TAG = "ISSLIDE_METADATA"
COMPLEX = "complex64"
FLOAT = "float32"


def _bands(fields: Sequence[tuple[str, str]]) -> list[str]:
    names = []
    for name, kind in fields:
        if kind == COMPLEX:
            names += [f"{name}.re", f"{name}.im"]
        elif kind == FLOAT:
            names.append(name)
        else:
            raise ValueError(f"unknown field type {kind}")
    return names


def open_radar(path, mode: str = "r", **kwargs):
    """rasterio.open for radar-geometry rasters (no CRS by design: no georeferencing warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path, mode, **kwargs)


class ProductReader:
    """Read fields of a product, whole or by blocks of lines."""

    def __init__(self, path: str | os.PathLike, kinds: Sequence[str] | None = None):
        self.path = str(path)
        try:
            self._ds = open_radar(self.path)
        except RasterioError as exc:
            raise IsslideError(
                f"{self.path}: cannot open intermediate product ({exc}); rerun the step that makes it"
            ) from exc
        tags = self._ds.tags()
        if META_TAG not in tags:
            self._ds.close()
            raise IsslideError(
                f"{self.path}: not an isslide product (no {META_TAG} tag); rerun the step that makes it"
            )
        try:
            self.meta = json.loads(tags[META_TAG])
        except json.JSONDecodeError as exc:
            self._ds.close()
            raise IsslideError(
                f"{self.path}: unreadable product metadata ({exc}); rerun the step that makes it"
            ) from exc
        if self.meta.get("format") != FORMAT:
            self._ds.close()
            raise IsslideError(
                f"{self.path}: product format {self.meta.get('format')!r}, expected {FORMAT!r}"
            )
        if kinds is not None and self.meta.get("kind") not in kinds:
            self._ds.close()
            raise IsslideError(
                f"{self.path}: product kind {self.meta.get('kind')!r} where {' or '.join(kinds)} is expected; "
                "check the workflow wiring"
            )
        self.fields = {name: kind for name, kind in self.meta["fields"]}
        self._index = {b: i + 1 for i, b in enumerate(_bands(self.meta["fields"]))}
        self.shape = (self._ds.height, self._ds.width)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._ds.close()

    def read(
        self, name: str, rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Field ``name`` over lines ``rows`` = (start, stop) (clipped to the product)."""
        if name not in self.fields:
            raise IsslideError(
                f"{self.path}: product has no field '{name}' (fields: {', '.join(self.fields)})"
            )
        r0, r1 = rows if rows is not None else (0, self.shape[0])
        c0, c1 = cols if cols is not None else (0, self.shape[1])
        r0, r1 = max(0, r0), min(self.shape[0], r1)
        c0, c1 = max(0, c0), min(self.shape[1], c1)
        win = Window(c0, r0, c1 - c0, r1 - r0)
        try:
            if self.fields[name] == COMPLEX:
                data = self._ds.read(
                    [self._index[f"{name}.re"], self._index[f"{name}.im"]], window=win
                )
                out = np.empty(data.shape[1:], np.complex64)
                out.real, out.imag = data[0], data[1]
                return out
            return self._ds.read(self._index[name], window=win)
        except RasterioError as exc:
            raise IsslideError(
                f"{self.path}: read error ({exc}); the file is damaged, rerun the step that makes it"
            ) from exc


class ProductWriter:
    """Write a product block by block; the file appears under its name only on success."""

    def __init__(
        self,
        path: str | os.PathLike,
        shape: tuple[int, int],
        fields: Sequence[tuple[str, str]],
        meta: dict,
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.parent / f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp"
        self.fields = [tuple(f) for f in fields]
        self._index = {b: i + 1 for i, b in enumerate(_bands(self.fields))}
        self.meta = dict(meta, format=FORMAT, fields=[list(f) for f in self.fields])
        self.shape = tuple(int(s) for s in shape)
        profile = dict(
            driver="GTiff",
            dtype="float32",
            count=len(self._index),
            height=self.shape[0],
            width=self.shape[1],
            interleave="band",
            BIGTIFF="IF_SAFER",
        )
        self._ds = open_radar(self.tmp, "w", **profile)
        for band, i in self._index.items():
            self._ds.set_band_description(i, band)

    def write(self, name: str, data: np.ndarray, row0: int = 0) -> None:
        data = np.asarray(data)
        win = Window(0, row0, data.shape[1], data.shape[0])
        if dict(self.fields)[name] == COMPLEX:
            self._ds.write(
                data.real.astype(np.float32, copy=False), self._index[f"{name}.re"], window=win
            )
            self._ds.write(
                data.imag.astype(np.float32, copy=False), self._index[f"{name}.im"], window=win
            )
        else:
            self._ds.write(data.astype(np.float32, copy=False), self._index[name], window=win)

    def commit(self) -> None:
        self._ds.update_tags(**{META_TAG: json.dumps(self.meta)})
        self._ds.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._ds.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


@contextlib.contextmanager
def write_product(path, shape, fields, meta) -> Iterator[ProductWriter]:
    """``with write_product(...) as w: w.write(...)`` -- committed atomically on success."""
    writer = ProductWriter(path, shape, fields, meta)
    try:
        yield writer
    except BaseException:
        writer.abort()
        raise
    writer.commit()


def line_blocks(n: int, size: int, multiple: int = 1) -> Iterator[tuple[int, int]]:
    """(start, stop) blocks of lines covering ``range(n)``; ``size`` rounded to ``multiple``."""
    size = max(multiple, (size // multiple) * multiple)
    for a in range(0, n, size):
        yield a, min(n, a + size)


def block_lines(
    width: int, budget_bytes: int = 64 << 20, bytes_per_pixel: int = 64, multiple: int = 1
) -> int:
    """Lines per block so one block's working set stays near ``budget_bytes``."""
    lines = max(multiple, budget_bytes // max(1, width * bytes_per_pixel))
    return int(max(multiple, (lines // multiple) * multiple))
