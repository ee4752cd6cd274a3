"""The same graph in-process through esa_snappy (``snap.runner: esa_snappy``).

Each node becomes ``GPF.createProduct(operator, parameters, sources)`` with the node's own
parameters (the dictionaries of :mod:`isslide.snap.chain`, placeholders bound), Read nodes
``ProductIO.readProduct`` and Write nodes ``ProductIO.writeProduct``: exactly the chain the gpt
XML describes. BandMaths' nested ``targetBands`` become an array of
``BandMathsOp$BandDescriptor`` (the Java type gpt builds from the XML). esa_snappy is imported
only here, only when this runner is chosen.
"""

from __future__ import annotations

import logging
from string import Template

from ..errors import IsslideError
from .chain import Graph
from .xmlgraph import format_value

log = logging.getLogger("isslide.snap")

PRODUCT_CLASS = "org.esa.snap.core.datamodel.Product"
BAND_DESCRIPTOR_CLASS = "org.esa.snap.core.gpf.common.BandMathsOp$BandDescriptor"


def import_snappy():
    try:
        import esa_snappy  # optional dependency, imported only for this runner
    except ImportError:
        raise IsslideError(
            "snap.runner: esa_snappy is not importable; install it with SNAP's "
            "'esa_snappy-conf <python>' (SNAP 10+) or set snap.runner to gpt"
        ) from None
    return esa_snappy


def java_value(value):
    """Scalars as Python scalars (jpy converts them), lists as SNAP's comma-separated strings."""
    if isinstance(value, (bool, int, float)):
        return value
    return format_value(value)


def bind(value, bindings: dict):
    if isinstance(value, dict):
        return {k: bind(v, bindings) for k, v in value.items()}
    if isinstance(value, str) and "${" in value:
        return Template(value).substitute(bindings)
    return value


def band_descriptors(snappy, target_bands: dict):
    """``{"targetBand": {...}}`` (one band, as the XML nests it) -> a Java BandDescriptor[]."""
    specs = target_bands["targetBand"]
    specs = specs if isinstance(specs, list) else [specs]
    descriptor = snappy.jpy.get_type(BAND_DESCRIPTOR_CLASS)
    array = snappy.jpy.array(BAND_DESCRIPTOR_CLASS, len(specs))
    for k, spec in enumerate(specs):
        d = descriptor()
        for key, value in spec.items():
            setattr(d, key, value)
        array[k] = d
    return array


def run_graph(graph: Graph, bindings: dict) -> list[str]:
    """Run ``graph`` in-process; return the written product files."""
    snappy = import_snappy()
    products: dict = {}
    written = []
    for node in graph.nodes:
        params = {k: bind(v, bindings) for k, v in node.params.items()}
        if node.operator == "Read":
            products[node.id] = snappy.ProductIO.readProduct(params["file"])
        elif node.operator == "Write":
            src = products[node.sources[0]]
            snappy.ProductIO.writeProduct(src, params["file"], params["formatName"])
            written.append(params["file"])
        else:
            hashmap = snappy.HashMap()
            for key, value in params.items():
                if key == "targetBands":
                    hashmap.put(key, band_descriptors(snappy, value))
                elif isinstance(value, dict):
                    if value:
                        raise IsslideError(f"esa_snappy: nested parameter {key} not supported")
                else:
                    hashmap.put(key, java_value(value))
            sources = [products[s] for s in node.sources]
            if len(sources) == 1:
                products[node.id] = snappy.GPF.createProduct(node.operator, hashmap, sources[0])
            else:
                array = snappy.jpy.array(PRODUCT_CLASS, len(sources))
                for k, product in enumerate(sources):
                    array[k] = product
                products[node.id] = snappy.GPF.createProduct(node.operator, hashmap, array)
        log.info("esa_snappy: %s (%s)", node.id, node.operator)
    return written
