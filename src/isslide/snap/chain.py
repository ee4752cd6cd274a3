"""The one declarative description of the SNAP operator chain and its parameters.

Every SNAP parameter isslide sets is written once, in the ``*_params`` functions below, from
:class:`SnapSettings` (itself built from the config). The graphs of the rules, and the fused
per-pair graph, are assembled from the same fragments, so a parameter cannot differ between the
per-rule and the fused variant, nor between gpt and esa_snappy (both consume a :class:`Graph`).

Operator and parameter names follow the operator sources of ESA's microwave toolbox (formerly
s1tbx) and snap-engine, tags 10.0.0 to 14.0.0; docs/snap.md lists the sources. Parameters are set
explicitly even where they equal SNAP's default, because defaults changed between versions (SNAP
14: Copernicus 30 m DEM default, adaptive Goldstein alpha). File paths are ``${name}``
placeholders, bound per job with gpt ``-P<name>=<value>``: the XML of a step is the same for
every acquisition or pair.

Two recipes (``snap.recipe``, :data:`RECIPES`):

* ``esa``: per acquisition Read -> [SliceAssembly] -> TOPSAR-Split (per subswath) -> Calibration
  -> Apply-Orbit-File; per pair and subswath Back-Geocoding -> Enhanced-Spectral-Diversity ->
  Interferogram -> TOPSAR-Deburst; then TOPSAR-Merge -> TopoPhaseRemoval ->
  GoldsteinPhaseFiltering -> Multilook -> Terrain-Correction (complex) -> Write;
* ``isslide``: the chain of the ISSLIDE authors' graphs (InterfGraphSingleSwath.xml,
  OrthorectGraph.xml): every subswath on its own to the end (no ESD, no merge), bilinear DEM and
  image resampling in Back-Geocoding, the topographic phase removed inside Interferogram (no
  TopoPhaseRemoval step), Apply-Orbit-File continuing without a precise orbit, and after
  Multilook the phase computed by BandMaths (atan2(q, i)) and geocoded nearest-neighbour while
  the coherence is geocoded bilinearly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import IsslideError
from ..insar import STEPS

SUBSWATHS = ("IW1", "IW2", "IW3")
MERGED = "product"
# SNAP's SARGeocoding converts metres to degrees with the WGS84 semi-major axis.
METRES_PER_DEGREE = 6378137.0 * 3.141592653589793 / 180.0
EXTERNAL_DEM = "External DEM"
DIMAP = "BEAM-DIMAP"
# The last SNAP major version whose operator sources isslide's graphs were checked against.
NEWEST_CHECKED = 14
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")


def ph(name: str) -> str:
    """A gpt graph placeholder, bound on the command line with ``-P<name>=<value>``."""
    return "${" + name + "}"


def placeholders_in(value) -> set[str]:
    """The ``${name}`` placeholders of a parameter value (nested dicts and lists included)."""
    if isinstance(value, dict):
        return set().union(*(placeholders_in(v) for v in value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(*(placeholders_in(v) for v in value))
    return set(_PLACEHOLDER.findall(str(value)))


# --- recipes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """The structural choices of a chain (what the config's numbers do not say)."""

    name: str
    merge: bool  # TOPSAR-Merge of the debursted subswaths (else each subswath to the end)
    esd: bool  # Enhanced-Spectral-Diversity after Back-Geocoding
    dem_resampling: str  # Back-Geocoding demResamplingMethod
    image_resampling: str  # Back-Geocoding resamplingType
    topo_in_interferogram: bool  # Interferogram subtractTopographicPhase, no TopoPhaseRemoval
    phase_by_bandmaths: bool  # phase = atan2(q, i) after Multilook, geocoded nearest-neighbour
    orbit_continue_on_fail: bool  # Apply-Orbit-File continueOnFail unless snap.orbit sets it
    square_pixel: bool  # Interferogram squarePixel (read by SNAP's UI only, 10.0.0-14.0.0)
    nodata_at_sea: bool  # Terrain-Correction nodataValueAtSea


RECIPES = {
    "esa": Recipe(
        name="esa",
        merge=True,
        esd=True,
        dem_resampling="BICUBIC_INTERPOLATION",
        image_resampling="BISINC_5_POINT_INTERPOLATION",
        topo_in_interferogram=False,
        phase_by_bandmaths=False,
        orbit_continue_on_fail=False,
        square_pixel=False,
        nodata_at_sea=False,
    ),
    "isslide": Recipe(
        name="isslide",
        merge=False,
        esd=False,
        dem_resampling="BILINEAR_INTERPOLATION",
        image_resampling="BILINEAR_INTERPOLATION",
        topo_in_interferogram=True,
        phase_by_bandmaths=True,
        orbit_continue_on_fail=True,
        square_pixel=True,
        nodata_at_sea=True,
    ),
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise IsslideError(f"snap.recipe: unknown recipe '{name}'; use one of {', '.join(RECIPES)}")
    return RECIPES[name]


def recipe_steps(recipe: str | Recipe) -> tuple[str, ...]:
    """The InSAR rules a recipe runs (``isslide`` has no remove_topographic_phase rule)."""
    r = get_recipe(recipe) if isinstance(recipe, str) else recipe
    if r.topo_in_interferogram:
        return tuple(st for st in STEPS if st != "remove_topographic_phase")
    return STEPS


def previous_step(step: str, recipe: str | Recipe) -> str:
    steps = recipe_steps(recipe)
    return steps[steps.index(step) - 1]


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapSettings:
    """Everything the chain needs, validated, from a rule's params (or a config + stack)."""

    gpt: str = "gpt"
    version: int | None = None  # SNAP major version (detected from gpt --diag, or configured)
    recipe: str = "esa"
    runner: str = "gpt"
    fuse: bool = False
    heap_fraction: float | None = 0.75
    cache_fraction: float = 0.5
    clear_tile_cache: bool = True
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
    orbit_continue_on_fail: bool | None = None  # None: the recipe's choice
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

    @property
    def chain(self) -> Recipe:
        return get_recipe(self.recipe)

    @property
    def continue_on_fail(self) -> bool:
        if self.orbit_continue_on_fail is None:
            return self.chain.orbit_continue_on_fail
        return self.orbit_continue_on_fail

    @property
    def steps(self) -> tuple[str, ...]:
        return recipe_steps(self.chain)

    def require_version(self) -> int:
        if self.version is None:
            raise IsslideError(
                "snap.version: the SNAP version is unknown (gpt was not found to ask it with "
                "'gpt --diag'); install SNAP and set snap.gpt, or set snap.version to 10..14 "
                "(isslide snap-graph: --snap-version)"
            )
        return self.version

    @classmethod
    def from_params(cls, params: dict) -> SnapSettings:
        """From the params of an InSAR rule: ``{"insar", "snap", "stack", "snap_install"}``.

        Keys ``params`` lacks take the schema's defaults (the only place they are stated). ``snap_install`` is what the workflow
        detected from gpt at planning (:func:`isslide.snap.install.planning_check`); its version
        wins over an unset ``snap.version`` and must equal a configured one.
        """
        from ..config import fill_section

        insar, snap = (
            fill_section("insar", params["insar"]),
            fill_section("snap", params.get("snap")),
        )
        stack = params.get("stack") or {}
        dem, orbit, bursts, esd = snap["dem"], snap["orbit"], snap["bursts"], snap["esd"]
        subswaths = tuple(stack.get("subswaths") or SUBSWATHS)
        detected = (params.get("snap_install") or {}).get("version")
        configured = snap["version"]
        if detected is not None and configured is not None and int(detected) != int(configured):
            raise IsslideError(
                f"snap.version: configured {configured} but the SNAP in use is {detected}; set "
                f"snap.version to {detected} (or null to use the detected version)"
            )
        version = detected if detected is not None else configured
        heap = snap["heap_fraction"]
        cof = orbit["continue_on_fail"]
        settings = cls(
            gpt=snap["gpt"],
            version=None if version is None else int(version),
            recipe=snap["recipe"],
            runner=snap["runner"],
            fuse=bool(snap["fuse"]),
            heap_fraction=None if heap is None else float(heap),
            cache_fraction=float(snap["cache_fraction"]),
            clear_tile_cache=bool(snap["clear_tile_cache"]),
            system_properties=dict(snap["system_properties"]),
            polarisation=insar["polarisation"],
            subswaths=tuple(sorted(subswaths)),
            aoi=stack.get("aoi"),
            first_burst=int(bursts["first"]),
            last_burst=int(bursts["last"]),
            dem_name=dem["name"],
            dem_file=dem["external_file"],
            dem_nodata=float(dem["nodata"]),
            dem_apply_egm=bool(dem["apply_egm"]),
            orbit_type=orbit["type"],
            orbit_directory=orbit["directory"],
            orbit_continue_on_fail=None if cof is None else bool(cof),
            orbit_poly_degree=int(orbit["poly_degree"]),
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
        recipe = self.chain
        idx = [SUBSWATHS.index(s) for s in self.subswaths]
        if recipe.merge and idx != list(range(idx[0], idx[0] + len(idx))):
            raise IsslideError(
                f"stacks.<name>.subswaths: {list(self.subswaths)} are not adjacent and SNAP's "
                "TOPSAR-Merge (snap.recipe esa) rejects an isolated subswath; use IW1+IW2, "
                "IW2+IW3, all three or one, or snap.recipe isslide (no merge)"
            )
        if self.fuse and recipe.phase_by_bandmaths:
            raise IsslideError(
                "snap.fuse: the isslide recipe's BandMaths names the bands of the multilooked "
                "product, known only once it exists; set snap.fuse false or snap.recipe esa"
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
        if not self.dem_apply_egm:
            raise IsslideError(
                "snap.dem.apply_egm: false cannot be honoured: SNAP's Back-Geocoding and "
                "TopoPhaseRemoval always add EGM96 to an external DEM (no switch, microwave-toolbox "
                "10.0.0-14.0.0), so only Terrain-Correction would use ellipsoid heights; convert "
                "the DEM to EGM96 geoid heights (e.g. gdalwarp -s_srs EPSG:4979 -t_srs "
                "EPSG:4326+5773) and keep apply_egm true"
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


def per_subswath_steps(s: SnapSettings) -> tuple[str, ...]:
    """Steps whose ``.snap`` folder holds one product per subswath ({subswath}.dim)."""
    if s.chain.merge:
        return ("calibrate", "apply_orbit", "coregister")
    return tuple(st for st in s.steps if st != "terrain_correct")


# --- the operators' parameters (the single place where SNAP parameters are set) -------------


def read_params(file: str, format_name: str | None = None) -> dict:
    params: dict[str, Any] = {"file": file}
    if format_name:
        params["formatName"] = format_name
    params["copyMetadata"] = True
    return params


def write_params(file: str, s: SnapSettings) -> dict:
    # gpt's -x only reaches a Write node gpt appends itself (CommandLineTool, snap-engine
    # 10.0.0-14.0.0), never ours; and WriteOp ignores clearCacheAfterRowWrite unless
    # writeEntireTileRows is true. So both are set here, from snap.clear_tile_cache.
    return {
        "file": file,
        "formatName": DIMAP,
        "writeEntireTileRows": s.clear_tile_cache,
        "clearCacheAfterRowWrite": s.clear_tile_cache,
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
        "continueOnFail": s.continue_on_fail,
    }


def dem_params(s: SnapSettings, apply_egm: bool = False) -> dict:
    """demName (+ externalDEMFile, externalDEMNoDataValue): the same DEM for every operator.

    ``apply_egm``: the operator has ``externalDEMApplyEGM`` (Terrain-Correction, Interferogram);
    Back-Geocoding and TopoPhaseRemoval have none and always add EGM96 to an external DEM.
    """
    params: dict[str, Any] = {"demName": s.dem_name}
    if s.external_dem:
        params["externalDEMFile"] = ph("dem")
        params["externalDEMNoDataValue"] = s.dem_nodata
        if apply_egm:
            params["externalDEMApplyEGM"] = s.dem_apply_egm
    return params


def back_geocoding_params(s: SnapSettings) -> dict:
    return {
        **dem_params(s),
        "demResamplingMethod": s.chain.dem_resampling,
        "resamplingType": s.chain.image_resampling,
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
    # cohWinAz/cohWinRg are used as given: InterferogramOp declares squarePixel but never reads
    # it (10.0.0-14.0.0; only the Graph Builder UI derives one window from the other).
    # esa: the topographic phase is removed by TopoPhaseRemoval (its own rule), so no DEM here;
    # isslide: Interferogram removes it itself, as in the authors' graph.
    params: dict[str, Any] = {
        "subtractFlatEarthPhase": True,
        "srpPolynomialDegree": 5,
        "srpNumberPoints": 501,
        "orbitDegree": 3,
        "includeCoherence": True,
        "cohWinAz": s.coh_azimuth,
        "cohWinRg": s.coh_range,
        "squarePixel": s.chain.square_pixel,
        "subtractTopographicPhase": s.chain.topo_in_interferogram,
    }
    if s.chain.topo_in_interferogram:
        params.update(dem_params(s, apply_egm=True))
        params.update(
            {"tileExtensionPercent": "100", "outputElevation": False, "outputLatLon": False}
        )
    return params


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
    # GoldsteinFilterOp gained useAdaptiveAlpha (default true) in 14.0.0; older gpt rejects it.
    if s.require_version() >= 14:
        params["useAdaptiveAlpha"] = False
    return params


def multilook_params(s: SnapSettings) -> dict:
    # grSquarePixel=false: the configured looks as given (with true SNAP derives nAzLooks from
    # nRgLooks; for Sentinel-1 IW and 8 range looks that is 2 in each subswath, the config's).
    return {
        "nRgLooks": s.looks_range,
        "nAzLooks": s.looks_azimuth,
        "outputIntensity": False,
        "grSquarePixel": False,
    }


def terrain_correction_params(s: SnapSettings, *, phase_only: bool = False) -> dict:
    """Terrain-Correction on SNAP's standard grid at origin (0, 0): pixel centres on multiples of
    the spacing, the lattice of :func:`isslide.geometry.output_grid`.

    Default (coherence, and esa's complex i/q): bilinear, ``outputComplex=true`` keeps the i/q
    (and coherence) bands (with empty sourceBands and outputComplex=false, SNAP turns i/q into
    Intensity and the phase is lost), layover/shadow mask saved. ``phase_only`` (isslide): the
    BandMaths phase band, nearest neighbour, no mask.
    """
    params: dict[str, Any] = dict(dem_params(s, apply_egm=True))
    params.update(
        {
            "demResamplingMethod": "BILINEAR_INTERPOLATION",
            "imgResamplingMethod": "NEAREST_NEIGHBOUR" if phase_only else "BILINEAR_INTERPOLATION",
            "pixelSpacingInMeter": s.spacing_m,
            "pixelSpacingInDegree": s.spacing_deg,
            "mapProjection": "WGS84(DD)",
            "alignToStandardGrid": True,
            "standardGridOriginX": 0.0,
            "standardGridOriginY": 0.0,
            "nodataValueAtSea": s.chain.nodata_at_sea,
            "saveDEM": False,
            "saveLatLon": False,
            "saveIncidenceAngleFromEllipsoid": False,
            "saveLocalIncidenceAngle": False,
            "saveProjectedLocalIncidenceAngle": False,
            "saveSelectedSourceBand": True,
            "saveLayoverShadowMask": not phase_only,
            "outputComplex": not phase_only,
            "applyRadiometricNormalization": False,
            "saveSigmaNought": False,
            "saveGammaNought": False,
            "saveBetaNought": False,
        }
    )
    return params


PHASE_BAND = "Phase"
PHASE_NODATA = 0.0  # the authors' BandMaths noDataValue


def phase_bandmaths_params(i_band: str, q_band: str) -> dict:
    """BandMaths: the wrapped phase atan2(q, i) of the multilooked interferogram (float32)."""
    return {
        "targetBands": {
            "targetBand": {
                "name": PHASE_BAND,
                "type": "float32",
                "expression": f"atan2({q_band}, {i_band})",
                "noDataValue": PHASE_NODATA,
            }
        },
        "variables": {},
    }


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
            out |= placeholders_in(n.params)
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


def _write(g: Graph, s: SnapSettings, source: str, name: str) -> str:
    return g.add("Write", write_params(ph(name), s), [source])


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
    node = g.add("Back-Geocoding", back_geocoding_params(s), [reference, secondary])
    if s.chain.esd:
        node = g.add("Enhanced-Spectral-Diversity", esd_params(s), [node])
    return node


def interferogram_fragment(g: Graph, s: SnapSettings, coregistered: dict[str, str]) -> dict:
    """Interferogram -> TOPSAR-Deburst per subswath, then TOPSAR-Merge (esa, two or more
    subswaths). Returns {part: node}: the merged product, or one node per subswath."""
    debursted = {}
    for sw in s.subswaths:
        ifg = g.add("Interferogram", interferogram_params(s), [coregistered[sw]])
        debursted[sw] = g.add("TOPSAR-Deburst", deburst_params(s), [ifg])
    if not s.chain.merge:
        return debursted
    if len(debursted) == 1:
        return {MERGED: next(iter(debursted.values()))}
    return {MERGED: g.add("TOPSAR-Merge", merge_params(s), list(debursted.values()))}


PAIR_OPERATORS = {
    "remove_topographic_phase": ("TopoPhaseRemoval", topo_params),
    "goldstein": ("GoldsteinPhaseFiltering", goldstein_params),
    "multilook": ("Multilook", multilook_params),
    "terrain_correct": ("Terrain-Correction", terrain_correction_params),
}


def out_name(part: str) -> str:
    """The output placeholder of a product part (``out`` for the merged product)."""
    return "out" if part == MERGED else f"out_{part}"


def in_name(part: str) -> str:
    return "in" if part == MERGED else f"in_{part}"


def product_part(step: str, s: SnapSettings) -> list[str]:
    """The products inside a step's ``.snap`` folder: one per subswath, or the merged one."""
    return list(s.subswaths) if step in per_subswath_steps(s) else [MERGED]


def isslide_geocoding_fragment(g: Graph, s: SnapSettings, part: str, source: str) -> None:
    """isslide recipe, per subswath: coherence (and mask) bilinear; BandMaths phase nearest."""
    coh = g.add("Terrain-Correction", terrain_correction_params(s), [source])
    _write(g, s, coh, f"out_coh_{part}")
    bm = g.add("BandMaths", phase_bandmaths_params(ph(f"i_{part}"), ph(f"q_{part}")), [source])
    phase = g.add("Terrain-Correction", terrain_correction_params(s, phase_only=True), [bm])
    _write(g, s, phase, f"out_phase_{part}")


def step_graph(step: str, s: SnapSettings, n_slices: int = 1) -> Graph:
    """The graph one rule runs. Placeholders: inputs ``in_*``/``ref_*``/``sec_*``/``slice*``,
    outputs ``out_{subswath}`` or ``out`` (isslide terrain_correct: ``out_coh_{subswath}``,
    ``out_phase_{subswath}``, band names ``i_{subswath}``, ``q_{subswath}``), the external DEM
    ``dem``."""
    if step not in STEPS:
        raise IsslideError(f"unknown InSAR step '{step}'; expected one of {', '.join(STEPS)}")
    if step not in s.steps:
        raise IsslideError(
            f"{step}: not a step of snap.recipe {s.recipe} (its steps: {', '.join(s.steps)})"
        )
    g = Graph(f"isslide-{step}")
    if step == "calibrate":
        for sw, node in acquisition_fragment(g, s, n_slices).items():
            _write(g, s, node, f"out_{sw}")
    elif step == "apply_orbit":
        for sw in s.subswaths:
            orbit = g.add("Apply-Orbit-File", apply_orbit_params(s), [_read(g, f"in_{sw}")])
            _write(g, s, orbit, f"out_{sw}")
    elif step == "coregister":
        for sw in s.subswaths:
            ref, sec = _read(g, f"ref_{sw}"), _read(g, f"sec_{sw}")
            _write(g, s, coregister_fragment(g, s, ref, sec), f"out_{sw}")
    elif step == "interferogram":
        reads = {sw: _read(g, f"in_{sw}") for sw in s.subswaths}
        for part, node in interferogram_fragment(g, s, reads).items():
            _write(g, s, node, out_name(part))
    elif step == "terrain_correct" and s.chain.phase_by_bandmaths:
        for part in product_part(previous_step(step, s.chain), s):
            isslide_geocoding_fragment(g, s, part, _read(g, in_name(part)))
    else:
        operator, params = PAIR_OPERATORS[step]
        for part in product_part(previous_step(step, s.chain), s):
            node = g.add(operator, params(s), [_read(g, in_name(part))])
            _write(g, s, node, out_name(part))
    return g


def fused_graph(s: SnapSettings) -> Graph:
    """The whole per-pair chain in one graph, from the two orbit-corrected acquisitions."""
    if s.chain.phase_by_bandmaths:
        raise IsslideError(
            "snap.fuse: not available with snap.recipe isslide (its BandMaths needs the band "
            "names of the multilooked product); set snap.fuse false"
        )
    g = Graph("isslide-pair-fused")
    coregistered = {}
    for sw in s.subswaths:
        ref, sec = _read(g, f"ref_{sw}"), _read(g, f"sec_{sw}")
        coregistered[sw] = coregister_fragment(g, s, ref, sec)
    (node,) = interferogram_fragment(g, s, coregistered).values()
    for step in s.steps[s.steps.index("interferogram") + 1 :]:
        operator, params = PAIR_OPERATORS[step]
        node = g.add(operator, params(s), [node])
    _write(g, s, node, "out")
    return g


def build_graph(step: str, s: SnapSettings, *, n_slices: int = 1, fused: bool = False) -> Graph:
    if fused:
        if step != "terrain_correct":
            raise IsslideError(
                f"the fused graph replaces the per-pair rules and runs in terrain_correct, not {step}"
            )
        return fused_graph(s)
    return step_graph(step, s, n_slices)
