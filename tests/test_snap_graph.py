"""SNAP backend: the generated gpt graphs (operators, parameters, sources, placeholders).

The expected values are the ones the issue lists (from SNAP's operator sources, docs/snap.md);
the graphs are checked through their XML, as gpt reads them.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
import yaml

from isslide.config import deep_update, fill_defaults
from isslide.errors import IsslideError
from isslide.insar import STEPS
from isslide.snap import chain
from isslide.snap.chain import SnapSettings, build_graph
from isslide.snap.xmlgraph import check_bindings, to_xml, xml_placeholders

AOI = "POLYGON((5.85 44.50, 7.20 44.50, 7.20 45.60, 5.85 45.60, 5.85 44.50))"


def isslide_params(repo, snap=None, stack=None, insar=None) -> dict:
    """config/isslide.yaml's rule params; by default the esa recipe and SNAP 10 (``snap``
    overrides, e.g. ``{"recipe": "isslide"}``)."""
    cfg = yaml.safe_load(open(repo / "config/isslide.yaml"))
    snap = {"recipe": "esa", "version": 10, **(snap or {})}
    cfg = fill_defaults(deep_update(cfg, {"snap": snap, "insar": insar or {}}))
    st = dict(cfg["stacks"]["alps"], **(stack or {}))
    return {
        "insar": cfg["insar"],
        "backend": "snap",
        "snap": cfg["snap"],
        "stack": {k: st.get(k) for k in ("subswaths", "aoi", "track", "pass")},
    }


@pytest.fixture
def settings(repo):
    def make(**kw) -> SnapSettings:
        return SnapSettings.from_params(isslide_params(repo, **kw))

    return make


def parse(graph) -> dict:
    """node id -> (operator, [source refids in order], {parameter: text}) from the XML."""
    root = ET.fromstring(to_xml(graph))
    assert root.tag == "graph" and root.findtext("version") == "1.0"
    nodes = {}
    for node in root.findall("node"):
        sources = list(node.find("sources"))
        expected_tags = ["sourceProduct" + (f".{k}" if k else "") for k in range(len(sources))]
        assert [s.tag for s in sources] == expected_tags
        params = node.find("parameters")
        assert params.get("class") == "com.bc.ceres.binding.dom.XppDomElement"
        nodes[node.get("id")] = (
            node.findtext("operator"),
            [s.get("refid") for s in sources],
            {p.tag: p.text for p in params},
        )
    return nodes


def of(nodes, operator):
    return {k: v for k, v in nodes.items() if v[0] == operator}


ALL_GRAPHS = (
    [("esa", s, False, 1) for s in STEPS]
    + [("esa", "calibrate", False, 2), ("esa", "terrain_correct", True, 1)]
    + [("isslide", s, False, 1) for s in chain.recipe_steps("isslide")]
)


@pytest.mark.parametrize("recipe, step, fused, slices", ALL_GRAPHS)
def test_xml_well_formed_sources_defined_placeholders_bound(settings, recipe, step, fused, slices):
    s = settings(
        snap={"recipe": recipe, "dem": {"name": "External DEM", "external_file": "dem.tif"}}
    )
    graph = build_graph(step, s, n_slices=slices, fused=fused)
    xml = to_xml(graph)
    nodes = parse(graph)
    seen = set()
    for node_id, (operator, sources, _) in nodes.items():
        assert operator and all(src in seen for src in sources), (node_id, sources)
        seen.add(node_id)
    used = xml_placeholders(xml)
    assert used == graph.placeholders and used
    check_bindings(xml, {name: f"/x/{name}" for name in used})
    with pytest.raises(IsslideError, match="unbound"):
        check_bindings(xml, {name: "/x" for name in sorted(used)[1:]})
    with pytest.raises(IsslideError, match="unused"):
        check_bindings(xml, {**{name: "/x" for name in used}, "typo": "/x"})
    writes = of(nodes, "Write")
    assert writes and all(p["formatName"] == "BEAM-DIMAP" for _, _, p in writes.values())
    for _, _, p in writes.values():  # what gpt's -x cannot do for a graph's own Write nodes
        assert p["writeEntireTileRows"] == p["clearCacheAfterRowWrite"] == "true"


def test_calibrate_one_slice(settings):
    nodes = parse(build_graph("calibrate", settings()))
    assert not of(nodes, "SliceAssembly")
    assert of(nodes, "Read")["Read"][2]["file"] == "${slice1}"
    splits = of(nodes, "TOPSAR-Split")
    assert [p["subswath"] for _, _, p in splits.values()] == ["IW1", "IW2", "IW3"]
    for _, sources, p in splits.values():
        assert sources == ["Read"]
        assert p["selectedPolarisations"] == "VV" and p["wktAoi"] == AOI
        assert p["firstBurstIndex"] == "1" and p["lastBurstIndex"] == "9999"
    cals = of(nodes, "Calibration")
    assert [src for _, (src,), _ in cals.values()] == list(splits)
    for _, _, p in cals.values():
        assert p["outputImageInComplex"] == "true" and p["selectedPolarisations"] == "VV"
        assert p["outputImageScaleInDb"] == "false"
    writes = of(nodes, "Write")
    assert [src for _, (src,), _ in writes.values()] == list(cals)
    assert [p["file"] for _, _, p in writes.values()] == ["${out_IW1}", "${out_IW2}", "${out_IW3}"]


def test_calibrate_slices_are_assembled(settings):
    nodes = parse(build_graph("calibrate", settings(), n_slices=3))
    (assembly,) = of(nodes, "SliceAssembly").values()
    assert assembly[1] == ["Read", "Read(2)", "Read(3)"]
    assert assembly[2]["selectedPolarisations"] == "VV"
    assert all(src == ["SliceAssembly"] for _, src, _ in of(nodes, "TOPSAR-Split").values())


def test_no_aoi_means_no_wkt(settings):
    nodes = parse(build_graph("calibrate", settings(stack={"aoi": None})))
    assert all("wktAoi" not in p for _, _, p in of(nodes, "TOPSAR-Split").values())


@pytest.mark.parametrize("continue_on_fail", [False, True])
def test_apply_orbit(settings, continue_on_fail):
    s = settings(snap={"orbit": {"continue_on_fail": continue_on_fail}})
    nodes = parse(build_graph("apply_orbit", s))
    orbits = of(nodes, "Apply-Orbit-File")
    assert len(orbits) == 3
    for _, (src,), p in orbits.values():
        assert nodes[src][0] == "Read" and nodes[src][2]["formatName"] == "BEAM-DIMAP"
        assert p == {
            "orbitType": "Sentinel Precise (Auto Download)",
            "polyDegree": "3",
            "continueOnFail": str(continue_on_fail).lower(),
        }


def test_coregister_back_geocoding_and_esd(settings):
    nodes = parse(build_graph("coregister", settings()))
    bgs = of(nodes, "Back-Geocoding")
    assert len(bgs) == 3
    first = nodes["Back-Geocoding"]
    assert first[1] == ["Read", "Read(2)"]
    assert nodes["Read"][2]["file"] == "${ref_IW1}" and nodes["Read(2)"][2]["file"] == "${sec_IW1}"
    assert nodes["Back-Geocoding(3)"][1] == ["Read(5)", "Read(6)"]
    for _, _, p in bgs.values():
        assert p["demName"] == "SRTM 1Sec HGT"
        assert "externalDEMFile" not in p
        assert p["resamplingType"] == "BISINC_5_POINT_INTERPOLATION"
        assert p["maskOutAreaWithoutElevation"] == "true"
    esds = of(nodes, "Enhanced-Spectral-Diversity")
    assert [src for _, src, _ in esds.values()] == [[b] for b in bgs]
    assert all(p["esdEstimator"] == "Periodogram" for _, _, p in esds.values())


def test_external_dem_everywhere_the_dem_is_used(settings):
    s = settings(
        snap={"dem": {"name": "External DEM", "external_file": "dem/alps.tif", "nodata": -32768}}
    )
    nodes = parse(build_graph("terrain_correct", s, fused=True))
    for op in ("Back-Geocoding", "TopoPhaseRemoval", "Terrain-Correction"):
        for _, _, p in of(nodes, op).values():
            assert p["demName"] == "External DEM"
            assert p["externalDEMFile"] == "${dem}"
            assert float(p["externalDEMNoDataValue"]) == -32768
    (tc,) = of(nodes, "Terrain-Correction").values()
    assert tc[2]["externalDEMApplyEGM"] == "true"


def test_dem_name_is_always_explicit(settings):
    """SNAP 14 changed the default DEM to Copernicus 30 m: every DEM user names it."""
    nodes = parse(build_graph("terrain_correct", settings(snap={"version": 14}), fused=True))
    for op in ("Back-Geocoding", "TopoPhaseRemoval", "Terrain-Correction"):
        assert all(p["demName"] == "SRTM 1Sec HGT" for _, _, p in of(nodes, op).values())


@pytest.mark.parametrize(
    "dem, message",
    [
        ({"name": "External DEM"}, "snap.dem.external_file"),
        ({"external_file": "dem.tif"}, "snap.dem.name"),
    ],
)
def test_dem_settings_must_agree(settings, dem, message):
    with pytest.raises(IsslideError, match=message):
        settings(snap={"dem": dem})


def test_interferogram_deburst_merge(settings):
    nodes = parse(build_graph("interferogram", settings()))
    ifgs = of(nodes, "Interferogram")
    assert len(ifgs) == 3
    for _, (src,), p in ifgs.values():
        assert nodes[src][0] == "Read"
        assert p["subtractFlatEarthPhase"] == "true" and p["includeCoherence"] == "true"
        assert p["cohWinRg"] == "10" and p["cohWinAz"] == "3"
        assert p["squarePixel"] == "false"  # else SNAP derives cohWinAz from cohWinRg
        assert p["subtractTopographicPhase"] == "false"
    debursts = of(nodes, "TOPSAR-Deburst")
    assert [src for _, src, _ in debursts.values()] == [[i] for i in ifgs]
    (merge,) = of(nodes, "TOPSAR-Merge").values()
    assert merge[1] == list(debursts) and merge[2]["selectedPolarisations"] == "VV"
    (write,) = of(nodes, "Write").values()
    assert write[1] == ["TOPSAR-Merge"] and write[2]["file"] == "${out}"


def test_single_subswath_needs_no_merge(settings):
    nodes = parse(build_graph("interferogram", settings(stack={"subswaths": ["IW2"]})))
    assert not of(nodes, "TOPSAR-Merge")
    assert of(nodes, "Write")["Write"][1] == ["TOPSAR-Deburst"]


def test_isolated_subswaths_are_rejected(settings):
    with pytest.raises(IsslideError, match="not adjacent"):
        settings(stack={"subswaths": ["IW1", "IW3"]})


def one(nodes, operator):
    (node,) = of(nodes, operator).values()
    assert node[1] == ["Read"]
    return node[2]


def test_topographic_phase_removal(settings):
    p = one(parse(build_graph("remove_topographic_phase", settings())), "TopoPhaseRemoval")
    assert p["demName"] == "SRTM 1Sec HGT" and p["orbitDegree"] == "3"


@pytest.mark.parametrize("version, adaptive", [(10, None), (12, None), (13, None), (14, "false")])
def test_goldstein_adaptive_alpha_only_from_snap_14(settings, version, adaptive):
    p = one(
        parse(build_graph("goldstein", settings(snap={"version": version}))),
        "GoldsteinPhaseFiltering",
    )
    assert p["alpha"] == "1.0" and p["FFTSizeString"] == "64" and p["windowSizeString"] == "3"
    assert p.get("useAdaptiveAlpha") == adaptive
    assert p["useCoherenceMask"] == "false"


def test_multilook(settings):
    p = one(parse(build_graph("multilook", settings())), "Multilook")
    assert p == {
        "nRgLooks": "8",
        "nAzLooks": "2",
        "outputIntensity": "false",
        "grSquarePixel": "false",
    }


def test_terrain_correction_keeps_phase_and_mask(settings):
    p = one(parse(build_graph("terrain_correct", settings())), "Terrain-Correction")
    assert p["mapProjection"] == "WGS84(DD)"
    assert float(p["pixelSpacingInMeter"]) == 14.64
    assert float(p["pixelSpacingInDegree"]) == pytest.approx(
        14.64 / chain.METRES_PER_DEGREE, rel=1e-3
    )
    assert p["outputComplex"] == "true" and p["saveSelectedSourceBand"] == "true"
    assert p["saveLayoverShadowMask"] == "true"
    assert "sourceBands" not in p  # all bands: i, q and coherence
    assert p["demName"] == "SRTM 1Sec HGT" and p["applyRadiometricNormalization"] == "false"


def test_inconsistent_pixel_spacing_is_rejected(settings):
    with pytest.raises(IsslideError, match="insar.pixel_spacing_m"):
        settings(insar={"pixel_spacing_m": 30.0})


def test_insar_parameters_follow_the_config(settings):
    s = settings(
        insar={
            "coherence_window": {"range": 5, "azimuth": 2},
            "multilook": {"range": 4, "azimuth": 1},
            "goldstein": {"alpha": 0.5, "fft_size": 32, "window": 5},
            "polarisation": "VH",
        }
    )
    nodes = parse(build_graph("terrain_correct", s, fused=True))
    assert one_of(nodes, "Interferogram")["cohWinRg"] == "5"
    assert one_of(nodes, "Interferogram")["cohWinAz"] == "2"
    assert one_of(nodes, "Multilook")["nRgLooks"] == "4"
    g = one_of(nodes, "GoldsteinPhaseFiltering")
    assert (g["alpha"], g["FFTSizeString"], g["windowSizeString"]) == ("0.5", "32", "5")
    assert one_of(nodes, "TOPSAR-Merge")["selectedPolarisations"] == "VH"


def one_of(nodes, operator):
    return next(iter(of(nodes, operator).values()))[2]


def processing(nodes):
    return Counter(
        (op, tuple(sorted(p.items()))) for op, _, p in nodes.values() if op not in ("Read", "Write")
    )


def test_fused_graph_is_the_per_rule_chain(settings):
    s = settings(snap={"dem": {"name": "External DEM", "external_file": "dem.tif"}, "version": 14})
    per_rule = Counter()
    for step in STEPS[2:]:
        per_rule += processing(parse(build_graph(step, s)))
    fused = parse(build_graph("terrain_correct", s, fused=True))
    assert processing(fused) == per_rule
    chain_order = [
        "TopoPhaseRemoval",
        "GoldsteinPhaseFiltering",
        "Multilook",
        "Terrain-Correction",
        "Write",
    ]
    previous = "TOPSAR-Merge"
    for node_id in chain_order:
        assert fused[node_id][1] == [previous]
        previous = node_id
    assert fused["Back-Geocoding(2)"][1] == ["Read(3)", "Read(4)"]
    assert {p["file"] for op, _, p in fused.values() if op == "Read"} == {
        f"${{{role}_{sw}}}" for role in ("ref", "sec") for sw in ("IW1", "IW2", "IW3")
    }


def test_fused_only_for_terrain_correct(settings):
    with pytest.raises(IsslideError, match="fused"):
        build_graph("goldstein", settings(), fused=True)


def test_settings_do_not_mutate_params(repo):
    params = isslide_params(repo)
    before = copy.deepcopy(params)
    SnapSettings.from_params(params)
    assert params == before


def test_clear_tile_cache_false_gives_snaps_write_defaults(settings):
    nodes = parse(build_graph("multilook", settings(snap={"clear_tile_cache": False})))
    (write,) = of(nodes, "Write").values()
    assert write[2]["writeEntireTileRows"] == write[2]["clearCacheAfterRowWrite"] == "false"


def test_apply_egm_false_is_refused(settings):
    with pytest.raises(IsslideError, match="Back-Geocoding and TopoPhaseRemoval always add EGM96"):
        settings(
            snap={"dem": {"name": "External DEM", "external_file": "d.tif", "apply_egm": False}}
        )


def test_unknown_version_is_asked_for_only_where_it_matters(settings):
    s = settings(snap={"version": None})
    build_graph("multilook", s)  # no version-dependent parameter
    with pytest.raises(IsslideError, match="snap.version: the SNAP version is unknown"):
        build_graph("goldstein", s)


# --- the isslide recipe (the ISSLIDE authors' graphs), node by node ---------------------------
# Expected values: the authors' InterfGraphSingleSwath.xml and OrthorectGraph.xml (github
# Ant89ne/ISSLIDE at 080f0e6), with the deviations docs/snap.md lists.


@pytest.fixture
def isslide(settings):
    def make(**snap):
        return settings(snap={"recipe": "isslide", **snap})

    return make


def test_isslide_has_no_topo_removal_step(isslide):
    assert chain.recipe_steps("isslide") == tuple(
        s for s in STEPS if s != "remove_topographic_phase"
    )
    with pytest.raises(IsslideError, match="not a step of snap.recipe isslide"):
        build_graph("remove_topographic_phase", isslide())


@pytest.mark.parametrize("cof, expected", [(None, "true"), (False, "false")])
def test_isslide_apply_orbit_continues_without_precise_orbit(isslide, cof, expected):
    nodes = parse(build_graph("apply_orbit", isslide(orbit={"continue_on_fail": cof})))
    assert {p["continueOnFail"] for _, _, p in of(nodes, "Apply-Orbit-File").values()} == {expected}


def test_isslide_coregister_bilinear_without_esd(isslide):
    nodes = parse(build_graph("coregister", isslide()))
    assert not of(nodes, "Enhanced-Spectral-Diversity")
    bgs = of(nodes, "Back-Geocoding")
    assert len(bgs) == 3
    for _, _, p in bgs.values():
        assert p["demName"] == "SRTM 1Sec HGT"
        assert p["demResamplingMethod"] == "BILINEAR_INTERPOLATION"
        assert p["resamplingType"] == "BILINEAR_INTERPOLATION"
        assert p["maskOutAreaWithoutElevation"] == "true" and p["disableReramp"] == "false"
    writes = of(nodes, "Write")
    assert [src for _, src, _ in writes.values()] == [[b] for b in bgs]
    assert [p["file"] for _, _, p in writes.values()] == ["${out_IW1}", "${out_IW2}", "${out_IW3}"]


def test_isslide_interferogram_removes_topography_per_subswath(isslide):
    s = isslide(dem={"name": "External DEM", "external_file": "dem.tif", "nodata": -32768})
    nodes = parse(build_graph("interferogram", s))
    assert not of(nodes, "TOPSAR-Merge")
    ifgs = of(nodes, "Interferogram")
    assert len(ifgs) == 3
    for _, (src,), p in ifgs.values():
        assert nodes[src][0] == "Read"
        assert p["subtractFlatEarthPhase"] == "true" and p["srpPolynomialDegree"] == "5"
        assert p["srpNumberPoints"] == "501" and p["orbitDegree"] == "3"
        assert p["includeCoherence"] == "true" and p["squarePixel"] == "true"
        assert (p["cohWinRg"], p["cohWinAz"]) == ("10", "3")
        assert p["subtractTopographicPhase"] == "true"
        assert p["demName"] == "External DEM" and p["externalDEMFile"] == "${dem}"
        assert float(p["externalDEMNoDataValue"]) == -32768
        assert p["externalDEMApplyEGM"] == "true" and p["tileExtensionPercent"] == "100"
        assert p["outputElevation"] == p["outputLatLon"] == "false"
    debursts = of(nodes, "TOPSAR-Deburst")
    assert [src for _, src, _ in debursts.values()] == [[i] for i in ifgs]
    writes = of(nodes, "Write")
    assert [src for _, src, _ in writes.values()] == [[d] for d in debursts]
    assert [p["file"] for _, _, p in writes.values()] == ["${out_IW1}", "${out_IW2}", "${out_IW3}"]


@pytest.mark.parametrize(
    "step, operator", [("goldstein", "GoldsteinPhaseFiltering"), ("multilook", "Multilook")]
)
def test_isslide_filter_and_looks_per_subswath(isslide, step, operator):
    nodes = parse(build_graph(step, isslide()))
    ops = of(nodes, operator)
    assert len(ops) == 3
    for (_, (src,), _p), sw in zip(ops.values(), ("IW1", "IW2", "IW3"), strict=True):
        assert nodes[src][2]["file"] == f"${{in_{sw}}}"
    if step == "goldstein":
        assert {
            (p["alpha"], p["FFTSizeString"], p["windowSizeString"]) for _, _, p in ops.values()
        } == {("1.0", "64", "3")}
    else:
        assert {(p["nRgLooks"], p["nAzLooks"]) for _, _, p in ops.values()} == {("8", "2")}


def test_isslide_geocoding_phase_by_bandmaths_nearest(isslide):
    graph = build_graph("terrain_correct", isslide())
    nodes = parse(graph)
    tcs = of(nodes, "Terrain-Correction")
    assert len(tcs) == 6 and len(of(nodes, "BandMaths")) == 3
    for k, sw in enumerate(("IW1", "IW2", "IW3")):
        read = f"Read({k + 1})" if k else "Read"
        assert nodes[read][2]["file"] == f"${{in_{sw}}}"
        coh_tc, ph_tc = (
            f"Terrain-Correction({2 * k + 1})" if k else "Terrain-Correction",
            f"Terrain-Correction({2 * k + 2})",
        )
        bm = f"BandMaths({k + 1})" if k else "BandMaths"
        assert nodes[coh_tc][1] == [read] and nodes[bm][1] == [read]
        assert nodes[ph_tc][1] == [bm]
        coh, ph = nodes[coh_tc][2], nodes[ph_tc][2]
        assert coh["imgResamplingMethod"] == "BILINEAR_INTERPOLATION"
        assert ph["imgResamplingMethod"] == "NEAREST_NEIGHBOUR"
        for p in (coh, ph):
            assert p["demResamplingMethod"] == "BILINEAR_INTERPOLATION"
            assert p["nodataValueAtSea"] == "true" and p["mapProjection"] == "WGS84(DD)"
            assert p["alignToStandardGrid"] == "true"  # deviation: one shared grid (docs)
            assert float(p["pixelSpacingInMeter"]) == 14.64
        assert coh["saveLayoverShadowMask"] == "true" and ph["saveLayoverShadowMask"] == "false"
        assert ph["outputComplex"] == "false"
    writes = {p["file"]: src for op, src, p in nodes.values() if op == "Write"}
    assert writes["${out_coh_IW2}"] == ["Terrain-Correction(3)"]
    assert writes["${out_phase_IW2}"] == ["Terrain-Correction(4)"]
    assert {"i_IW1", "q_IW1", "in_IW3", "out_phase_IW3"} <= graph.placeholders


def test_isslide_bandmaths_xml_is_nested(isslide):
    root = ET.fromstring(to_xml(build_graph("terrain_correct", isslide())))
    bm = next(n for n in root.findall("node") if n.findtext("operator") == "BandMaths")
    band = bm.find("parameters/targetBands/targetBand")
    assert band.findtext("name") == "Phase" and band.findtext("type") == "float32"
    assert band.findtext("expression") == "atan2(${q_IW1}, ${i_IW1})"
    assert float(band.findtext("noDataValue")) == 0.0
    assert bm.find("parameters/variables") is not None


def test_isslide_accepts_isolated_subswaths_and_refuses_fuse(settings, isslide):
    s = settings(snap={"recipe": "isslide"}, stack={"subswaths": ["IW1", "IW3"]})
    nodes = parse(build_graph("interferogram", s))
    files = [p["file"] for op, _, p in nodes.values() if op == "Write"]
    assert files == ["${out_IW1}", "${out_IW3}"]
    with pytest.raises(IsslideError, match="snap.fuse"):
        isslide(fuse=True)
