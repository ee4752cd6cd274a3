"""Sentinel-1 product names: parsing, discovery and grouping of slices.

A product name follows ESA's naming convention, for example
``S1A_IW_SLC__1SDV_20180702T054020_20180702T054047_022608_027309_8A2B.zip``::

    MMM_BB_TTTR_LFPP_YYYYMMDDTHHMMSS_YYYYMMDDTHHMMSS_OOOOOO_DDDDDD_CCCC.SAFE|.zip

mission, beam mode, product type and resolution, processing level / class / polarisations,
start and stop time, absolute orbit, mission datatake id (hex) and product unique id (hex).
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import IsslideError

_NAME = re.compile(
    r"^(?P<mission>S1[A-D])_(?P<mode>IW|EW|WV|S[1-6])_(?P<type>SLC|GRD|RAW|OCN)(?P<resolution>[FHM_])_"
    r"(?P<level>[0-2])(?P<klass>[SA])(?P<pol>SH|SV|DH|DV|HH|VV|HV|VH)_"
    r"(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})_(?P<orbit>\d{6})_(?P<datatake>[0-9A-F]{6})_"
    r"(?P<pid>[0-9A-F]{4})(?P<ext>\.SAFE|\.zip|\.SAFE\.zip)?$"
)

_POLARISATIONS = {
    "SH": ("HH",),
    "SV": ("VV",),
    "DH": ("HH", "HV"),
    "DV": ("VV", "VH"),
    "HH": ("HH",),
    "VV": ("VV",),
    "HV": ("HV",),
    "VH": ("VH",),
}

# Absolute orbit of each satellite's first pass over relative orbit 1 (ESA's formula
# relative = (absolute - offset) mod 175 + 1, 12-day repeat cycle of 175 orbits).
_ORBIT_OFFSET = {"S1A": 73, "S1B": 27, "S1C": 172}


@dataclass(frozen=True, order=True)
class Product:
    """One Sentinel-1 product (a slice), as described by its file name."""

    start: dt.datetime
    stop: dt.datetime
    mission: str
    mode: str
    product_type: str
    resolution: str
    level: int
    product_class: str
    polarisations: tuple[str, ...]
    absolute_orbit: int
    datatake_id: str
    product_id: str
    path: str

    @property
    def relative_orbit(self) -> int:
        if self.mission not in _ORBIT_OFFSET:
            raise IsslideError(
                f"{self.path}: relative orbit of {self.mission} is not known to isslide; "
                "list only S1A/S1B/S1C products"
            )
        return (self.absolute_orbit - _ORBIT_OFFSET[self.mission]) % 175 + 1

    @property
    def date(self) -> dt.date:
        return self.start.date()

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def parse_product_name(path: str) -> Product:
    """Parse a Sentinel-1 product path or name; raise IsslideError naming the file if malformed."""
    name = os.path.basename(os.path.normpath(str(path)))
    m = _NAME.match(name)
    if not m:
        raise IsslideError(
            f"{path}: not a Sentinel-1 product name (expected e.g. "
            "S1A_IW_SLC__1SDV_20180702T054020_20180702T054047_022608_027309_8A2B.zip); "
            "rename the file to ESA's original name or remove it from the product list"
        )
    try:
        start = dt.datetime.strptime(m["start"], "%Y%m%dT%H%M%S")
        stop = dt.datetime.strptime(m["stop"], "%Y%m%dT%H%M%S")
    except ValueError as exc:
        raise IsslideError(f"{path}: invalid date in Sentinel-1 product name ({exc})") from None
    if stop < start:
        raise IsslideError(f"{path}: stop time {m['stop']} is before start time {m['start']}")
    return Product(
        start=start,
        stop=stop,
        mission=m["mission"],
        mode=m["mode"],
        product_type=m["type"],
        resolution=m["resolution"],
        level=int(m["level"]),
        product_class=m["klass"],
        polarisations=_POLARISATIONS[m["pol"]],
        absolute_orbit=int(m["orbit"]),
        datatake_id=m["datatake"],
        product_id=m["pid"],
        path=str(path),
    )


def find_products(spec: str | Sequence[str], base: str = ".") -> list[Product]:
    """Products from a glob pattern (str) or an explicit list of paths, relative to ``base``.

    An explicit path that does not exist is an error; a glob that matches nothing is an error
    naming the pattern, and the directory when it does not exist.
    """
    if isinstance(spec, str):
        pattern = spec if os.path.isabs(spec) else os.path.join(base, spec)
        directory = os.path.dirname(pattern) or "."
        if not glob.has_magic(directory) and not os.path.isdir(directory):
            raise IsslideError(
                f"acquisitions directory {directory} does not exist: set stacks.<name>.products "
                "to a glob of your Sentinel-1 SLC zips"
            )
        paths = sorted(glob.glob(pattern))
        if not paths:
            raise IsslideError(
                f"no Sentinel-1 product matches {pattern}: check stacks.<name>.products"
            )
    else:
        paths = []
        for p in spec:
            full = p if os.path.isabs(p) else os.path.join(base, p)
            if not os.path.exists(full):
                raise IsslideError(
                    f"{full}: Sentinel-1 product listed in the config does not exist"
                )
            paths.append(full)
    return sorted(parse_product_name(p) for p in paths)


def group_slices(products: Iterable[Product]) -> dict[tuple[int, dt.date], list[Product]]:
    """Group products by (relative orbit, date): several slices of one pass are assembled later."""
    groups: dict[tuple[int, dt.date], list[Product]] = defaultdict(list)
    for p in products:
        groups[(p.relative_orbit, p.date)].append(p)
    return {k: sorted(v, key=lambda p: p.start) for k, v in sorted(groups.items())}
