"""Reading BEAM-DIMAP products: the ``.dim`` XML header and the ENVI rasters in ``.data/``.

Only what isslide needs: the band list (name, unit, no-data value, raster file) and the
abstracted metadata (``MDElem name="Abstracted_Metadata"``: MISSION, first_line_time, ...).
The rasters themselves are ENVI ``.img``/``.hdr`` pairs that rasterio (GDAL's ENVI driver) reads
with their georeferencing.
"""

from __future__ import annotations

import datetime as dt
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..errors import IsslideError


@dataclass(frozen=True)
class Band:
    index: int
    name: str
    unit: str
    nodata: float | None
    path: str | None  # the ENVI .img, None for virtual bands


def _parse(dim_path: str) -> ET.Element:
    if not os.path.isfile(dim_path):
        raise IsslideError(f"{dim_path}: SNAP product header not found (did gpt write it?)")
    try:
        return ET.parse(dim_path).getroot()
    except ET.ParseError as exc:
        raise IsslideError(f"{dim_path}: not a readable BEAM-DIMAP header ({exc})") from None


def bands(dim_path: str) -> list[Band]:
    root = _parse(dim_path)
    data_dir = os.path.splitext(dim_path)[0] + ".data"
    files = {}
    for df in root.iter("Data_File"):
        idx, path = df.findtext("BAND_INDEX"), df.find("DATA_FILE_PATH")
        if idx is not None and path is not None and path.get("href"):
            href = os.path.splitext(path.get("href"))[0] + ".img"
            files[int(idx)] = os.path.join(os.path.dirname(dim_path), href)
    out = []
    for info in root.iter("Spectral_Band_Info"):
        idx = int(info.findtext("BAND_INDEX", "-1"))
        name = info.findtext("BAND_NAME", "")
        virtual = info.findtext("VIRTUAL_BAND", "false").strip().lower() == "true"
        used = info.findtext("NO_DATA_VALUE_USED", "false").strip().lower() == "true"
        nodata = float(info.findtext("NO_DATA_VALUE", "nan")) if used else None
        path = None
        if not virtual:
            path = files.get(idx) or os.path.join(data_dir, name + ".img")
        out.append(Band(idx, name, info.findtext("PHYSICAL_UNIT", "").strip(), nodata, path))
    return out


def abstracted_metadata(dim_path: str) -> dict[str, str]:
    root = _parse(dim_path)
    for elem in root.iter("MDElem"):
        if elem.get("name") == "Abstracted_Metadata":
            return {a.get("name"): (a.text or "").strip() for a in elem.findall("MDATTR")}
    raise IsslideError(f"{dim_path}: no Abstracted_Metadata in the SNAP product header")


def parse_utc(text: str) -> dt.datetime:
    """SNAP's UTC attribute format, e.g. ``02-JUL-2018 05:40:20.123456``."""
    for fmt in ("%d-%b-%Y %H:%M:%S.%f", "%d-%b-%Y %H:%M:%S"):
        try:
            return dt.datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    raise IsslideError(
        f"unreadable SNAP UTC time '{text}' (expected e.g. 02-JUL-2018 05:40:20.123456)"
    )
