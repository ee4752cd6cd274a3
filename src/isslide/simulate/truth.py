"""Ground truth on the interferograms' WGS84 grid and the simulated annotators' shapefiles.

For an interferogram (reference i, secondary j):

* deformation: ``4 pi / wavelength * dR`` (rad, unwrapped), ``dR`` the line-of-sight range
  increase of the moving areas between the two dates (the interferogram convention of
  :mod:`isslide.geometry`);
* true coherence: ``(ginf + (g0 - ginf) exp(-dt / tau)) * SNR / (1 + SNR)`` of the land cover at
  each output pixel (0 in shadow), ``g0`` and ``ginf`` times the scene's coherence factor, with
  ``SNR`` the expected power over the thermal noise;
* footprint: inside the valid footprint of both SLCs;
* valid: inside the footprint, not layover/shadow and true coherence >=
  ``simulation.truth.coherence_min``;
* decoys: uint8 kind code (:mod:`.decoys`) where a decoy is present in the interferogram, 0
  elsewhere (and outside the footprint or on moving ground); GeoTIFF tag ``DECOY_KINDS``;
* annotations: the areas an expert would draw. An area is visible in the interval when its
  largest deformation phase reaches ``simulation.annotations.visibility_rad``, its surroundings
  (a ring of ``ring_m`` around it) have a mean true coherence >= ``coherence_min`` and at least
  ``min_valid_fraction`` of it is inside the footprint and free of layover/shadow. The annotator
  outlines the part of it whose motion shows: the smoothed contour of ``|deformation| =
  outline_rad`` inside the footprint, moved by a smooth random jitter (``jitter_m``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from scipy import ndimage

from ..errors import IsslideError
from ..files import write_bands, write_shapefile, write_vector
from . import areas as A
from . import decoys as D
from .grid import OutputGrid
from .scene import Scene, parse_dates

log = logging.getLogger("isslide.simulate")

ANNOTATION_CLASSES = ("Landslide", "Rock Glacier", "Unknown")
JITTER_SCALE_M = 60.0  # correlation length of the annotators' boundary jitter


def _annotator_draws(scene: Scene, area_id: int, ref: dt.date, sec: dt.date):
    from .fields import rng

    return rng(scene.seed, scene.stack, "annotator", area_id, ref.toordinal(), sec.toordinal())


def annotate(scene: Scene, og: OutputGrid, i: int, j: int) -> pd.DataFrame:
    """Annotated areas of the pair (i, j) after annotator noise: id, class, confidence."""
    ann = scene.sim["annotations"]
    stats = og.area_stats(i, j)
    out = []
    for row in stats.to_dict("records"):
        if not row["visible"]:
            continue
        gen = _annotator_draws(scene, row["id"], scene.dates[i], scene.dates[j])
        miss, unknown = gen.random(), gen.random()
        low = row["confidence"] == 1
        if low and miss < float(ann["miss_probability"]):
            continue
        cls = "Unknown" if low and unknown < float(ann["unknown_probability"]) else row["class"]
        out.append({"id": int(row["id"]), "class": cls, "confidence": int(row["confidence"])})
    return pd.DataFrame(out, columns=["id", "class", "confidence"])


def pairs_of_delay(dates: list[dt.date], delay: int) -> list[tuple[int, int]]:
    index = {d: k for k, d in enumerate(dates)}
    out = []
    for k, d in enumerate(dates):
        other = d + dt.timedelta(days=delay)
        if other in index:
            out.append((k, index[other]))
    return out


def annotation_frame(scene: Scene, og: OutputGrid, i: int, j: int) -> gpd.GeoDataFrame:
    """The annotators' polygons of pair (i, j), with repetitions over the pairs of its delay."""
    ann = scene.sim["annotations"]
    delay = scene.dates[j].toordinal() - scene.dates[i].toordinal()
    counts: dict[int, int] = {}
    this = None
    for a, b in pairs_of_delay(scene.dates, delay):
        df = annotate(scene, og, a, b)
        for area_id in df["id"]:
            counts[int(area_id)] = counts.get(int(area_id), 0) + 1
        if (a, b) == (i, j):
            this = df
    if this is None:
        this = annotate(scene, og, i, j)
    index = {int(v): k for k, v in enumerate(scene.areas["id"])} if scene.n_areas else {}
    defo = og.deformation(i, j)
    foot = og.footprint(i, j)
    geoms = []
    for area_id in this["id"]:
        gen = _annotator_draws(scene, int(area_id), scene.dates[i], scene.dates[j])
        gen.random(2)  # the miss / unknown draws of annotate()
        geoms.append(visible_outline(og, index[int(area_id)], defo, foot, ann, gen))
    frame = pd.DataFrame(
        {
            "id": this["id"].astype("int32"),
            "class": this["class"].astype(str),
            "confidence": this["confidence"].astype("int32"),
            "repetitions": np.array([counts.get(int(x), 0) for x in this["id"]], np.int32),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")


def visible_outline(og: OutputGrid, k: int, defo, footprint, ann: dict, gen):
    """The annotator's polygon of area k: where its motion shows in the interferogram.

    The pixels of ``|deformation| >= outline_rad`` inside the footprint, smoothed (Gaussian of
    ``smooth_m``, level 1/2), their border moved by a smooth random jitter (std ``jitter_m``,
    correlation ``JITTER_SCALE_M``: the signed distance to the border plus the jitter field),
    then traced and simplified to half a pixel.
    """
    from rasterio import features

    from .realism import pixel_size_m

    win, _, _ = og.area_profiles[k]
    ny, nx = pixel_size_m(og.transform, og.scene.geometry.lat0)
    smooth_m = float(ann["smooth_m"])
    jitter_m = float(ann["jitter_m"])
    pad = int(math.ceil((2.0 * smooth_m + 3.0 * jitter_m) / min(ny, nx))) + 2
    r0, r1 = max(win[0].start - pad, 0), min(win[0].stop + pad, og.height)
    c0, c1 = max(win[1].start - pad, 0), min(win[1].stop + pad, og.width)
    # this area's motion only (neighbours' motion is theirs)
    prof_win, prof, _ = og.area_profiles[k]
    mine = np.zeros((r1 - r0, c1 - c0), bool)
    sub = (
        slice(prof_win[0].start - r0, prof_win[0].stop - r0),
        slice(prof_win[1].start - c0, prof_win[1].stop - c0),
    )
    mine[sub] = prof > 0
    shows = mine & (np.abs(defo[r0:r1, c0:c1]) >= float(ann["outline_rad"]))
    shows &= footprint[r0:r1, c0:c1]
    inside = shows
    if smooth_m > 0:
        smoothed = ndimage.gaussian_filter(shows.astype(np.float64), (smooth_m / ny, smooth_m / nx))
        if (smoothed >= 0.5).any():
            inside = smoothed >= 0.5
    drawn = inside
    if jitter_m > 0:
        sd = np.where(
            inside,
            ndimage.distance_transform_edt(inside, sampling=(ny, nx)),
            -ndimage.distance_transform_edt(~inside, sampling=(ny, nx)),
        )
        noise = ndimage.gaussian_filter(
            gen.normal(0.0, 1.0, inside.shape), (JITTER_SCALE_M / ny, JITTER_SCALE_M / nx)
        )
        noise *= jitter_m / max(float(noise.std()), 1e-9)
        jittered = sd + noise > 0
        if jittered.any():
            drawn = jittered
    tr = og.transform
    from affine import Affine

    win_tr = tr @ Affine.translation(c0, r0)
    polys = [
        shapely.geometry.shape(geom)
        for geom, v in features.shapes(drawn.astype(np.uint8), mask=drawn, transform=win_tr)
        if v == 1
    ]
    poly = shapely.union_all(polys)
    return shapely.simplify(poly, 0.5 * abs(tr.a), preserve_topology=True)


def truth_areas_frame(scene: Scene, og: OutputGrid, i: int, j: int) -> gpd.GeoDataFrame:
    """The true moving areas of the pair: every area active in the interval, with statistics."""
    stats = og.area_stats(i, j)
    stats = stats[stats["active_days"] > 0].reset_index(drop=True)
    ar = scene.areas
    index = {int(v): k for k, v in enumerate(ar["id"])} if scene.n_areas else {}
    geoms = []
    for area_id in stats["id"]:
        geoms.append(A.outline(scene.lobes, index[int(area_id)]))
    return gpd.GeoDataFrame(stats, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")


def write_pair_truth(
    scene: Scene, spacing_deg: float, reference, secondary, outputs: dict, looks=(8, 2)
) -> dict:
    ref, sec = parse_dates([reference, secondary])
    if not scene.dates:  # a scene loaded without its planned dates: the revisit grid to sec
        scene.dates = scene.grid_until(sec)
    i, j = scene.date_index(ref), scene.date_index(sec)
    if j <= i:
        raise IsslideError(f"pair {reference}_{secondary}: the secondary must follow the reference")
    og = OutputGrid(scene, spacing_deg, looks)
    defo = og.deformation(i, j).astype(np.float32)
    coh = og.coherence(i, j)
    thr = float(scene.sim["truth"]["coherence_min"])
    foot = og.footprint(i, j)
    valid = (foot & (og.layover_shadow == 0) & (coh >= thr)).astype(np.uint8)
    tags = {"REFERENCE": ref.isoformat(), "SECONDARY": sec.isoformat()}
    codes, records = og.decoys(i, j, float(scene.sim["decoys"]["visible_rad"]))
    codes[~foot | (defo != 0)] = 0  # decoys are what a detector sees that is not motion
    if outputs.get("decoys"):
        write_bands(
            outputs["decoys"],
            codes,
            transform=og.transform,
            nodata=255,
            tags={**tags, "DECOY_KINDS": D.KINDS_TAG},
        )
    if outputs.get("deformation"):
        write_bands(
            outputs["deformation"],
            defo,
            transform=og.transform,
            nodata=-9999.0,
            tags={**tags, "UNITS": "radian"},
        )
    if outputs.get("valid"):
        write_bands(outputs["valid"], valid, transform=og.transform, nodata=255, tags=tags)
    if outputs.get("coherence"):
        write_bands(
            outputs["coherence"],
            coh.astype(np.float32),
            transform=og.transform,
            nodata=-9999.0,
            tags=tags,
        )
    if outputs.get("areas"):
        write_vector(
            outputs["areas"],
            truth_areas_frame(scene, og, i, j),
            "GPKG",
            layer="areas",
            append_layers=[("decoys", pair_decoys_frame(records, codes, og))],
        )
    frame = annotation_frame(scene, og, i, j)
    if outputs.get("annotation"):
        shp = outputs["annotation"]
        if isinstance(shp, (list, tuple)):
            shp = next(p for p in shp if str(p).endswith(".shp"))
        write_shapefile(shp, frame)
    return {
        "annotated": len(frame),
        "valid_fraction": float(valid.mean()),
        "decoy_pixels": {D.KINDS[c]: int((codes == c).sum()) for c in D.KINDS},
    }


def decoy_polygon(d: dict):
    """A decoy's outline: its shape, or for an atmospheric blob its 1-sigma ellipse."""
    if d["code"] == D.CODES["atmospheric_blob"]:
        return A.polygon(
            d["lon"], d["lat"], d["orient"], d["radius"] * d["elongation"], d["radius"],
            np.zeros((A.N_HARMONICS, 2)),
        )  # fmt: skip
    return A.polygon(d["lon"], d["lat"], d["orient"], d["a"], d["b"], d["harm"])


def pair_decoys_frame(records: list[dict], codes: np.ndarray, og: OutputGrid) -> gpd.GeoDataFrame:
    """The decoys of one interferogram: id, kind, code, date (per-date kinds), the largest
    |phase| it adds (rad), and its outline."""
    cols = ["id", "kind", "code", "date", "amplitude_rad"]
    rows = [{k: r[k] for k in cols} for r in records]
    geoms = [decoy_polygon(r["decoy"]) for r in records]
    return gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=cols), geometry=gpd.GeoSeries(geoms, crs="EPSG:4326")
    )


def simulate_annotations(params: dict, wildcards: dict, inputs: dict, outputs: dict) -> dict:
    """Snakemake entry: the annotators' shapefile of a pair and its truth rasters/polygons.

    ``params["dates"]`` (the planned acquisitions) give the repetitions over each delay.
    """
    scene = Scene.load(inputs["scene"], dates=params["dates"])
    scene.check_time_axis(params)
    ann_paths = outputs.get("annotation")
    if ann_paths is None:
        ann_paths = [p for k, p in outputs.items() if str(p).endswith(".shp")]
    outs = dict(outputs)
    outs["annotation"] = ann_paths
    ml = params["insar"]["multilook"]
    result = write_pair_truth(
        scene,
        float(params["insar"]["pixel_spacing_deg"]),
        wildcards["reference"],
        wildcards["secondary"],
        outs,
        looks=(int(ml["range"]), int(ml["azimuth"])),
    )
    log.info(
        "stack %s pair %s_%s: %d annotated areas, %.0f%% valid pixels, decoy pixels %s",
        scene.stack,
        wildcards["reference"],
        wildcards["secondary"],
        result["annotated"],
        100 * result["valid_fraction"],
        result["decoy_pixels"],
    )
    return result
