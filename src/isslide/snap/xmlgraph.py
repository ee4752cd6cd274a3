"""A :class:`~isslide.snap.chain.Graph` as gpt graph XML (``xml.etree``).

The layout is that of graphs saved by SNAP's Graph Builder: ``<graph><version>1.0</version>``,
one ``<node id>`` per operator with ``<operator>``, ``<sources>`` (``sourceProduct``,
``sourceProduct.1``, ... each with a ``refid``) and ``<parameters>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

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
        for key, value in node.params.items():
            ET.SubElement(params, key).text = format_value(value)
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
