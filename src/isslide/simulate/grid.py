"""The interferograms' WGS84 grid of a simulated scene and the static truth on it.

Used by the scene writer (the layover/shadow truth) and by the per-pair truth
(:mod:`isslide.simulate.truth`); it depends on a :class:`~isslide.simulate.scene.Scene` only
through its attributes, so neither module imports the other's writer.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import ndimage

from ..geometry import layover_shadow, output_grid
from . import areas as A
from . import decoys as D
from .terrain import M_PER_DEG, gradients

if TYPE_CHECKING:
    from .scene import Scene

MIN_OUTLINE_PIXELS = 3  # an area whose motion shows on fewer output pixels is not drawn


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
    def coherence_factor(self) -> np.ndarray:
        q = self.scene.coherence_factor
        if q is None:
            return np.ones((self.height, self.width))
        return ndimage.map_coordinates(
            np.asarray(q, np.float64), self._coords, order=1, mode="nearest"
        )

    def footprint(self, i: int, j: int | None = None) -> np.ndarray:
        """True where the output pixel lies inside date i's (and date j's) valid footprint."""
        sc = self.scene
        out = np.ones((self.height, self.width), bool)
        if sc.footprint.get("kind", "none") == "none":
            return out
        cache = self.__dict__.setdefault("_footprints", {})
        for k in (i,) if j is None else (i, j):
            key = sc.dates[k]
            if key not in cache:
                line, sample = sc.geometry.ground_to_radar(
                    self.lon, self.lat, self.dem, sc.precise_orbit(k)
                )
                da, dr = sc.draws(key)["misregistration"]
                cache[key] = sc.footprint_valid(k, line + da, sample + dr)
            out &= cache[key]
        return out

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
        q = self.coherence_factor
        g0_p = np.minimum(g0[self.cover] * q, 0.99)
        ginf_p = np.minimum(ginf[self.cover] * q, g0_p)
        coh = (ginf_p + (g0_p - ginf_p) * decay[self.cover]) * self.snr_factor
        coh[self.layover_shadow == 2] = 0.0
        return coh

    @cached_property
    def area_profiles(self) -> list[tuple[tuple[slice, slice], np.ndarray, np.ndarray]]:
        """Per area: (window, motion profile for a unit centre velocity = the sum of its lobes'
        factor x profile, smallest normalised radius over its lobes) on the output grid."""
        sc = self.scene
        ar = sc.areas
        lobes = sc.lobes
        out = []
        tr = self.transform
        ring = float(sc.sim["annotations"]["ring_m"])
        for k in range(sc.n_areas):
            reach = (
                float(ar["reach"][k])
                if "reach" in ar
                else A.reach_m(lobes, k, ar["lon"][k], ar["lat"][k])
            )
            ext = reach + ring + 2 * abs(tr.a) * M_PER_DEG
            clon, clat = float(ar["lon"][k]), float(ar["lat"][k])
            dlon = ext / (M_PER_DEG * math.cos(math.radians(clat)))
            dlat = ext / M_PER_DEG
            c0 = max(int((clon - dlon - tr.c) / tr.a), 0)
            c1 = min(int((clon + dlon - tr.c) / tr.a) + 1, self.width)
            r0 = max(int((clat + dlat - tr.f) / tr.e), 0)
            r1 = min(int((clat - dlat - tr.f) / tr.e) + 1, self.height)
            win = (slice(r0, max(r1, r0)), slice(c0, max(c1, c0)))
            mine = np.flatnonzero(lobes["area"] == k)
            sub = {key: np.asarray(v)[mine] for key, v in lobes.items()}
            lon, lat = self.lon[win], self.lat[win]
            prof, rho = A.lobes_sum(lon.ravel(), lat.ravel(), sub, sub["factor"], with_rho=True)
            out.append((win, prof.reshape(lon.shape), rho.reshape(lon.shape)))
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

    def decoys(self, i: int, j: int, visible_rad: float) -> tuple[np.ndarray, list[dict]]:
        """uint8 kind codes of the decoys present in pair (i, j), and their records."""
        sc = self.scene
        lon, lat = self.lon.ravel(), self.lat.ravel()
        codes = np.zeros(lon.size, np.uint8)
        fixed_i = {d["id"]: d for d in sc.draws(sc.dates[i])["decoys"] if d["code"] == 1}
        records = []
        items = []
        for d in sc.draws(sc.dates[j])["decoys"]:
            if d["code"] == D.CODES["low_coherence_bubble"]:
                ref = fixed_i.get(d["id"])
                d = dict(d, amplitude=d["amplitude"] - (ref["amplitude"] if ref else 0.0))
                items.append((d, ""))
            else:
                items.append((d, sc.dates[j].isoformat()))
        items += [
            (d, sc.dates[i].isoformat())
            for d in sc.draws(sc.dates[i])["decoys"]
            if d["code"] != D.CODES["low_coherence_bubble"]
        ]
        for d, date in items:
            sel, phase = D.phase_of(d, lon, lat)
            hit = (
                sel[D.footprint_of(d, lon[sel], lat[sel], phase, visible_rad)] if sel.size else sel
            )
            hit = hit[codes[hit] == 0]  # where decoys overlap, the first listed keeps its pixels
            codes[hit] = d["code"]
            records.append(
                {
                    "id": int(d["id"]),
                    "kind": D.KINDS[d["code"]],
                    "code": int(d["code"]),
                    "date": date,
                    "amplitude_rad": float(np.abs(phase).max()) if phase.size else 0.0,
                    "decoy": d,
                }
            )
        return codes.reshape(self.height, self.width), records

    def area_stats(self, i: int, j: int) -> pd.DataFrame:
        """Per area and pair: deformation, coherence inside/around it, valid fraction, visibility."""
        sc = self.scene
        ann = sc.sim["annotations"]
        coh = self.coherence(i, j)
        defo = self.deformation(i, j)
        rate = self.fringe_rate(defo)
        foot = self.footprint(i, j)
        usable = (self.layover_shadow == 0) & foot
        days = sc.active_days(i, j) if sc.n_areas else np.zeros(0)
        rows = []
        for k, (win, _prof, rho) in enumerate(self.area_profiles):
            inside = rho < 1.0
            ring_rel = float(ann["ring_m"]) / max(
                math.sqrt(sc.areas["a"][k] * sc.areas["b"][k]), 1.0
            )
            ring = (rho >= 1.0) & (rho < 1.0 + ring_rel)
            c = coh[win]
            phase = float(np.abs(defo[win][inside]).max()) if inside.any() else 0.0
            n_in = int(inside.sum())
            shows = (np.abs(defo[win]) >= float(ann["outline_rad"])) & foot[win]
            rows.append(
                {
                    "id": int(sc.areas["id"][k]),
                    "class": A.CLASSES[int(sc.areas["class"][k])],
                    "zone": str(sc.areas["zone"][k]),
                    "active_days": float(days[k]),
                    "phase_max_rad": phase,
                    "displacement_max_mm": 1e3 * phase * sc.geometry.wavelength / (4 * math.pi),
                    "coherence_inside": float(c[inside].mean()) if n_in else 0.0,
                    "coherence_around": float(c[ring].mean()) if ring.any() else 0.0,
                    "valid_fraction": float(usable[win][inside].mean()) if n_in else 0.0,
                    "pixels": n_in,
                    "visible_pixels": int(shows.sum()),
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
                "visible_pixels",
                "fringe_rate_rad",
            ],
        )
        vis = (
            (df["phase_max_rad"] >= float(ann["visibility_rad"]))
            & (df["coherence_around"] >= float(ann["coherence_min"]))
            & (df["valid_fraction"] >= float(ann["min_valid_fraction"]))
            & (df["pixels"] > 0)
            & (df["visible_pixels"] >= MIN_OUTLINE_PIXELS)
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
