"""Open detection layers in QGIS (headless) and print the renderer each one gets by default.

Run with a Python that has QGIS' bindings (Debian: python3-qgis), e.g.
``QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_check.py DIR``; used by test_detect.py.
"""

import json
import os
import sys

from qgis.core import QgsApplication, QgsRasterLayer, QgsVectorLayer

app = QgsApplication([], False)
app.initQgis()
d = sys.argv[1]
out = {}
for name in ("probability", "mask"):
    layer = QgsRasterLayer(f"{d}/{name}.tif", name)
    out[name] = {"valid": layer.isValid(), "renderer": layer.renderer().type()}
layer = QgsVectorLayer(f"{d}/candidates.gpkg|layername=candidates", "candidates", "ogr")
r = layer.renderer()
out["candidates"] = {
    "valid": layer.isValid(),
    "renderer": r.type(),
    "attribute": r.classAttribute() if hasattr(r, "classAttribute") else None,
    "labels": layer.labelsEnabled(),
}
print(json.dumps(out), flush=True)
os._exit(0)  # QGIS may crash while tearing down a headless application
