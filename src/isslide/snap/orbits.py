"""Offline precise orbits in SNAP's auxdata layout, and the clear error when one is missing.

SNAP's Apply-Orbit-File looks for Sentinel-1 orbit files in
``{OrbitFiles.sentinel1POEOrbitPath}/{S1A|S1B|S1C}/{year}/{month:02d}/`` (default
``~/.snap/auxdata/Orbits/Sentinel-1/POEORB``), files named
``S1A_OPER_AUX_POEORB_OPOD_<created>_V<validity start>_<validity stop>.EOF`` (or ``.EOF.zip``),
and takes the one whose validity covers the product's state-vector time. With
``snap.orbit.directory`` set, isslide points gpt at that folder (``-D`` system property) and,
when ``continue_on_fail`` is false, checks before running gpt that the file is there.
"""

from __future__ import annotations

import datetime as dt
import os
import re

from ..errors import IsslideError
from . import dimap

KIND = {
    "Sentinel Precise (Auto Download)": ("POEORB", "OrbitFiles.sentinel1POEOrbitPath"),
    "Sentinel Restituted (Auto Download)": ("RESORB", "OrbitFiles.sentinel1RESOrbitPath"),
}
_VALIDITY = re.compile(r"_V(\d{8}T\d{6})_(\d{8}T\d{6})")
# The state vectors of a product start up to a few minutes before its first line.
MARGIN = dt.timedelta(minutes=3)


def mission_prefix(mission: str) -> str:
    """``SENTINEL-1A`` -> ``S1A``."""
    return "S1" + mission.strip()[-1].upper()


def orbit_folder(directory: str, mission: str, when: dt.datetime) -> str:
    return os.path.join(directory, mission, f"{when.year:04d}", f"{when.month:02d}")


def find_orbit_file(directory: str, mission: str, when: dt.datetime, kind: str = "POEORB"):
    """The orbit file covering ``when`` (searching the months of ``when - MARGIN`` and ``when``)."""
    prefix = f"{mission}_OPER_AUX_{kind}_OPOD_"
    folders = {
        orbit_folder(directory, mission, when - MARGIN),
        orbit_folder(directory, mission, when),
    }
    for folder in sorted(folders):
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            upper = name.upper()
            if not upper.startswith(prefix) or not upper.endswith((".EOF", ".ZIP")):
                continue
            m = _VALIDITY.search(upper)
            if not m:
                continue
            start = dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%S")
            stop = dt.datetime.strptime(m.group(2), "%Y%m%dT%H%M%S")
            if start <= when - MARGIN and when + MARGIN <= stop:
                return os.path.join(folder, name)
    return None


def system_properties(orbit_type: str, directory: str | None) -> dict[str, str]:
    if not directory:
        return {}
    return {KIND[orbit_type][1]: os.path.abspath(directory)}


def check_orbit_files(
    dim_paths, orbit_type: str, directory: str | None, continue_on_fail: bool
) -> None:
    """Raise a one-line error when an offline orbit file is missing and gpt would fail on it."""
    if not directory or continue_on_fail:
        return
    kind = KIND[orbit_type][0]
    if not os.path.isdir(directory):
        raise IsslideError(
            f"snap.orbit.directory: {directory} does not exist; create it with SNAP's layout "
            f"{directory}/S1A/YYYY/MM/ and put the {kind} files there, or set it to null to download"
        )
    for dim_path in dim_paths:
        meta = dimap.abstracted_metadata(dim_path)
        mission = mission_prefix(meta.get("MISSION", ""))
        when = dimap.parse_utc(meta.get("STATE_VECTOR_TIME") or meta.get("first_line_time", ""))
        if find_orbit_file(directory, mission, when, kind) is None:
            folder = orbit_folder(directory, mission, when)
            raise IsslideError(
                f"snap.orbit.directory: no {kind} orbit file for {mission} at {when:%Y-%m-%d %H:%M:%S} "
                f"in {folder} (expected {mission}_OPER_AUX_{kind}_OPOD_*_V<start>_<stop>.EOF "
                f"covering it); download it from the Copernicus data space (or "
                "https://step.esa.int/auxdata/orbits/Sentinel-1/), or set snap.orbit.continue_on_fail true"
            )
