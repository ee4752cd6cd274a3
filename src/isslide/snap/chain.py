"""The one declarative description of the SNAP operator chain and its parameters.

Every SNAP parameter isslide sets is written once, in the ``*_params`` functions below, from
:class:`SnapSettings` (itself built from the config). The graphs of the eight rules, and the fused
per-pair graph, are assembled from the same fragments, so a parameter cannot differ between the
per-rule and the fused variant, nor between gpt and esa_snappy (both consume a :class:`Graph`).

Operator and parameter names follow the operator sources of ESA's microwave toolbox (formerly
s1tbx), SNAP 10 to 14; docs/snap.md lists the sources. Parameters are set explicitly even where
they equal SNAP's default, because defaults changed between versions (SNAP 14: Copernicus 30 m DEM
default, adaptive Goldstein alpha). File paths are ``${name}`` placeholders, bound per job with
gpt ``-P<name>=<value>``: the XML of a step is the same for every acquisition or pair.

Chain (per acquisition): Read -> [SliceAssembly] -> TOPSAR-Split (per subswath) -> Calibration
-> Apply-Orbit-File; (per pair and subswath) Back-Geocoding -> Enhanced-Spectral-Diversity ->
Interferogram -> TOPSAR-Deburst; then TOPSAR-Merge -> TopoPhaseRemoval -> GoldsteinPhaseFiltering
-> Multilook -> Terrain-Correction -> Write (BEAM-DIMAP).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import IsslideError
from ..insar import STEPS

SUBSWATHS = ("IW1", "IW2", "IW3")
# Steps whose product holds one BEAM-DIMAP product per subswath ({subswath}.dim); the others
# hold the merged product (product.dim).
PER_SUBSWATH = ("calibrate", "apply_orbit", "coregister")
MERGED = "product"
# SNAP's SARGeocoding converts metres to degrees with the WGS84 semi-major axis.
METRES_PER_DEGREE = 6378137.0 * 3.141592653589793 / 180.0
EXTERNAL_DEM = "External DEM"
DIMAP = "BEAM-DIMAP"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")


def ph(name: str) -> str:
    """A gpt graph placeholder, bound on the command line with ``-P<name>=<value>``."""
    return "${" + name + "}"


def placeholders_in(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(str(text)))


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapSettings:
    """Everything the chain needs, validated, from a rule's params (or a config + stack)."""

    gpt: str = "gpt"
    version: int = 10
    runner: str = "gpt"
    fuse: bool = False
    cache_fraction: float = 0.5
    system_properties: dict = field(default_factory=dict)
    polarisation: str = "VV"
    subswaths: tuple[str, ...] = SUBSWATHS
    aoi: str | None = None
    first_burst: int = 1
    last_burst: int = 9999
    dem_name: str = "SRTM 1Sec HGT"
    dem_file: str | None = None
    dem_nodata: float = 0.0
    dem_apply_egm: bool = True
    orbit_type: str = "Sentinel Precise (Auto Download)"
    orbit_directory: str | None = None
    orbit_continue_on_fail: bool = False
    orbit_poly_degree: int = 3
    esd: dict = field(default_factory=dict)
    coh_range: int = 10
    coh_azimuth: int = 3
    goldstein_alpha: float = 1.0
    goldstein_fft: int = 64
    goldstein_window: int = 3
    looks_range: int = 8
    looks_azimuth: int = 2
    spacing_m: float = 14.64
    spacing_deg: float = 1.315e-4

    @property
    def external_dem(self) -> bool:
        return self.dem_name == EXTERNAL_DEM

    @classmethod
    def from_params(cls, params: dict) -> SnapSettings:
        """From the params of an InSAR rule: ``{"insar", "snap", "stack": {subswaths, aoi, ...}}``.

        ``params`` must hold the schema defaults (Snakemake's ``validate()`` or
        :func:`isslide.config.fill_defaults` fill them in).
        """
        insar, snap = params["insar"], params.get("snap") or {}
        stack = params.get("stack") or {}
        dem, orbit = snap.get("dem", {}), snap.get("orbit", {})
        bursts, esd = snap.get("bursts", {}), snap.get("esd", {})
        subswaths = tuple(stack.get("subswaths") or SUBSWATHS)
        settings = cls(
            gpt=snap.get("gpt", "gpt"),
            version=int(snap.get("version", 10)),
            runner=snap.get("runner", "gpt"),
            fuse=bool(snap.get("fuse", False)),
            cache_fraction=float(snap.get("cache_fraction", 0.5)),
            system_properties=dict(snap.get("system_properties", {})),
            polarisation=insar.get("polarisation", "VV"),
            subswaths=tuple(sorted(subswaths)),
            aoi=stack.get("aoi"),
            first_burst=int(bursts.get("first", 1)),
            last_burst=int(bursts.get("last", 9999)),
            dem_name=dem.get("name", "SRTM 1Sec HGT"),
            dem_file=dem.get("external_file"),
            dem_nodata=float(dem.get("nodata", 0.0)),
            dem_apply_egm=bool(dem.get("apply_egm", True)),
            orbit_type=orbit.get("type", "Sentinel Precise (Auto Download)"),
            orbit_directory=orbit.get("directory"),
            orbit_continue_on_fail=bool(orbit.get("continue_on_fail", False)),
            orbit_poly_degree=int(orbit.get("poly_degree", 3)),
            esd=dict(esd),
            coh_range=int(insar["coherence_window"]["range"]),
            coh_azimuth=int(insar["coherence_window"]["azimuth"]),
            goldstein_alpha=float(insar["goldstein"]["alpha"]),
            goldstein_fft=int(insar["goldstein"]["fft_size"]),
            goldstein_window=int(insar["goldstein"]["window"]),
            looks_range=int(insar["multilook"]["range"]),
            looks_azimuth=int(insar["multilook"]["azimuth"]),
            spacing_m=float(insar["pixel_spacing_m"]),
            spacing_deg=float(insar["pixel_spacing_deg"]),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        idx = [SUBSWATHS.index(s) for s in self.subswaths]
        if idx != list(range(idx[0], idx[0] + len(idx))):
            raise IsslideError(
                f"stacks.<name>.subswaths: {list(self.subswaths)} are not adjacent and SNAP's "
                "TOPSAR-Merge rejects an isolated subswath; use IW1+IW2, IW2+IW3, all three or one"
            )
        if self.external_dem and not self.dem_file:
            raise IsslideError(
                "snap.dem.external_file: snap.dem.name is 'External DEM' but no file is set; "
                "point external_file at a GeoTIFF DEM or use name 'SRTM 1Sec HGT'"
            )
        if self.dem_file and not self.external_dem:
            raise IsslideError(
                f"snap.dem.name: external_file {self.dem_file} is set but name is "
                f"'{self.dem_name}'; set name to 'External DEM' or remove external_file"
            )
        if self.last_burst < self.first_burst:
            raise IsslideError(
                f"snap.bursts: last ({self.last_burst}) is before first ({self.first_burst})"
            )
        expected = self.spacing_m / METRES_PER_DEGREE
        if abs(expected - self.spacing_deg) > 0.01 * self.spacing_deg:
            raise IsslideError(
                f"insar.pixel_spacing_m: {self.spacing_m} m is {expected:.4e} deg, not "
                f"insar.pixel_spacing_deg {self.spacing_deg:.4e}; make the two agree "
                "(Terrain-Correction takes both)"
            )


# --- the operators' parameters (the single place where SNAP parameters are set) -------------


def read_params(file: str, format_name: str | None = None) -> dict:
    params: dict[str, Any] = {"file": file}
    if format_name:
        params["formatName"] = format_name
    params["copyMetadata"] = True
    return params


def write_params(file: str) -> dict:
    return {
        "file": file,
        "formatName": DIMAP,
        "clearCacheAfterRowWrite": False,
        "deleteOutputOnFailure": True,
    }


def slice_assembly_params(s: SnapSettings) -> dict:
    return {"selectedPolarisations": [s.polarisation]}


def split_params(s: SnapSettings, subswath: str) -> dict:
    params: dict[str, Any] = {
        "subswath": subswath,
        "selectedPolarisations": [s.polarisation],
        "firstBurstIndex": s.first_burst,
        "lastBurstIndex": s.last_burst,
    }
    if s.aoi:
        params["wktAoi"] = s.aoi
    return params


def calibration_params(s: SnapSettings) -> dict:
    return {
        "selectedPolarisations": [s.polarisation],
        "outputImageInComplex": True,
        "outputImageScaleInDb": False,
        "outputSigmaBand": True,
        "outputGammaBand": False,
        "outputBetaBand": False,
        "createGammaBand": False,
        "createBetaBand": False,
    }


def apply_orbit_params(s: SnapSettings) -> dict:
    return {
        "orbitType": s.orbit_type,
        "polyDegree": s.orbit_poly_degree,
        "continueOnFail": s.orbit_continue_on_fail,
    }


def dem_params(s: SnapSettings) -> dict:
    """demName (+ externalDEMFile, externalDEMNoDataValue): the same DEM for every operator."""
    params: dict[str, Any] = {"demName": s.dem_name}
    if s.external_dem:
        params["externalDEMFile"] = ph("dem")
        params["externalDEMNoDataValue"] = s.dem_nodata
    return params


def back_geocoding_params(s: SnapSettings) -> dict:
    return {
        **dem_params(s),
        "demResamplingMethod": "BICUBIC_INTERPOLATION",
        "resamplingType": "BISINC_5_POINT_INTERPOLATION",
        "maskOutAreaWithoutElevation": True,
        "outputRangeAzimuthOffset": False,
        "outputDerampDemodPhase": False,
        "disableReramp": False,
    }


def esd_params(s: SnapSettings) -> dict:
    e = s.esd
    return {
        "fineWinWidthStr": "512",
        "fineWinHeightStr": "512",
        "fineWinAccAzimuth": "16",
        "fineWinAccRange": "16",
        "fineWinOversampling": "128",
        "xCorrThreshold": float(e.get("xcorr_threshold", 0.1)),
        "cohThreshold": float(e.get("coherence_threshold", 0.3)),
        "numBlocksPerOverlap": int(e.get("blocks_per_overlap", 10)),
        "esdEstimator": e.get("estimator", "Periodogram"),
        "weightFunc": e.get("weight", "Inv Quadratic"),
        "temporalBaselineType": "Number of images",
        "maxTemporalBaseline": 4,
        "integrationMethod": "L1 and L2",
        "doNotWriteTargetBands": False,
        "useSuppliedRangeShift": False,
        "overallRangeShift": 0.0,
        "useSuppliedAzimuthShift": False,
        "overallAzimuthShift": 0.0,
    }


def interferogram_params(s: SnapSettings) -> dict:
    # squarePixel=false: SNAP otherwise derives cohWinAz from cohWinRg ("square pixel") and the
    # configured azimuth window would be ignored. The topographic phase is removed by
    # TopoPhaseRemoval (its own step), so no DEM here.
    return {
        "subtractFlatEarthPhase": True,
        "srpPolynomialDegree": 5,
        "srpNumberPoints": 501,
        "orbitDegree": 3,
        "includeCoherence": True,
        "cohWinAz": s.coh_azimuth,
        "cohWinRg": s.coh_range,
        "squarePixel": False,
        "subtractTopographicPhase": False,
    }


def deburst_params(s: SnapSettings) -> dict:
    return {"selectedPolarisations": [s.polarisation]}


def merge_params(s: SnapSettings) -> dict:
    return {"selectedPolarisations": [s.polarisation]}


def topo_params(s: SnapSettings) -> dict:
    return {
        "orbitDegree": 3,
        **dem_params(s),
        "tileExtensionPercent": "100",
        "outputTopoPhaseBand": False,
    }


def goldstein_params(s: SnapSettings) -> dict:
    params: dict[str, Any] = {
        "alpha": s.goldstein_alpha,
        "FFTSizeString": str(s.goldstein_fft),
        "windowSizeString": str(s.goldstein_window),
        "useCoherenceMask": False,
        "coherenceThreshold": 0.2,
    }
    if s.version >= 14:  # SNAP 14 adapts alpha to coherence by default; older gpt lacks the element
        params["useAdaptiveAlpha"] = False
    return params


def multilook_params(s: SnapSettings) -> dict:
    return {
        "nRgLooks": s.looks_range,
        "nAzLooks": s.looks_azimuth,
        "outputIntensity": False,
        "grSquarePixel": False,
    }


def terrain_correction_params(s: SnapSettings) -> dict:
    # outputComplex=true keeps the i/q (and coherence) bands: with empty sourceBands and
    # outputComplex=false, SNAP turns i/q into Intensity and the phase is lost.
    params: dict[str, Any] = dict(dem_params(s))
    if s.external_dem:
        params["externalDEMApplyEGM"] = s.dem_apply_egm
    params.update(
        {
            "demResamplingMethod": "BILINEAR_INTERPOLATION",
            "imgResamplingMethod": "BILINEAR_INTERPOLATION",
            "pixelSpacingInMeter": s.spacing_m,
            "pixelSpacingInDegree": s.spacing_deg,
            "mapProjection": "WGS84(DD)",
            "alignToStandardGrid": True,
            "standardGridOriginX": 0.0,
            "standardGridOriginY": 0.0,
            "nodataValueAtSea": False,
            "saveDEM": False,
            "saveLatLon": False,
            "saveIncidenceAngleFromEllipsoid": False,
            "saveLocalIncidenceAngle": False,
            "saveProjectedLocalIncidenceAngle": False,
            "saveSelectedSourceBand": True,
            "saveLayoverShadowMask": True,
            "outputComplex": True,
            "applyRadiometricNormalization": False,
            "saveSigmaNought": False,
            "saveGammaNought": False,
            "saveBetaNought": False,
        }
    )
    return params


# --- graphs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    id: str
    operator: str
    sources: tuple[str, ...]
    params: dict


@dataclass
class Graph:
    """A gpt graph: nodes in topological order, ids named as SNAP's Graph Builder names them."""

    name: str
    nodes: list[Node] = field(default_factory=list)
    _counts: dict = field(default_factory=dict, repr=False)

    def add(self, operator: str, params: dict | None = None, sources: tuple | list = ()) -> str:
        known = {n.id for n in self.nodes}
        for src in sources:
            if src not in known:
                raise ValueError(
                    f"graph {self.name}: source {src} of {operator} is not defined yet"
                )
        n = self._counts.get(operator, 0) + 1
        self._counts[operator] = n
        node_id = operator if n == 1 else f"{operator}({n})"
        self.nodes.append(Node(node_id, operator, tuple(sources), dict(params or {})))
        return node_id

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def by_operator(self, operator: str) -> list[Node]:
        return [n for n in self.nodes if n.operator == operator]

    @property
    def placeholders(self) -> set[str]:
        out: set[str] = set()
        for n in self.nodes:
            for v in n.params.values():
                out |= placeholders_in(v)
        return out

    @property
    def targets(self) -> list[str]:
        """The placeholders of the Write nodes' files (the products this graph writes)."""
        out = []
        for n in self.by_operator("Write"):
            out.extend(sorted(placeholders_in(n.params["file"])))
        return out


def _read(g: Graph, name: str, fmt: str | None = DIMAP) -> str:
    return g.add("Read", read_params(ph(name), fmt))


def _write(g: Graph, source: str, name: str) -> str:
    return g.add("Write", write_params(ph(name)), [source])


def acquisition_fragment(g: Graph, s: SnapSettings, n_slices: int) -> dict[str, str]:
    """Read -> [SliceAssembly] -> TOPSAR-Split -> Calibration, per subswath (ids by subswath)."""
    if n_slices < 1:
        raise IsslideError("calibrate: no Sentinel-1 product for this date")
    reads = [_read(g, f"slice{k + 1}", None) for k in range(n_slices)]
    source = reads[0]
    if n_slices > 1:
        source = g.add("SliceAssembly", slice_assembly_params(s), reads)
    out = {}
    for sw in s.subswaths:
        split = g.add("TOPSAR-Split", split_params(s, sw), [source])
        out[sw] = g.add("Calibration", calibration_params(s), [split])
    return out


def coregister_fragment(g: Graph, s: SnapSettings, reference: str, secondary: str) -> str:
    bg = g.add("Back-Geocoding", back_geocoding_params(s), [reference, secondary])
    return g.add("Enhanced-Spectral-Diversity", esd_params(s), [bg])


def interferogram_fragment(g: Graph, s: SnapSettings, coregistered: dict[str, str]) -> str:
    """Interferogram -> TOPSAR-Deburst per subswath, then TOPSAR-Merge (two or more subswaths)."""
    debursted = []
    for sw in s.subswaths:
        ifg = g.add("Interferogram", interferogram_params(s), [coregistered[sw]])
        debursted.append(g.add("TOPSAR-Deburst", deburst_params(s), [ifg]))
    if len(debursted) == 1:
        return debursted[0]
    return g.add("TOPSAR-Merge", merge_params(s), debursted)


PAIR_OPERATORS = {
    "remove_topographic_phase": ("TopoPhaseRemoval", topo_params),
    "goldstein": ("GoldsteinPhaseFiltering", goldstein_params),
    "multilook": ("Multilook", multilook_params),
    "terrain_correct": ("Terrain-Correction", terrain_correction_params),
}


def step_graph(step: str, s: SnapSettings, n_slices: int = 1) -> Graph:
    """The graph one rule runs. Placeholders: inputs ``in_*``/``ref_*``/``sec_*``/``slice*``,
    outputs ``out_{subswath}`` or ``out``, the external DEM ``dem``."""
    if step not in STEPS:
        raise IsslideError(f"unknown InSAR step '{step}'; expected one of {', '.join(STEPS)}")
    g = Graph(f"isslide-{step}")
    if step == "calibrate":
        for sw, node in acquisition_fragment(g, s, n_slices).items():
            _write(g, node, f"out_{sw}")
    elif step == "apply_orbit":
        for sw in s.subswaths:
            orbit = g.add("Apply-Orbit-File", apply_orbit_params(s), [_read(g, f"in_{sw}")])
            _write(g, orbit, f"out_{sw}")
    elif step == "coregister":
        for sw in s.subswaths:
            ref, sec = _read(g, f"ref_{sw}"), _read(g, f"sec_{sw}")
            _write(g, coregister_fragment(g, s, ref, sec), f"out_{sw}")
    elif step == "interferogram":
        reads = {sw: _read(g, f"in_{sw}") for sw in s.subswaths}
        _write(g, interferogram_fragment(g, s, reads), "out")
    else:
        operator, params = PAIR_OPERATORS[step]
        _write(g, g.add(operator, params(s), [_read(g, "in")]), "out")
    return g


def fused_graph(s: SnapSettings) -> Graph:
    """The whole per-pair chain in one graph, from the two orbit-corrected acquisitions."""
    g = Graph("isslide-pair-fused")
    coregistered = {}
    for sw in s.subswaths:
        ref, sec = _read(g, f"ref_{sw}"), _read(g, f"sec_{sw}")
        coregistered[sw] = coregister_fragment(g, s, ref, sec)
    node = interferogram_fragment(g, s, coregistered)
    for step in ("remove_topographic_phase", "goldstein", "multilook", "terrain_correct"):
        operator, params = PAIR_OPERATORS[step]
        node = g.add(operator, params(s), [node])
    _write(g, node, "out")
    return g


def build_graph(step: str, s: SnapSettings, *, n_slices: int = 1, fused: bool = False) -> Graph:
    if fused:
        if step != "terrain_correct":
            raise IsslideError(
                f"the fused graph replaces the per-pair rules and runs in terrain_correct, not {step}"
            )
        return fused_graph(s)
    return step_graph(step, s, n_slices)


def product_part(step: str, s: SnapSettings) -> list[str]:
    """The products inside a step's ``.snap`` folder: one per subswath, or the merged one."""
    return list(s.subswaths) if step in PER_SUBSWATH else [MERGED]
