"""A :class:`~isslide.snap.chain.Graph` as gpt graph XML (``xml.etree``).

The layout is that of graphs saved by SNAP's Graph Builder: ``<graph><version>1.0</version>``,
one ``<node id>`` per operator with ``<operator>``, ``<sources>`` (``sourceProduct``,
``sourceProduct.1``, ... each with a ``refid``) and ``<parameters>``; a parameter whose value is
a dict becomes nested elements (BandMaths ``<targetBands><targetBand>...``).

gpt substitutes ``-P`` values into the graph text *before* parsing the XML (snap-engine
``GraphIO.read`` wraps the file in ceres' ``TemplateReader``, 10.0.0-14.0.0), so a value is
pasted verbatim: :func:`escape_binding` makes ``&``, ``<`` and ``>`` in paths XML-safe.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from ..errors import IsslideError
from .chain import Graph, placeholders_in

PARAMETERS_CLASS = "com.bc.ceres.binding.dom.XppDomElement"


def format_value(value) -> str:
    """A parameter value as gpt reads it: booleans lower case, lists comma separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _parameters(parent: ET.Element, params: dict) -> None:
    for key, value in params.items():
        child = ET.SubElement(parent, key)
        if isinstance(value, dict):
            _parameters(child, value)
        else:
            child.text = format_value(value)


def escape_binding(value) -> str:
    """A ``-P`` value as it must appear in the graph text gpt parses (element content)."""
    return escape(str(value))


def to_element(graph: Graph) -> ET.Element:
    root = ET.Element("graph", id=graph.name)
    ET.SubElement(root, "version").text = "1.0"
    for node in graph.nodes:
        el = ET.SubElement(root, "node", id=node.id)
        ET.SubElement(el, "operator").text = node.operator
        sources = ET.SubElement(el, "sources")
        for k, src in enumerate(node.sources):
            ET.SubElement(sources, "sourceProduct" if k == 0 else f"sourceProduct.{k}", refid=src)
        params = ET.SubElement(el, "parameters", {"class": PARAMETERS_CLASS})
        _parameters(params, node.params)
    return root


def to_xml(graph: Graph) -> str:
    root = to_element(graph)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def xml_placeholders(xml: str) -> set[str]:
    return placeholders_in(xml)


def check_bindings(xml: str, bindings: dict) -> None:
    """Every ``${name}`` of the graph is bound, and nothing else is (a typo would be silent)."""
    used = xml_placeholders(xml)
    missing = sorted(used - set(bindings))
    extra = sorted(set(bindings) - used)
    if missing or extra:
        raise IsslideError(
            f"SNAP graph placeholders and -P bindings differ (unbound: {missing}, unused: {extra}); "
            "this is an isslide bug, please report it"
        )
