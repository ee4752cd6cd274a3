"""QGIS layer styles (.qml) written beside the detection layers, so they open styled.

QGIS loads ``<basename>.qml`` next to a GeoTIFF or a GeoPackage as the layer's default style:

* ``probability.qml``: a magma-like colour ramp from 0 (transparent black) to 1 (yellow);
* ``mask.qml``: detections in red, the rest transparent;
* ``candidates.qml``: no fill, outlines coloured by ``confidence`` (1 yellow, 2 orange, 3 red),
  labelled with ``id``.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

HEADER = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
RAMP = [
    (0.0, "#000004", 0),
    (0.2, "#3b0f70", 160),
    (0.4, "#8c2981", 200),
    (0.6, "#de4968", 230),
    (0.8, "#fe9f6d", 255),
    (1.0, "#fcfdbf", 255),
]
CONFIDENCE_COLOURS = {
    1: ("255,221,0,255", "1 (low score)"),
    2: ("255,127,0,255", "2"),
    3: ("227,26,28,255", "3 (high score)"),
}


def _raster(renderer: str) -> str:
    return (
        HEADER
        + '<qgis version="3.28.0" styleCategories="AllStyleCategories">\n'
        + "  <pipe>\n"
        + renderer
        + '    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>\n'
        + '    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>\n'
        + '    <rasterresampler maxOversampling="2"/>\n'
        + "  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n"
    )


def probability_qml(threshold: float | None = None) -> str:
    items = "".join(
        f'          <item alpha="{a}" value="{v:g}" label="{v:g}" color="{c}"/>\n'
        for v, c, a in RAMP
    )
    note = f" (detection threshold {threshold:.3f})" if threshold is not None else ""
    return _raster(
        '    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" '
        'classificationMin="0" classificationMax="1" nodataColor="">\n'
        "      <rasterTransparency/>\n"
        "      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent>"
        "<statAccuracy>Estimated</statAccuracy><cumulativeCutLower>0.02</cumulativeCutLower>"
        "<cumulativeCutUpper>0.98</cumulativeCutUpper><stdDevFactor>2</stdDevFactor></minMaxOrigin>\n"
        "      <rastershader>\n"
        '        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" '
        f'minimumValue="0" maximumValue="1" labelPrecision="2">\n{items}'
        "        </colorrampshader>\n"
        "      </rastershader>\n"
        f"      <!-- probability of slow motion{note} -->\n"
        "    </rasterrenderer>\n"
    )


def mask_qml() -> str:
    return _raster(
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">\n'
        "      <rasterTransparency/>\n"
        "      <colorPalette>\n"
        '        <paletteEntry value="0" color="#000000" alpha="0" label="no detection"/>\n'
        '        <paletteEntry value="1" color="#e31a1c" alpha="255" label="detection"/>\n'
        "      </colorPalette>\n"
        "    </rasterrenderer>\n"
    )


def _fill_symbol(name: str, outline: str) -> str:
    props = {
        "color": "0,0,0,0",
        "style": "no",
        "outline_color": outline,
        "outline_style": "solid",
        "outline_width": "0.6",
        "outline_width_unit": "MM",
        "joinstyle": "miter",
    }
    options = "".join(
        f'            <Option name="{k}" type="QString" value={quoteattr(v)}/>\n'
        for k, v in props.items()
    )
    return (
        f'      <symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">\n'
        '        <layer class="SimpleFill" enabled="1" locked="0" pass="0">\n'
        f'          <Option type="Map">\n{options}          </Option>\n'
        "        </layer>\n"
        "      </symbol>\n"
    )


def candidates_qml() -> str:
    cats = "".join(
        f'      <category value="{k}" symbol="{k - 1}" label={quoteattr(lab)} render="true"/>\n'
        for k, (_, lab) in CONFIDENCE_COLOURS.items()
    )
    symbols = "".join(_fill_symbol(str(k - 1), c) for k, (c, _) in CONFIDENCE_COLOURS.items())
    return (
        HEADER
        + '<qgis version="3.28.0" styleCategories="Symbology|Labeling">\n'
        + '  <renderer-v2 type="categorizedSymbol" attr="confidence" symbollevels="0" '
        + 'enableorderby="0" forceraster="0">\n'
        + f"    <categories>\n{cats}    </categories>\n"
        + f"    <symbols>\n{symbols}    </symbols>\n"
        + "  </renderer-v2>\n"
        + '  <labeling type="simple">\n'
        + "    <settings>\n"
        + '      <text-style fieldName="id" fontSize="8" textColor="227,26,28,255" isExpression="0"/>\n'
        + '      <placement placement="1"/>\n'
        + "    </settings>\n"
        + "  </labeling>\n"
        + "</qgis>\n"
    )
