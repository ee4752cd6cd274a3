"""TEST DOUBLE standing in for ESA SNAP's ``gpt`` (SNAP cannot be installed on our machines).

It is NOT SNAP and computes nothing SAR-related. It accepts gpt's command line
(``gpt <graph.xml> -P<name>=<value>... -c <cache> -q <n> -x -e [-D...]``), substitutes the -P
bindings into the graph as gpt does, and behaves according to ``FAKE_GPT_MODE``:

* ``ok`` (default): writes a small BEAM-DIMAP product (``.dim`` + ``.data/*.img``/``.hdr``) at
  every Write node's file; for a graph with Terrain-Correction the product holds georeferenced
  i/q/coherence/layoverShadowMask bands shaped like SNAP's (see :func:`write_tc_product`);
* ``kill``: dies by SIGKILL (what the Linux OOM killer does);
* ``exit137``: exits with status 137 (a shell wrapper reporting a SIGKILLed gpt);
* ``unknown``: prints SNAP's message for an unknown graph element and exits 1;
* ``orbit``: prints SNAP's message for a missing orbit file and exits 1;
* ``empty``: exits 0 without writing anything;
* ``fail``: prints a generic error and exits 1.

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


def write_dimap(dim_path, bands, transform=None, crs="EPSG:4326", metadata=None):
    """A minimal BEAM-DIMAP product. ``bands``: list of (name, unit, array, nodata or None)."""
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


def write_tc_product(dim_path, bounds=DEFAULT_BOUNDS, spacing=SPACING):
    """A Terrain-Correction product as SNAP writes it with outputComplex and the mask saved."""
    from affine import Affine

    west, south, east, north = bounds
    width = int(round((east - west) / spacing))
    height = int(round((north - south) / spacing))
    transform = Affine(spacing, 0, west, 0, -spacing, north)
    i, q, coh, mask = tc_arrays(width, height)
    tag = "VV_02Jul2018_08Jul2018"
    write_dimap(
        dim_path,
        [
            (f"i_ifg_{tag}", "real", i, 0.0),
            (f"q_ifg_{tag}", "imaginary", q, 0.0),
            (f"coh_{tag}", "coherence", coh, 0.0),
            ("layoverShadowMask", "bit", mask, None),
        ],
        transform=transform,
    )
    return transform, (i, q, coh, mask)


def parse_args(argv):
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
    xml = Template(open(graph_file).read()).substitute(bindings)
    root = ET.fromstring(xml)
    operators = {n.findtext("operator") for n in root.iter("node")}
    for node in root.iter("node"):
        if node.findtext("operator") != "Write":
            continue
        target = node.find("parameters").findtext("file")
        if "Terrain-Correction" in operators:
            write_tc_product(target)
        else:
            from affine import Affine

            band = np.ones((4, 5), np.float32)  # radar geometry: SNAP writes no map info here
            write_dimap(
                target,
                [("i_band", "real", band, 0.0)],
                transform=Affine(1, 0, 0, 0, -1, 4),
                crs=None,
                metadata={"MISSION": "SENTINEL-1A"},
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
