"""Ground truth on the interferograms' WGS84 grid and the simulated annotators' shapefiles.

For an interferogram (reference i, secondary j):

* deformation: ``4 pi / wavelength * dR`` (rad, unwrapped), ``dR`` the line-of-sight range
  increase of the moving areas between the two dates (the interferogram convention of
  :mod:`isslide.geometry`);
* true coherence: ``(ginf + (g0 - ginf) exp(-dt / tau)) * SNR / (1 + SNR)`` of the land cover at
  each output pixel (0 in shadow), with ``SNR`` the expected power over the thermal noise;
* valid: not layover/shadow and true coherence >= ``simulation.truth.coherence_min``;
* decoys: uint8 decoy-kind code per pixel (0: none), the kind names in the GeoTIFF tag
  ``DECOY_KINDS`` (JSON ``{"1": "low_coherence_spot"}``); today's one kind is the simulator's
  low-coherence patches with a per-date phase anomaly (the ``disturbed`` land cover);
* annotations: the areas an expert would draw. An area is visible in the interval when its
  largest deformation phase reaches ``simulation.annotations.visibility_rad``, its surroundings
  (a ring of ``ring_m`` around it) have a mean true coherence >= ``coherence_min`` and at least
  ``min_valid_fraction`` of it is free of layover/shadow.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import ndimage

from ..errors import IsslideError
from ..geometry import layover_shadow, output_grid
from . import areas as A
from .io import write_raster, write_shapefile, write_vector
from .scene import Scene, parse_dates
from .terrain import DISTURBED, M_PER_DEG, gradients

log = logging.getLogger("isslide.simulate")

ANNOTATION_CLASSES = ("Landslide", "Rock Glacier", "Unknown")
DECOY_KINDS = {1: "low_coherence_spot"}  # decoy raster codes (tag DECOY_KINDS)


class OutputGrid:
    """The interferograms' WGS84 grid of a scene and the static truth on it."""

    def __init__(self, scene: Scene, spacing_deg: float, looks: tuple[int, int] = (8, 2)):
        self.scene = scene
        self.looks = looks  # (range, azimuth) multilook factors of the interferograms
        w, s, e, n = scene.geometry.extra["bounds"]
        self.transform, self.width, self.height = output_grid(w, s, e, n, spacing_deg)
        rows, cols = np.indices((self.height, self.width))
        tr = self.transform
        self.lon = tr.c + (cols + 0.5) * tr.a
        self.lat = tr.f + (rows + 0.5) * tr.e
        dtr = scene.dem_transform
        self._coords = [(self.lat - dtr.f) / dtr.e - 0.5, (self.lon - dtr.c) / dtr.a - 0.5]

    @cached_property
    def dem(self) -> np.ndarray:
        return ndimage.map_coordinates(
            self.scene.dem.astype(np.float64), self._coords, order=1, mode="nearest"
        )

    @cached_property
    def cover(self) -> np.ndarray:
        return ndimage.map_coordinates(self.scene.cover, self._coords, order=0, mode="nearest")

    @cached_property
    def layover_shadow(self) -> np.ndarray:
        return layover_shadow(self.dem, self.transform, self.scene.geometry)

    @cached_property
    def incidence(self) -> np.ndarray:
        return self.scene.geometry.incidence(self.lon, self.lat, self.dem)

    @cached_property
    def foreshortening(self) -> np.ndarray:
        """Ground metres per flat-terrain metre in range (> 1 on slopes facing the sensor)."""
        g = self.scene.geometry
        gx, gy = gradients(self.dem, self.transform, g.lat0)
        r = g.right
        t = gx * r[0] + gy * r[1]  # tan of the slope facing the sensor
        inc = self.incidence
        return np.sin(inc) / np.clip(np.sin(inc) - np.cos(inc) * t, 0.05, None)  # capped in layover

    def fringe_rate(self, deformation: np.ndarray) -> np.ndarray:
        """Deformation-phase change (rad) across one multilooked radar pixel, at each pixel."""
        g = self.scene.geometry
        pe, pn = gradients(deformation, self.transform, g.lat0)
        r, a = g.right, g.along
        ground_range_px = (
            self.looks[0] * g.range_spacing / np.sin(self.incidence) * self.foreshortening
        )
        return np.hypot(
            (pe * r[0] + pn * r[1]) * ground_range_px,
            (pe * a[0] + pn * a[1]) * self.looks[1] * g.azimuth_spacing,
        )

    @cached_property
    def snr_factor(self) -> np.ndarray:
        """SNR / (1 + SNR): coherence loss from thermal noise at each pixel."""
        sc = self.scene
        g = sc.geometry
        gx, gy = gradients(self.dem, self.transform, g.lat0)
        look = g.look_vector(self.lon, self.lat, self.dem)
        nrm = np.sqrt(1.0 + gx * gx + gy * gy)
        cos_loc = np.clip((-gx * look[..., 0] - gy * look[..., 1] + look[..., 2]) / nrm, 0.0, None)
        # ground area per radar cell relative to flat terrain (foreshortening)
        fore = self.foreshortening
        power = 10 ** (sc.surface_table("gamma0_db") / 10.0)[self.cover] * cos_loc * nrm * fore
        nesz = 10 ** (float(sc.sim["radar"]["nesz_db"]) / 10.0)
        snr = power / nesz
        return snr / (1.0 + snr)

    def coherence(self, i: int, j: int) -> np.ndarray:
        """True coherence of the pair of acquisitions (i, j) at each output pixel."""
        sc = self.scene
        dt_days = abs(sc.dates[j].toordinal() - sc.dates[i].toordinal())
        g0 = sc.surface_table("g0")
        ginf = np.minimum(sc.surface_table("ginf"), g0)
        tau = sc.surface_table("tau_days")
        with np.errstate(divide="ignore", over="ignore"):
            decay = np.where(tau > 0, np.exp(-dt_days / np.maximum(tau, 1e-9)), 0.0)
        gamma = ginf + (g0 - ginf) * decay
        coh = gamma[self.cover] * self.snr_factor
        coh[self.layover_shadow == 2] = 0.0
        return coh

    @cached_property
    def area_profiles(self) -> list[tuple[tuple[slice, slice], np.ndarray, np.ndarray]]:
        """Per area: (window, bubble profile, normalised radius) on the output grid."""
        sc = self.scene
        ar = sc.areas
        out = []
        tr = self.transform
        for k in range(sc.n_areas):
            harm = ar["harm"][k]
            ring = float(sc.sim["annotations"]["ring_m"])
            ext = A.extent_m(ar["a"][k], ar["b"][k], harm) + ring + 2 * abs(tr.a) * M_PER_DEG
            clon, clat = float(ar["lon"][k]), float(ar["lat"][k])
            dlon = ext / (M_PER_DEG * math.cos(math.radians(clat)))
            dlat = ext / M_PER_DEG
            c0 = max(int((clon - dlon - tr.c) / tr.a), 0)
            c1 = min(int((clon + dlon - tr.c) / tr.a) + 1, self.width)
            r0 = max(int((clat + dlat - tr.f) / tr.e), 0)
            r1 = min(int((clat - dlat - tr.f) / tr.e) + 1, self.height)
            win = (slice(r0, max(r1, r0)), slice(c0, max(c1, c0)))
            rho = A.normalised_radius(
                self.lon[win],
                self.lat[win],
                clon,
                clat,
                ar["orient"][k],
                ar["a"][k],
                ar["b"][k],
                harm,
            )
            prof = np.clip(1.0 - rho**2, 0.0, None) ** A.PROFILE_EXPONENT
            out.append((win, prof, rho))
        return out

    def deformation(self, i: int, j: int) -> np.ndarray:
        """True unwrapped LOS deformation phase (rad) between acquisitions i and j."""
        sc = self.scene
        out = np.zeros((self.height, self.width), np.float64)
        if not sc.n_areas:
            return out
        disp = sc.displacement(j) - sc.displacement(i)
        for (win, prof, _), d in zip(self.area_profiles, disp, strict=True):
            if d != 0:
                out[win] += d * prof
        return 4.0 * math.pi / sc.geometry.wavelength * out

    def area_stats(self, i: int, j: int) -> pd.DataFrame:
        """Per area and pair: deformation, coherence inside/around it, valid fraction, visibility."""
        sc = self.scene
        ann = sc.sim["annotations"]
        coh = self.coherence(i, j)
        rate = self.fringe_rate(self.deformation(i, j))
        ls = self.layover_shadow
        lam = sc.geometry.wavelength
        days = sc.active_days(i, j) if sc.n_areas else np.zeros(0)
        rows = []
        for k, (win, _prof, rho) in enumerate(self.area_profiles):
            inside = rho < 1.0
            ring_rel = float(ann["ring_m"]) / max(
                math.sqrt(sc.areas["a"][k] * sc.areas["b"][k]), 1.0
            )
            ring = (rho >= 1.0) & (rho < 1.0 + ring_rel)
            c = coh[win]
            phase = 4 * math.pi / lam * abs(float(sc.areas["velocity"][k])) * days[k] / 6.0
            n_in = int(inside.sum())
            rows.append(
                {
                    "id": int(sc.areas["id"][k]),
                    "class": A.CLASSES[int(sc.areas["class"][k])],
                    "zone": str(sc.areas["zone"][k]),
                    "active_days": float(days[k]),
                    "phase_max_rad": phase,
                    "displacement_max_mm": 1e3
                    * abs(float(sc.areas["velocity"][k]))
                    * days[k]
                    / 6.0,
                    "coherence_inside": float(c[inside].mean()) if n_in else 0.0,
                    "coherence_around": float(c[ring].mean()) if ring.any() else 0.0,
                    "valid_fraction": float((ls[win][inside] == 0).mean()) if n_in else 0.0,
                    "pixels": n_in,
                    "fringe_rate_rad": float(np.percentile(rate[win][inside], 90)) if n_in else 0.0,
                }
            )
        df = pd.DataFrame(
            rows,
            columns=[
                "id",
                "class",
                "zone",
                "active_days",
                "phase_max_rad",
                "displacement_max_mm",
                "coherence_inside",
                "coherence_around",
                "valid_fraction",
                "pixels",
                "fringe_rate_rad",
            ],
        )
        vis = (
            (df["phase_max_rad"] >= float(ann["visibility_rad"]))
            & (df["coherence_around"] >= float(ann["coherence_min"]))
            & (df["valid_fraction"] >= float(ann["min_valid_fraction"]))
            & (df["pixels"] > 0)
            & (df["fringe_rate_rad"] <= float(ann["max_fringe_rate_rad"]))
        )
        conf = np.where(
            (df["phase_max_rad"] >= 2 * math.pi)
            & (df["coherence_around"] >= float(ann["coherence_min"]) + 0.1),
            3,
            np.where(df["phase_max_rad"] >= 2.0 * float(ann["visibility_rad"]), 2, 1),
        )
        df["visible"] = vis.astype(int)
        df["confidence"] = np.where(vis, conf, 0).astype(int)
        return df


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
    geoms = []
    jitter_m = float(ann["jitter_m"])
    for area_id in this["id"]:
        k = index[int(area_id)]
        ar = scene.areas
        jitter = None
        if jitter_m > 0:
            gen = _annotator_draws(scene, int(area_id), scene.dates[i], scene.dates[j])
            gen.random(2)
            raw = gen.normal(0.0, 1.0, 72)
            smooth = ndimage.gaussian_filter1d(raw, 3.0, mode="wrap")
            jitter = jitter_m * smooth / max(float(smooth.std()), 1e-9)
        geoms.append(
            A.polygon(
                ar["lon"][k],
                ar["lat"][k],
                ar["orient"][k],
                ar["a"][k],
                ar["b"][k],
                ar["harm"][k],
                jitter=jitter,
            )
        )
    frame = pd.DataFrame(
        {
            "id": this["id"].astype("int32"),
            "class": this["class"].astype(str),
            "confidence": this["confidence"].astype("int32"),
            "repetitions": np.array([counts.get(int(x), 0) for x in this["id"]], np.int32),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")


def truth_areas_frame(scene: Scene, og: OutputGrid, i: int, j: int) -> gpd.GeoDataFrame:
    """The true moving areas of the pair: every area active in the interval, with statistics."""
    stats = og.area_stats(i, j)
    stats = stats[stats["active_days"] > 0].reset_index(drop=True)
    ar = scene.areas
    index = {int(v): k for k, v in enumerate(ar["id"])} if scene.n_areas else {}
    geoms = []
    for area_id in stats["id"]:
        k = index[int(area_id)]
        geoms.append(
            A.polygon(
                ar["lon"][k], ar["lat"][k], ar["orient"][k], ar["a"][k], ar["b"][k], ar["harm"][k]
            )
        )
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
    valid = ((og.layover_shadow == 0) & (coh >= thr)).astype(np.uint8)
    tags = {"REFERENCE": ref.isoformat(), "SECONDARY": sec.isoformat()}
    if outputs.get("deformation"):
        write_raster(
            outputs["deformation"],
            defo,
            transform=og.transform,
            nodata=-9999.0,
            tags={**tags, "UNITS": "radian"},
        )
    if outputs.get("valid"):
        write_raster(outputs["valid"], valid, transform=og.transform, nodata=255, tags=tags)
    if outputs.get("coherence"):
        write_raster(
            outputs["coherence"],
            coh.astype(np.float32),
            transform=og.transform,
            nodata=-9999.0,
            tags=tags,
        )
    if outputs.get("decoys"):
        decoys = (og.cover == DISTURBED).astype(np.uint8)  # kind 1: low_coherence_spot
        write_raster(
            outputs["decoys"],
            decoys,
            transform=og.transform,
            nodata=255,
            tags={**tags, "DECOY_KINDS": json.dumps({str(k): v for k, v in DECOY_KINDS.items()})},
        )
    if outputs.get("areas"):
        write_vector(outputs["areas"], truth_areas_frame(scene, og, i, j), "GPKG", layer="areas")
    frame = annotation_frame(scene, og, i, j)
    if outputs.get("annotation"):
        shp = outputs["annotation"]
        if isinstance(shp, (list, tuple)):
            shp = next(p for p in shp if str(p).endswith(".shp"))
        write_shapefile(shp, frame)
    return {"annotated": len(frame), "valid_fraction": float(valid.mean())}


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
        "stack %s pair %s_%s: %d annotated areas, %.0f%% valid pixels",
        scene.stack,
        wildcards["reference"],
        wildcards["secondary"],
        result["annotated"],
        100 * result["valid_fraction"],
    )
    return result
