"""The ESA SNAP backend: the eight InSAR steps as SNAP Graph Processing Tool (gpt) graphs.

* :mod:`isslide.snap.chain`: the one declarative description of the operator chain and of every
  operator parameter (built from the config), and the graph of each step (or the fused per-pair
  graph);
* :mod:`isslide.snap.xmlgraph`: the graph as gpt XML (``xml.etree``), file paths as ``${name}``
  placeholders bound with ``-P``;
* :mod:`isslide.snap.gpt`: the gpt runner (argument list, error mapping, output checks);
* :mod:`isslide.snap.snappy`: the same graph in-process through esa_snappy, when installed;
* :mod:`isslide.snap.dimap`: reading BEAM-DIMAP products (metadata, bands);
* :mod:`isslide.snap.export`: Terrain-Correction output to the interferogram GeoTIFF layout;
* :mod:`isslide.snap.orbits`: offline precise-orbit look-up (SNAP's auxdata POEORB layout);
* :mod:`isslide.snap.steps`: ``STEP_FUNCTIONS`` for :mod:`isslide.insar`;
* :mod:`isslide.snap.cli`: ``isslide snap-graph``.
"""
