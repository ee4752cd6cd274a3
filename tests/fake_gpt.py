"""TEST DOUBLE standing in for ESA SNAP's ``gpt`` (SNAP cannot be installed on our machines).

It is NOT SNAP and computes nothing SAR-related. It accepts gpt's command line
(``gpt [-J<jvm option>...] <graph.xml> -P<name>=<value>... -c <cache> -q <n> -e [-D...]``),
pastes the -P values into the graph text before parsing the XML, as gpt's template reader does
(so an unescaped ``&`` breaks the graph, as it would in gpt), and behaves according to
``FAKE_GPT_MODE``:

* ``ok`` (default): writes a small BEAM-DIMAP product (``.dim`` + ``.data/*.img``/``.hdr``) at
  every Write node's file: radar-geometry i/q/coherence bands named like SNAP's interferogram
  bands, or, downstream of Terrain-Correction, a product on SNAP's standard grid (the
  arithmetic of microwave-toolbox's ``CRSGeoCodingHandler``, :func:`snap_grid`) with the ENVI
  ``map info`` written as SNAP's ``EnviHeader`` writes it (reference pixel at the image centre):
  i/q/coherence/layoverShadowMask (:func:`write_tc_product`), or the ``Phase`` band when the
  Write follows BandMaths (:func:`write_phase_product`). The footprint depends on the subswath
  named in the output file (IW1 west, IW2 middle, IW3 east, slightly overlapping);
* ``kill``: dies by SIGKILL (what the Linux OOM killer does);
* ``exit137``: exits with status 137 (a shell wrapper reporting a SIGKILLed gpt);
* ``unknown``: prints SNAP's message for an unknown graph element and exits 1;
* ``orbit``: prints SNAP's message for a missing orbit file and exits 1;
* ``empty``: exits 0 without writing anything;
* ``fail``: prints a generic error and exits 1.

``gpt --diag`` prints SNAP's diagnostic lines (``SNAP Release version``, ``Max memory``...):
``FAKE_GPT_VERSION`` (default ``10.0.0``; empty: SNAP's "no version info" line) and the heap,
``-J-Xmx`` when given, else ``FAKE_GPT_VM_HEAP_MB`` (default 8192, "gpt.vmoptions"); the JVM
reports about 96 % of -Xmx as max memory. ``FAKE_GPT_J``: ``pass`` (default, install4j's
pass-through), ``ignore`` (a launcher that drops -J options) or ``reject`` (one that hands them to
gpt, which fails on the unknown option).

``FAKE_GPT_RECORD``: a file to which the argument list is appended as one JSON line.
The helpers :func:`write_dimap` and :func:`write_tc_product` are also used by the tests directly.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import xml.etree.ElementTree as ET
from string import Template

import numpy as np

SPACING = 1.315e-4
# Default footprint of the fake Terrain-Correction output (a corner of the Alps AOI).
DEFAULT_BOUNDS = (6.50, 45.00, 6.52, 45.015)
# Per-subswath footprints (isslide recipe): neighbours overlap by about 0.002 deg.
SUBSWATH_BOUNDS = {
    "IW1": (6.500, 45.00, 6.508, 45.015),
    "IW2": (6.506, 45.00, 6.514, 45.015),
    "IW3": (6.512, 45.00, 6.520, 45.015),
}
TAG = "VV_02Jul2018_08Jul2018"


def snap_grid(lon_min, lat_min, lon_max, lat_max, spacing=SPACING):
    """SNAP's Terrain-Correction grid with alignToStandardGrid at origin (0, 0): the arithmetic
    of microwave-toolbox ``CRSGeoCodingHandler`` (10.0.0-14.0.0) and snap-engine ``CrsGeoCoding``
    (easting/northing = centre of pixel (0, 0)). Returns (GDAL corner transform, width, height).
    """
    from affine import Affine

    easting = math.floor(lon_min / spacing) * spacing
    northing = math.ceil(lat_max / spacing) * spacing
    width = int(math.ceil((lon_max - easting) / spacing))
    height = int(math.ceil((northing - lat_min) / spacing))
    return (
        Affine(spacing, 0, easting - spacing / 2, 0, -spacing, northing + spacing / 2),
        width,
        height,
    )


def snap_map_info(hdr_path, transform, width, height):
    """Rewrite an ENVI header's map info as SNAP's EnviHeader does: 1-based reference pixel at
    the image centre (ImageGeometry's 0.5 * width, 0.5 * height, plus 1), its easting/northing."""
    ref_x, ref_y = 0.5 * width, 0.5 * height
    easting, northing = transform @ (ref_x, ref_y)
    line = (
        f"map info = {{Geographic Lat/Lon,{ref_x + 1.0},{ref_y + 1.0},{easting!r},{northing!r},"
        f"{transform.a!r},{-transform.e!r},WGS84,units=Degrees}}"
    )
    lines = [ln for ln in open(hdr_path).read().splitlines() if not ln.startswith("map info")]
    with open(hdr_path, "w") as fh:
        fh.write("\n".join([*lines, line]) + "\n")


def write_dimap(dim_path, bands, transform=None, crs="EPSG:4326", metadata=None, snap_header=False):
    """A minimal BEAM-DIMAP product. ``bands``: list of (name, unit, array, nodata or None).
    ``snap_header``: the ENVI map info as SNAP writes it (see :func:`snap_map_info`)."""
    import rasterio

    data_dir = os.path.splitext(dim_path)[0] + ".data"
    os.makedirs(data_dir, exist_ok=True)
    root = ET.Element("Dimap_Document", name=os.path.basename(dim_path))
    access = ET.SubElement(root, "Data_Access")
    ET.SubElement(access, "DATA_FILE_FORMAT").text = "ENVI"
    interp = ET.SubElement(root, "Image_Interpretation")
    for k, (name, unit, array, nodata) in enumerate(bands):
        img = os.path.join(data_dir, name + ".img")
        profile = {
            "driver": "ENVI",
            "height": array.shape[0],
            "width": array.shape[1],
            "count": 1,
            "dtype": array.dtype.name,
        }
        if transform is not None:
            profile.update(transform=transform, crs=crs)
        with rasterio.open(img, "w", **profile) as dst:
            dst.write(array, 1)
        if snap_header and transform is not None:
            snap_map_info(os.path.splitext(img)[0] + ".hdr", transform, *array.shape[::-1])
        df = ET.SubElement(access, "Data_File")
        ET.SubElement(df, "DATA_FILE_PATH", href=f"{os.path.basename(data_dir)}/{name}.hdr")
        ET.SubElement(df, "BAND_INDEX").text = str(k)
        info = ET.SubElement(interp, "Spectral_Band_Info")
        ET.SubElement(info, "BAND_INDEX").text = str(k)
        ET.SubElement(info, "BAND_NAME").text = name
        ET.SubElement(info, "PHYSICAL_UNIT").text = unit
        ET.SubElement(info, "NO_DATA_VALUE_USED").text = "true" if nodata is not None else "false"
        ET.SubElement(info, "NO_DATA_VALUE").text = str(nodata if nodata is not None else 0.0)
    sources = ET.SubElement(root, "Dataset_Sources")
    md = ET.SubElement(sources, "MDElem", name="metadata")
    abstracted = ET.SubElement(md, "MDElem", name="Abstracted_Metadata")
    for key, value in (metadata or {}).items():
        ET.SubElement(abstracted, "MDATTR", name=key, type="ascii").text = value
    ET.ElementTree(root).write(dim_path, encoding="unicode")


def tc_arrays(width, height):
    """The fake interferogram: phase ramp along columns, coherence 0.6, masks, a nodata stripe."""
    cols = np.arange(width)[None, :].repeat(height, 0)
    phase = ((cols * 0.3) % (2 * math.pi) - math.pi).astype(np.float32)
    i = np.cos(phase).astype(np.float32)
    q = np.sin(phase).astype(np.float32)
    coh = np.full((height, width), 0.6, np.float32)
    mask = np.zeros((height, width), np.int8)
    mask[: height // 4, :] = 1  # layover
    mask[height // 4 : height // 2, : width // 2] = 2  # shadow
    mask[height // 4 : height // 2, width // 2 :] = 3  # both
    i[:, :3] = 0.0  # no data (SNAP's nodata 0 for i/q/coherence)
    q[:, :3] = 0.0
    coh[:, :3] = 0.0
    return i, q, coh, mask


def write_tc_product(dim_path, bounds=DEFAULT_BOUNDS, spacing=SPACING, grid=None):
    """A Terrain-Correction product as SNAP writes it with outputComplex and the mask saved, on
    SNAP's standard grid over the footprint ``bounds`` (or an explicit ``grid``)."""
    transform, width, height = grid or snap_grid(*bounds, spacing)
    i, q, coh, mask = tc_arrays(width, height)
    write_dimap(
        dim_path,
        [
            (f"i_ifg_{TAG}", "real", i, 0.0),
            (f"q_ifg_{TAG}", "imaginary", q, 0.0),
            (f"coh_{TAG}", "coherence", coh, 0.0),
            ("layoverShadowMask", "bit", mask, None),
        ],
        transform=transform,
        snap_header=True,
    )
    return transform, (i, q, coh, mask)


def write_phase_product(dim_path, bounds=DEFAULT_BOUNDS, spacing=SPACING):
    """BandMaths ``Phase`` (atan2(q, i), nodata 0) after Terrain-Correction, SNAP's grid."""
    transform, width, height = snap_grid(*bounds, spacing)
    i, q, _, _ = tc_arrays(width, height)
    phase = np.where((i != 0) | (q != 0), np.arctan2(q, i), 0.0).astype(np.float32)
    write_dimap(dim_path, [("Phase", "", phase, 0.0)], transform=transform, snap_header=True)
    return transform, phase


def footprint(target):
    name = os.path.basename(target)
    return next((b for sw, b in SUBSWATH_BOUNDS.items() if sw in name), DEFAULT_BOUNDS)


def upstream(nodes, node_id):
    """The operators a node depends on (itself included)."""
    seen, todo = set(), [node_id]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo += [s.get("refid") for s in nodes[n].find("sources")]
    return {nodes[n].findtext("operator") for n in seen}


def diag(argv):
    version = os.environ.get("FAKE_GPT_VERSION", "10.0.0")
    heap = float(os.environ.get("FAKE_GPT_VM_HEAP_MB", "8192"))
    j_mode = os.environ.get("FAKE_GPT_J", "pass")
    for arg in argv:
        if arg.startswith("-J-Xmx") and j_mode == "pass":
            value = arg[len("-J-Xmx") :]
            heap = float(value[:-1]) * (1024 if value[-1] in "gG" else 1)
    max_gb = heap * 0.96 / 1024
    release = version or "[no version info, missing ${SNAP_HOME}/VERSION.txt]"
    print(f"SNAP Release version {release}")
    print("SNAP home: /opt/fake-snap/bin/..")
    print("Java version: 21.0.2")
    print("Processors: 2")
    print(f"Max memory: {max_gb:.1f} GB")
    print("Cache size: 1024.0 MB")
    print("Tile parallelism: 2")
    print("Tile size: 512 x 512 pixels")
    return 0


def parse_args(argv):
    argv = [a for a in argv if not a.startswith("-J")]
    graph, bindings = argv[0], {}
    for arg in argv[1:]:
        if arg.startswith("-P") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            bindings[key] = value
    return graph, bindings


def main(argv):
    record = os.environ.get("FAKE_GPT_RECORD")
    if record:
        with open(record, "a") as fh:
            fh.write(json.dumps(argv) + "\n")
    mode = os.environ.get("FAKE_GPT_MODE", "ok")
    if os.environ.get("FAKE_GPT_J") == "reject" and any(a.startswith("-J") for a in argv):
        print(f"Error: Unknown option '{next(a for a in argv if a.startswith('-J'))}'")
        return 1
    if "--diag" in argv:
        return diag(argv)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "exit137":
        return 137
    if mode == "unknown":
        print("Error: [NodeId: GoldsteinPhaseFiltering] Unknown element 'useAdaptiveAlpha'")
        return 1
    if mode == "orbit":
        print(
            "Error: [NodeId: Apply-Orbit-File] No valid orbit file found for 02-JUL-2018 05:39:08"
        )
        return 1
    if mode == "fail":
        print("INFO: reading\nError: [NodeId: Back-Geocoding] something went wrong")
        return 1
    if mode == "empty":
        return 0
    graph_file, bindings = parse_args(argv)
    # gpt's TemplateReader pastes the values into the text; the XML parser then unescapes them
    xml = Template(open(graph_file).read()).substitute(bindings)
    root = ET.fromstring(xml)
    nodes = {n.get("id"): n for n in root.iter("node")}
    for node_id, node in nodes.items():
        if node.findtext("operator") != "Write":
            continue
        target = node.find("parameters").findtext("file")
        ops = upstream(nodes, node_id)
        if "Terrain-Correction" in ops and "BandMaths" in ops:
            write_phase_product(target, footprint(target))
        elif "Terrain-Correction" in ops:
            write_tc_product(target, footprint(target))
        else:
            from affine import Affine

            band = np.ones((4, 5), np.float32)  # radar geometry: SNAP writes no map info here
            sw = next((s for s in SUBSWATH_BOUNDS if s in os.path.basename(target)), "IW1")
            write_dimap(
                target,
                [
                    (f"i_ifg_{sw}_{TAG}", "real", band, 0.0),
                    (f"q_ifg_{sw}_{TAG}", "imaginary", band * 0, 0.0),
                    (f"coh_{sw}_{TAG}", "coherence", band * 0.5, 0.0),
                ],
                transform=Affine(1, 0, 0, 0, -1, 4),
                crs=None,
                metadata={"MISSION": "SENTINEL-1A"},
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
