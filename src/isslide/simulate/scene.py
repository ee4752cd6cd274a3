"""The simulated scene: terrain, radar geometry, land cover, coherence texture, valid footprint,
moving areas, decoys, per-date draws.

Everything random is drawn here from the config seed (except the per-pixel fields: speckle,
turbulence and thermal noise, which each acquisition draws from its own seeded streams), and
stored in ``scene.npz`` so that every later job sees the same world.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from scipy import ndimage

from ..errors import IsslideError
from ..files import write_bands, write_json, write_npz, write_vector
from ..geometry import Orbit, SarGeometry, layover_shadow
from . import areas as A
from . import decoys as D
from . import footprint as F
from .fields import rng
from .grid import OutputGrid
from .terrain import (
    COVER,
    DISTURBED,
    FOREST,
    M_PER_DEG,
    MEADOW,
    ROCK,
    SNOW,
    WATER,
    coherence_texture,
    expand,
    gradients,
    grid,
    land_cover,
    procedural_dem,
    read_dem,
    scene_bounds,
)

log = logging.getLogger("isslide.simulate")

HEADINGS = {"descending": 190.0, "ascending": 350.0}
MAX_MISSES = 1500  # consecutive failed placements after which a scene counts as full
DEM_NODATA = -9999.0
# Preference of each land cover for hosting a monitored moving area (coherent cover is favoured,
# as in the inventories made from interferograms).
COVER_PREFERENCE = {ROCK: 1.0, MEADOW: 1.0, FOREST: 0.25, SNOW: 0.2, WATER: 0.0, DISTURBED: 0.0}


def parse_dates(dates) -> list[dt.date]:
    out = []
    for d in dates:
        d = str(d)
        out.append(
            dt.datetime.strptime(d, "%Y%m%d").date() if "-" not in d else dt.date.fromisoformat(d)
        )
    return out


@dataclass
class Scene:
    stack: str
    seed: int
    sim: dict
    geometry: SarGeometry
    bounds: tuple
    dem: np.ndarray
    dem_transform: Affine
    cover: np.ndarray
    start: dt.date  # dates.start: origin of the time axis and of the revisit grid
    revisit_days: int
    areas: dict = field(default_factory=dict)
    decoys: dict = field(default_factory=dict)
    lobes: dict = field(default_factory=dict)  # the areas' lobes (areas.LOBE_KEYS)
    coherence_factor: np.ndarray | None = None  # multiplies g0 and ginf, on the DEM grid
    footprint: dict = field(default_factory=lambda: dict(F.NONE))
    # The acquisitions in use (runtime only, never saved): an acquisition job sets the revisit
    # grid from ``start`` to its date, an annotation job the planned dates. Every per-date
    # quantity is drawn from a generator keyed by (seed, stack, date), never by position.
    dates: list = field(default_factory=list)
    _draws: dict = field(default_factory=dict, repr=False, compare=False)

    # -- convenience -----------------------------------------------------------------------
    @property
    def n_areas(self) -> int:
        return len(self.areas.get("id", []))

    def date_index(self, date) -> int:
        date = parse_dates([date])[0]
        try:
            return self.dates.index(date)
        except ValueError:
            span = f"{self.dates[0]}..{self.dates[-1]}" if self.dates else "none"
            raise IsslideError(
                f"date {date}: not one of the acquisitions in use for stack {self.stack} "
                f"({span}); check dates.start/end and revisit_days"
            ) from None

    def check_time_axis(self, params: dict) -> None:
        """The rule's dates.start / revisit_days must be the scene's time axis."""
        start = params.get("start")
        revisit = params.get("revisit_days")
        if start is not None and parse_dates([start])[0] != self.start:
            raise IsslideError(
                f"dates.start {start}: the scene of stack {self.stack} was simulated from "
                f"{self.start}; rerun simulate_scene"
            )
        if revisit is not None and int(revisit) != self.revisit_days:
            raise IsslideError(
                f"revisit_days {revisit}: the scene of stack {self.stack} was simulated with "
                f"{self.revisit_days}; rerun simulate_scene"
            )

    def grid_until(self, date) -> list[dt.date]:
        """The revisit grid from ``start`` up to ``date`` (which must lie on it)."""
        date = parse_dates([date])[0]
        days = (date - self.start).days
        if days < 0 or days % self.revisit_days:
            raise IsslideError(
                f"date {date}: not on the revisit grid of stack {self.stack} (every "
                f"{self.revisit_days} days from dates.start {self.start}); fix the date or "
                "dates.start/revisit_days"
            )
        step = dt.timedelta(days=self.revisit_days)
        return [self.start + k * step for k in range(days // self.revisit_days + 1)]

    def draws(self, date: dt.date) -> dict:
        """The per-date draws (orbit, orbit error, misregistration, gain, atmosphere, decoys)
        of one date, from the generator keyed by (seed, stack, date) alone."""
        key = date.toordinal()
        if key in self._draws:
            return self._draws[key]
        sim = self.sim
        gd = rng(self.seed, self.stack, "dates", key)
        ocfg = sim["orbit"]
        theta = math.radians(self.geometry.incidence_deg)
        bperp = gd.uniform(-ocfg["baseline_max_m"], ocfg["baseline_max_m"])
        drift = gd.normal(0.0, ocfg["baseline_drift"])
        orbit = np.array(
            [
                bperp * math.cos(theta),
                bperp * math.sin(theta),
                drift * math.cos(theta),
                drift * math.sin(theta),
            ]
        )
        error = np.array(
            [
                gd.normal(0.0, ocfg["error_cross_m"]),
                gd.normal(0.0, ocfg["error_vertical_m"]),
                gd.normal(0.0, ocfg["error_rate"]),
                gd.normal(0.0, ocfg["error_rate"]),
            ]
        )
        mis = gd.uniform(-1.0, 1.0, 2) * float(sim["radar"]["misregistration_px"])
        gain = float(sim["radar"]["calibration_gain"]) * gd.uniform(0.9, 1.1)
        strat = gd.normal(0.0, sim["aps"]["stratified_rad_per_km"])
        n_fixed = len(self.decoys.get("id", []))
        bubbles = gd.normal(0.0, float(sim["decoys"]["phase_rad"]), n_fixed)
        shift = F.date_shift(gd, sim["footprint"])
        per_date = D.draw_date(gd, self, key)
        out = {
            "orbit": orbit,
            "orbit_error": error,
            "misregistration": mis,
            "gain": gain,
            "aps_stratified": float(strat),
            "footprint_shift": shift,
            "decoys": D.fixed(self, bubbles) + per_date,
        }
        self._draws[key] = out
        return out

    def _stack_draws(self, key: str) -> np.ndarray:
        return np.array([self.draws(d)[key] for d in self.dates])

    @property
    def orbits(self) -> np.ndarray:
        """(n_dates, 4) precise Orbit fields of ``dates``."""
        return self._stack_draws("orbit").reshape(-1, 4)

    @property
    def misregistration(self) -> np.ndarray:
        """(n_dates, 2) azimuth, range misregistration (pixels) of ``dates``."""
        return self._stack_draws("misregistration").reshape(-1, 2)

    @property
    def aps_stratified(self) -> np.ndarray:
        return self._stack_draws("aps_stratified")

    def precise_orbit(self, i: int) -> Orbit:
        return Orbit(*map(float, self.draws(self.dates[i])["orbit"]))

    def annotated_orbit(self, i: int) -> Orbit:
        d = self.draws(self.dates[i])
        return Orbit(*map(float, d["orbit"] + d["orbit_error"]))

    def revisit_index(self, i: int) -> int:
        """Position of date i on the revisit grid from ``start`` (not in ``dates``)."""
        return (self.dates[i] - self.start).days // self.revisit_days

    def active_time(self, date: dt.date) -> np.ndarray:
        """Days of activity of each area from ``start`` to ``date`` (continuous time axis)."""
        t = float((date - self.start).days)
        ar = self.areas
        out = np.zeros(self.n_areas)
        for k in range(self.n_areas):
            if bool(ar["guaranteed"][k]):
                out[k] = max(t, 0.0)
            else:
                out[k] = A.active_time(
                    rng(self.seed, self.stack, "activity", int(ar["id"][k])),
                    t,
                    self.sim["areas"],
                    self.revisit_days,
                )
        return out

    def active_days(self, i: int, j: int) -> np.ndarray:
        """Days of activity of each area between acquisitions i < j."""
        return self.active_time(self.dates[j]) - self.active_time(self.dates[i])

    def displacement(self, i: int) -> np.ndarray:
        """Line-of-sight displacement (m, range increase) of each area's centre at date i."""
        return self.areas["velocity"] * self.active_time(self.dates[i]) / 6.0

    def lobe_weights(self, area_displacement: np.ndarray) -> np.ndarray:
        """Per lobe: its area's displacement times the lobe's velocity factor."""
        if not len(self.lobes.get("area", [])):
            return np.zeros(0)
        return np.asarray(area_displacement)[self.lobes["area"]] * self.lobes["factor"]

    def footprint_valid(self, i: int, lines, samples) -> np.ndarray:
        """True where radar (line, sample) of date i's SLC lies inside its valid footprint."""
        shift = self.draws(self.dates[i])["footprint_shift"]
        return F.valid(self.footprint, lines, samples, shift)

    @staticmethod
    def _shapes(table):
        """(centres, shape parameters) of a table of lobate/elliptic outlines."""
        centres = list(zip(table["lon"], table["lat"], strict=True))
        params = list(zip(table["orient"], table["a"], table["b"], table["harm"], strict=True))
        return centres, params

    def area_shapes(self):
        return self._shapes(self.areas)

    def surface_table(self, key: str) -> np.ndarray:
        return np.array([float(self.sim["surfaces"][c][key]) for c in COVER])

    # -- persistence ------------------------------------------------------------------------
    def save(self, path) -> None:
        meta = {
            "stack": self.stack,
            "seed": self.seed,
            "sim": self.sim,
            "geometry": self.geometry.to_dict(),
            "bounds": list(self.bounds),
            "start": self.start.isoformat(),
            "revisit_days": self.revisit_days,
            "dem_transform": list(self.dem_transform)[:6],
            "footprint": self.footprint,
        }
        arrays = dict(
            meta=np.array(json.dumps(meta)),
            dem=self.dem,
            cover=self.cover,
            coherence_factor=np.asarray(
                self.coherence_factor
                if self.coherence_factor is not None
                else np.ones_like(self.dem),
                np.float32,
            ),
        )
        for prefix, group in (
            ("area_", self.areas),
            ("decoy_", self.decoys),
            ("lobe_", self.lobes),
        ):
            for k, v in group.items():
                arrays[prefix + k] = np.asarray(v)
        write_npz(path, **arrays)

    @classmethod
    def load(cls, path, dates=None) -> Scene:
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IsslideError(
                f"{path}: cannot read the simulated scene ({exc}); rerun simulate_scene"
            ) from None
        with z:
            meta = json.loads(str(z["meta"]))
            if "start" not in meta or "footprint" not in meta or "coherence_factor" not in z:
                raise IsslideError(
                    f"{path}: a scene from an older simulator (no time origin, footprint or "
                    "coherence texture); rerun simulate_scene"
                )
            groups = {"area_": {}, "decoy_": {}, "lobe_": {}}
            for k in z.files:
                for prefix, g in groups.items():
                    if k.startswith(prefix):
                        g[k[len(prefix) :]] = z[k]
            return cls(
                stack=meta["stack"],
                seed=meta["seed"],
                sim=meta["sim"],
                geometry=SarGeometry.from_dict(meta["geometry"]),
                bounds=tuple(meta["bounds"]),
                dem=z["dem"],
                dem_transform=Affine(*meta["dem_transform"]),
                cover=z["cover"],
                start=dt.date.fromisoformat(meta["start"]),
                revisit_days=int(meta["revisit_days"]),
                areas=groups["area_"],
                decoys=groups["decoy_"],
                lobes=groups["lobe_"],
                coherence_factor=z["coherence_factor"],
                footprint=meta["footprint"],
                dates=parse_dates(dates or []),
            )


# -- building ---------------------------------------------------------------------------------
def _geometry(sim: dict, stack_cfg: dict, bounds, dem, transform) -> SarGeometry:
    radar = sim["radar"]
    heading = radar["heading_deg"]
    if heading is None:
        heading = HEADINGS[stack_cfg.get("pass", "descending")]
    lon0, lat0 = sim["center"]
    g = SarGeometry(
        lon0=float(lon0),
        lat0=float(lat0),
        heading_deg=float(heading),
        incidence_deg=float(radar["incidence_deg"]),
        azimuth_spacing=float(radar["azimuth_spacing_m"]),
        range_spacing=float(radar["range_spacing_m"]),
    )
    w, s, e, n = bounds
    rows, cols = np.indices(dem.shape)
    lon = transform.c + (cols + 0.5) * transform.a
    lat = transform.f + (rows + 0.5) * transform.e
    inside = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
    g = g.fit_grid(lon[inside], lat[inside], dem[inside].astype(np.float64), margin=8)
    d = g.to_dict()
    d["extra"] = {"bounds": [float(w), float(s), float(e), float(n)], "simulated": True}
    return SarGeometry.from_dict(d)


def _check_zones(stack: str, stack_cfg: dict, bounds) -> dict:
    w, s, e, n = bounds
    zones = {}
    zone_cfg = stack_cfg.get("zones") or {}
    for name in sorted(zone_cfg):  # by name: the world never depends on the config's key order
        z = zone_cfg[name]
        zw, zs, ze, zn = z["bbox"]
        cw, cs, ce, cn = max(zw, w), max(zs, s), min(ze, e), min(zn, n)
        if ce <= cw or cn <= cs:
            raise IsslideError(
                f"stacks.{stack}.zones.{name}.bbox {z['bbox']} lies outside the simulated scene "
                f"[{w:.4f}, {s:.4f}, {e:.4f}, {n:.4f}]; move the zone or simulation.center/size_km"
            )
        zones[name] = (cw, cs, ce, cn)
    return zones


def _box_size_m(box, lat0) -> tuple[float, float]:
    w, s, e, n = box
    return (e - w) * M_PER_DEG * math.cos(math.radians(lat0)), (n - s) * M_PER_DEG


def _check_sizes(sim: dict, stack: str, bounds, zones: dict) -> None:
    """Areas and decoys that cannot fit the scene or a zone: one line naming the key."""
    lat0 = float(sim["center"][1])
    acfg = sim["areas"]
    width, height = _box_size_m(expand(bounds, -150.0, lat0), lat0)
    smallest = float(acfg["size_m"][0])
    if acfg["count"] > 0 and smallest >= min(width, height):
        raise IsslideError(
            f"simulation.areas.size_m {acfg['size_m']}: the smallest moving area ({smallest:.0f} m) "
            f"does not fit the simulated scene ({width:.0f} m x {height:.0f} m inside its 150 m "
            "margin); lower simulation.areas.size_m or enlarge simulation.size_km"
        )
    if acfg["per_zone_min"] > 0 and acfg["count"] > 0:
        zone_min = min(max(smallest, 300.0), float(acfg["size_m"][1]))
        for name, box in zones.items():
            zw, zh = _box_size_m(box, lat0)
            # a guaranteed area's centre lies in the zone; half of it at least must fit there
            if zone_min / 2.0 > max(zw, zh):
                raise IsslideError(
                    f"stacks.{stack}.zones.{name}.bbox: {zw:.0f} m x {zh:.0f} m inside the scene, "
                    f"too small for the per_zone_min moving areas of at least {zone_min:.0f} m "
                    "(simulation.areas.size_m); enlarge the zone or lower simulation.areas.per_zone_min"
                )
    checks = [("simulation.decoys.size_m", sim["decoys"]["size_m"], sim["decoys"]["count"])]
    checks += [
        ("simulation.decoys.ramp_size_m", sim["decoys"]["ramp_size_m"], 1),
        ("simulation.decoys.step_size_m", sim["decoys"]["step_size_m"], 1),
    ]
    for key, size, count in checks:
        if count and float(size[0]) >= min(width, height):
            raise IsslideError(
                f"{key} {list(size)}: the smallest decoy ({float(size[0]):.0f} m) does not fit the "
                f"simulated scene ({width:.0f} m x {height:.0f} m); lower {key} or enlarge "
                "simulation.size_km"
            )


def _place(
    gen, n, cands_lon, cands_lat, weight, sizes, lobate_fn, scene_box, existing, gx, gy, margin_m,
    extra_lobes=0, aspect=None,
):  # fmt: skip
    """Draw up to n non-overlapping star shapes centred on weighted candidate cells.

    Each shape gets up to ``extra_lobes`` smaller lobes overlapping it (each with probability
    one half); the union must lie in ``scene_box`` and keep ``margin_m`` from ``existing``.
    Returns (centre lon, lat, orient, a, b, harm, lobate, k, lobes) with lobes a list of
    (lon, lat, orient, a, b, harm, factor, tilt), the main lobe first.
    """
    out = []
    if weight.sum() <= 0:
        return out
    cdf = np.cumsum(weight, dtype=np.float64)
    cdf /= cdf[-1]
    tries = 0
    misses = 0  # consecutive failed tries: the scene is full long before 400 tries per shape
    bounds = [q.bounds for q in existing]
    bounds_arr = [np.asarray(bounds).reshape(-1, 4)]
    buf = margin_m / M_PER_DEG
    while len(out) < n and tries < 400 * max(n, 1) and misses < MAX_MISSES:
        tries += 1
        misses += 1
        k = min(int(np.searchsorted(cdf, gen.random(), side="right")), len(cdf) - 1)
        clon, clat = float(cands_lon[k]), float(cands_lat[k])
        lobate = lobate_fn(k)
        length = math.exp(gen.uniform(math.log(sizes[0]), math.log(sizes[1])))
        if aspect is not None:
            asp = gen.uniform(*aspect)
        else:
            asp = gen.uniform(0.8, 1.6) if lobate else gen.uniform(1.5, 3.5)
        a, b = length / 2.0, length / 2.0 / asp
        downslope = math.atan2(-gy[k], -gx[k])  # radians from east
        orient = downslope + gen.normal(0.0, math.radians(12))
        harm = A.random_harmonics(gen, lobate)
        tilt = gen.uniform(-0.5, 0.5) if extra_lobes else 0.0
        lobes = [(clon, clat, orient, a, b, harm, 1.0, tilt)]
        for _ in range(extra_lobes):
            if gen.random() >= 0.5:
                continue
            along = gen.uniform(-0.6, 0.6) * a
            across = gen.uniform(-0.4, 0.4) * b
            scale = gen.uniform(0.35, 0.7)
            lo_orient = orient + gen.normal(0.0, math.radians(25))
            e = along * math.cos(orient) - across * math.sin(orient)
            nn = along * math.sin(orient) + across * math.cos(orient)
            llon = clon + e / (M_PER_DEG * math.cos(math.radians(clat)))
            llat = clat + nn / M_PER_DEG
            la = scale * a
            lb = min(scale * b * gen.uniform(0.8, 1.5), la)
            lobes.append(
                (
                    llon,
                    llat,
                    lo_orient,
                    la,
                    lb,
                    A.random_harmonics(gen, lobate),
                    gen.uniform(0.3, 1.5),
                    gen.uniform(-0.5, 0.5),
                )
            )
        polys = [A.polygon(*lb_[:6]) for lb_ in lobes]
        if not all(q.is_valid for q in polys):
            continue
        poly = shapely.union_all(polys) if len(polys) > 1 else polys[0]
        if not scene_box.contains(poly):
            continue
        if existing:
            bx = np.asarray(poly.bounds)
            eb = bounds_arr[0]
            near = np.flatnonzero(
                (eb[:, 0] - buf <= bx[2]) & (eb[:, 2] + buf >= bx[0])
                & (eb[:, 1] - buf <= bx[3]) & (eb[:, 3] + buf >= bx[1])
            )  # fmt: skip
            if any(poly.distance(existing[q]) < buf for q in near):
                continue
        existing.append(poly)
        bounds.append(poly.bounds)
        bounds_arr[0] = np.asarray(bounds)
        misses = 0
        out.append((clon, clat, orient, a, b, harm, lobate, k, lobes))
    return out


def _membership(lon, lat, lobes: dict, index) -> np.ndarray:
    """0..1 soft membership of points in the union of the given lobes (1 well inside)."""
    sub = {k: np.asarray(v)[index] for k, v in lobes.items()}
    _, rho = A.lobes_sum(lon, lat, sub, np.zeros(len(index)), with_rho=True)
    return np.clip((1.0 - rho) / 0.15, 0.0, 1.0)


def _radar_points(geometry: SarGeometry, bounds, dem, transform, n=120):
    """Radar (line, sample) of an even lon/lat grid of points over the scene box."""
    w, s, e, nn = bounds
    lon, lat = np.meshgrid(np.linspace(w, e, n), np.linspace(s, nn, n))
    col, row = ~transform @ (lon, lat)
    h = ndimage.map_coordinates(dem.astype(np.float64), [row - 0.5, col - 0.5], order=1)
    return geometry.ground_to_radar(lon, lat, h)


@dataclass
class _Ground:
    """The terrain of a scene on its DEM grid: what every placement stage reads."""

    bounds: tuple
    transform: Affine
    dem: np.ndarray
    geometry: SarGeometry
    cover: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    slope: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    layover_shadow: np.ndarray
    footprint: dict
    in_footprint: np.ndarray
    scene_box: object  # the inner box every shape lies in
    in_box: np.ndarray  # candidate centres inside it


def build_scene(params: dict, stack: str, dem_path: str | None = None) -> Scene:
    """Draw the whole world of one simulated stack from the config (no file written).

    Stages: terrain and geometry (:func:`_ground`), moving areas (:func:`_place_areas`, then
    :func:`_area_tables`), decoys (:func:`_place_decoys`), disturbed cover and coherence texture
    (:func:`_disturb`). Each stage draws from its own generator, keyed by (seed, stack, stage).
    """
    sim = params["simulation"]
    seed = int(params["seed"])
    stack_cfg = params["stack"]
    start = parse_dates([params["start"]])[0]
    revisit = int(params["revisit_days"])
    # Optional: the dates in use (simulation_params' annotation params carry them); the scene
    # itself never depends on them, so adding acquisitions leaves it unchanged.
    dates = parse_dates(params.get("dates") or [])
    bounds = scene_bounds(sim)
    zones = _check_zones(stack, stack_cfg, bounds)
    _check_sizes(sim, stack, bounds, zones)
    g = _ground(sim, seed, stack, stack_cfg, bounds, dem_path)
    gen = rng(seed, stack, "areas")
    existing: list = []
    placed, guaranteed = _place_areas(g, sim, stack, zones, gen, existing)
    areas, lobes = _area_tables(g, sim, placed, guaranteed, gen)
    decoys = _place_decoys(g, sim, seed, stack, existing)
    _check_room(sim, bounds, areas)
    cover, q = _disturb(g, sim, seed, stack, areas, lobes, decoys)
    return Scene(
        stack=stack,
        seed=seed,
        sim=sim,
        geometry=g.geometry,
        bounds=bounds,
        dem=g.dem,
        dem_transform=g.transform,
        cover=cover,
        start=start,
        revisit_days=revisit,
        areas=areas,
        decoys=decoys,
        lobes=lobes,
        coherence_factor=q.astype(np.float32),
        footprint=g.footprint,
        dates=dates,
    )


def _ground(sim, seed, stack, stack_cfg, bounds, dem_path) -> _Ground:
    """DEM (real or procedural), radar geometry, land cover, slopes, layover/shadow, footprint."""
    lat0 = float(sim["center"][1])
    dem_bounds = expand(bounds, sim["dem_margin_km"] * 1e3, lat0)
    spacing = float(sim["dem_spacing_deg"])
    transform, width, height = grid(dem_bounds, spacing, spacing)
    path = dem_path if dem_path is not None else sim["dem"]
    if path:
        dem = read_dem(str(path), dem_bounds, transform, width, height)
    else:
        dem = procedural_dem(sim, seed, stack, transform, width, height)
    geometry = _geometry(sim, stack_cfg, bounds, dem, transform)
    cover = land_cover(dem, transform, sim, seed, stack)
    gx, gy = gradients(dem, transform, lat0)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    rows, cols = np.indices(dem.shape)
    lon = transform.c + (cols + 0.5) * transform.a
    lat = transform.f + (rows + 0.5) * transform.e
    ls = layover_shadow(dem, transform, geometry)
    # valid footprint (swath / burst edges)
    fp_lines, fp_samples = _radar_points(geometry, bounds, dem, transform)
    footprint = F.draw(rng(seed, stack, "footprint"), sim["footprint"], fp_lines, fp_samples)
    in_fp = F.valid(footprint, *geometry.ground_to_radar(lon, lat, dem.astype(np.float64)))
    inner = expand(bounds, -150.0, lat0)
    iw, is_, ie, in_ = inner
    return _Ground(
        bounds=bounds,
        transform=transform,
        dem=dem,
        geometry=geometry,
        cover=cover,
        gx=gx,
        gy=gy,
        slope=slope,
        lon=lon,
        lat=lat,
        layover_shadow=ls,
        footprint=footprint,
        in_footprint=in_fp,
        scene_box=shapely.box(*inner),
        in_box=(lon > iw) & (lon < ie) & (lat > is_) & (lat < in_),
    )


def _place_areas(g: _Ground, sim, stack, zones, gen, existing) -> tuple[list, set]:
    """The moving areas' shapes: ``per_zone_min`` in each zone first (on coherent cover inside
    the footprint, so each zone sees motion), then the rest anywhere on free slopes."""
    acfg = sim["areas"]
    n_total = int(acfg["count"])
    lon, lat, cover = g.lon, g.lat, g.cover
    treeline = np.quantile(g.dem, sim["land_cover"]["treeline_quantile"])
    pref = np.vectorize(COVER_PREFERENCE.get)(cover).astype(float)
    slope_ok = np.clip((g.slope - 8.0) / 10.0, 0, 1) * np.clip((45.0 - g.slope) / 10.0, 0, 1)
    base_w = pref * slope_ok * (g.layover_shadow == 0) * g.in_box
    rg_frac = float(acfg["rock_glacier_fraction"])
    high = g.dem >= treeline
    # class decided per candidate: rock glaciers only above the treeline
    rg_draw = gen.random(g.dem.shape) < rg_frac

    def lobate_of(flat_index_map):
        return lambda k: bool(
            high.ravel()[flat_index_map[k]] and rg_draw.ravel()[flat_index_map[k]]
        )

    def place(n, weight, sizes):
        idx = np.flatnonzero(weight.ravel() > 0)
        return _place(
            gen,
            n,
            lon.ravel()[idx],
            lat.ravel()[idx],
            weight.ravel()[idx],
            sizes,
            lobate_of(idx),
            g.scene_box,
            existing,
            g.gx.ravel()[idx],
            g.gy.ravel()[idx],
            30.0,
            int(acfg["extra_lobes"]),
        )

    placed: list = []
    guaranteed: set = set()
    sizes = acfg["size_m"]
    for name, (zw, zs, ze, zn) in zones.items():
        inz = (lon >= zw) & (lon <= ze) & (lat >= zs) & (lat <= zn) & g.in_footprint
        w_z = base_w * inz * np.isin(cover, (ROCK, MEADOW))
        if w_z.sum() <= 0:
            w_z = base_w * inz
        want = min(int(acfg["per_zone_min"]), n_total - len(placed))
        got = place(want, w_z, (min(max(sizes[0], 300.0), sizes[1]), sizes[1]))
        if len(got) < want:
            raise IsslideError(
                f"stacks.{stack}.zones.{name}: only {len(got)} of the {want} moving areas of "
                "simulation.areas.per_zone_min fit on its free slopes inside the footprint; "
                "enlarge the zone, lower simulation.areas.per_zone_min or size_m"
            )
        for item in got:
            guaranteed.add(len(placed))
            placed.append((*item[:7], name, item[8]))
    got = place(n_total - len(placed), base_w, sizes)
    placed.extend((*item[:7], "", item[8]) for item in got)
    if len(placed) < n_total:
        raise IsslideError(
            f"simulation.areas.count {n_total}: only {len(placed)} moving areas fit apart on the "
            "free slopes of the scene; lower simulation.areas.count or size_m, or enlarge "
            "simulation.size_km"
        )
    return placed, guaranteed


AREA_KEYS = (
    "id",
    "class",
    "lon",
    "lat",
    "orient",
    "a",
    "b",
    "harm",
    "velocity",
    "zone",
    "guaranteed",
    "disturbed",
)


def _line_of_sight_sign(g: _Ground, clon, clat) -> float:
    """Sign of downslope motion projected on the line of sight (range increase positive)."""
    col, row = ~g.transform @ (clon, clat)
    r = min(max(int(row), 0), g.dem.shape[0] - 1)
    c = min(max(int(col), 0), g.dem.shape[1] - 1)
    look = g.geometry.look_vector(clon, clat, float(g.dem[r, c]))
    ge, gn = g.gx[r, c], g.gy[r, c]
    down = np.array([-ge, -gn, -(ge * ge + gn * gn)])
    norm = np.linalg.norm(down)
    proj = -float(down @ look) / norm if norm > 0 else 1.0
    return 1.0 if proj >= 0 else -1.0


def _area_tables(g: _Ground, sim, placed, guaranteed, gen) -> tuple[dict, dict]:
    """The areas' and lobes' columns: class, velocity (guaranteed areas visible and with
    resolvable fringes), disturbed flag, reach."""
    acfg = sim["areas"]
    vel_lo, vel_hi = acfg["velocity_mm_per_6d"]
    vis_rad = float(sim["annotations"]["visibility_rad"])
    max_grad = 0.08  # rad per m over 12 days: fringes stay resolvable on moderate slopes
    ar: dict = {k: [] for k in AREA_KEYS}
    lb: dict = {k: [] for k in A.LOBE_KEYS}
    for i, (clon, clat, orient, a, b, harm, lobate, zone, lobes) in enumerate(placed):
        is_g = i in guaranteed
        lo, hi = vel_lo, vel_hi
        if is_g:
            # visible (>= visibility_rad in 6 days) and resolvable fringes over 12 days
            k4pi = 4.0 * math.pi / g.geometry.wavelength
            visible_mm = 1e3 * 1.2 * vis_rad / k4pi
            resolvable_mm = 1e3 * max_grad * b / (1.5 * 2.0 * k4pi)
            lo = min(max(vel_lo, visible_mm), vel_hi)
            hi = max(min(vel_hi, resolvable_mm), lo)
        speed = math.exp(gen.uniform(math.log(lo), math.log(hi))) * 1e-3  # m per 6 days
        sign = _line_of_sight_sign(g, clon, clat)
        row = (
            i + 1,
            A.ROCK_GLACIER if lobate else A.LANDSLIDE,
            clon,
            clat,
            orient,
            a,
            b,
            harm,
            sign * speed,
            zone,
            is_g,
            bool(gen.random() < float(acfg["disturbed_fraction"])),
        )
        for key, v in zip(AREA_KEYS, row, strict=True):
            ar[key].append(v)
        for lobe in lobes:
            for key, v in zip(A.LOBE_KEYS, (i, *lobe), strict=True):
                lb[key].append(v)
    areas = {
        "id": np.array(ar["id"], np.int32),
        "class": np.array(ar["class"], np.int8),
        "lon": np.array(ar["lon"], float),
        "lat": np.array(ar["lat"], float),
        "orient": np.array(ar["orient"], float),
        "a": np.array(ar["a"], float),
        "b": np.array(ar["b"], float),
        "harm": np.array(ar["harm"], float).reshape(-1, A.N_HARMONICS, 2),
        "velocity": np.array(ar["velocity"], float),
        "zone": np.array(ar["zone"], dtype="U64"),
        "guaranteed": np.array(ar["guaranteed"], bool),
        "disturbed": np.array(ar["disturbed"], bool),
    }
    lobes_arr = {
        "area": np.array(lb["area"], np.int32),
        "harm": np.array(lb["harm"], float).reshape(-1, A.N_HARMONICS, 2),
        **{k: np.array(lb[k], float) for k in A.LOBE_KEYS if k not in ("area", "harm")},
    }
    areas["reach"] = np.array(
        [
            A.reach_m(lobes_arr, k, areas["lon"][k], areas["lat"][k])
            for k in range(len(areas["id"]))
        ],
        float,
    )
    return areas, lobes_arr


def _place_decoys(g: _Ground, sim, seed, stack, existing) -> dict:
    """Fixed decoys: low-coherence patches (with a bubble-like phase anomaly per date) apart
    from the moving areas."""
    dcfg = sim["decoys"]
    dgen = rng(seed, stack, "decoys")
    free_w = (
        (np.isin(g.cover, (ROCK, MEADOW, FOREST))).astype(float)
        * (g.layover_shadow == 0)
        * g.in_box
    )
    idx = np.flatnonzero(free_w.ravel() > 0)
    dplaced = _place(
        dgen,
        int(dcfg["count"]),
        g.lon.ravel()[idx],
        g.lat.ravel()[idx],
        free_w.ravel()[idx],
        dcfg["size_m"],
        lambda k: True,
        g.scene_box,
        existing,
        g.gx.ravel()[idx],
        g.gy.ravel()[idx],
        60.0,
        aspect=(1.0, 1.6),
    )
    if len(dplaced) < int(dcfg["count"]):
        raise IsslideError(
            f"simulation.decoys.count {dcfg['count']}: only {len(dplaced)} low-coherence decoys "
            "fit on the scene without overlapping a moving area; lower simulation.decoys.count "
            "or size_m, or simulation.areas.count"
        )
    c_lo, c_hi = dcfg["coherence_factor"]
    return {
        "id": np.arange(1, len(dplaced) + 1, dtype=np.int32),
        "lon": np.array([d[0] for d in dplaced], float),
        "lat": np.array([d[1] for d in dplaced], float),
        "orient": np.array([d[2] for d in dplaced], float),
        "a": np.array([d[3] for d in dplaced], float),
        "b": np.array([d[4] for d in dplaced], float),
        "harm": np.array([d[5] for d in dplaced], float).reshape(-1, A.N_HARMONICS, 2),
        "coherence": dgen.uniform(c_lo, c_hi, len(dplaced)),
    }


def _disturb(g: _Ground, sim, seed, stack, areas, lobes, decoys) -> tuple[np.ndarray, np.ndarray]:
    """Land cover of the disturbed areas and the coherence texture, lowered on the decoys."""
    cover = g.cover.copy()
    q = coherence_texture(g.dem, g.transform, sim, seed, stack).astype(np.float64)
    flat_lon, flat_lat = g.lon.ravel(), g.lat.ravel()
    for k in np.flatnonzero(areas["disturbed"]):
        m = _membership(flat_lon, flat_lat, lobes, np.flatnonzero(lobes["area"] == k))
        # disturbed ground decorrelates the coherent covers (forest and water already are)
        hit = (m >= 0.5) & np.isin(cover.ravel(), (ROCK, MEADOW, SNOW))
        cover.ravel()[hit] = DISTURBED
    for k in range(len(decoys["id"])):
        one = {
            "lon": decoys["lon"][k : k + 1],
            "lat": decoys["lat"][k : k + 1],
            "orient": decoys["orient"][k : k + 1],
            "a": decoys["a"][k : k + 1],
            "b": decoys["b"][k : k + 1],
            "harm": decoys["harm"][k : k + 1],
            "tilt": np.zeros(1),
        }
        m = _membership(flat_lon, flat_lat, one, np.array([0]))
        q.ravel()[:] *= 1.0 - (1.0 - decoys["coherence"][k]) * m
    return cover, q


def _check_room(sim: dict, bounds, areas: dict) -> None:
    """The per-date decoys need room away from the moving areas somewhere in the scene."""
    lat0 = float(sim["center"][1])
    w, s, e, n = bounds
    lon, lat = np.meshgrid(np.linspace(w, e, 40), np.linspace(s, n, 40))
    lon, lat = lon.ravel(), lat.ravel()
    if len(areas["id"]):
        de = (lon[:, None] - areas["lon"][None]) * M_PER_DEG * math.cos(math.radians(lat0))
        dn = (lat[:, None] - areas["lat"][None]) * M_PER_DEG
        clearance = (np.hypot(de, dn) - areas["reach"][None]).min(axis=1)
    else:
        clearance = np.full(lon.size, np.inf)
    aps, dc = sim["aps"], sim["decoys"]
    kinds = [
        (
            "simulation.aps.blob_radius_m",
            aps["blob_radius_m"][0] * dc["blob_elongation"][0],
            aps["blobs_per_date"],
        ),
        ("simulation.decoys.ramp_size_m", dc["ramp_size_m"][0], dc["ramps_per_date"]),
        ("simulation.decoys.step_size_m", dc["step_size_m"][0], dc["steps_per_date"]),
    ]
    for key, ext, rate in kinds:
        if rate > 0 and not np.any(clearance > ext + 60.0):
            raise IsslideError(
                f"{key}: every place for such a decoy overlaps a moving area; lower {key} or "
                "simulation.areas.count, or enlarge simulation.size_km"
            )


def areas_frame(scene: Scene) -> gpd.GeoDataFrame:
    """Every moving area: its outline (the union of its lobes) and attributes."""
    ar = scene.areas
    rows = []
    geoms = []
    for k in range(scene.n_areas):
        geoms.append(A.outline(scene.lobes, k))
        rows.append(
            {
                "id": int(ar["id"][k]),
                "class": A.CLASSES[int(ar["class"][k])],
                "zone": str(ar["zone"][k]),
                "length_m": 2.0 * float(ar["a"][k]),
                "width_m": 2.0 * float(ar["b"][k]),
                "lobes": int((scene.lobes["area"] == k).sum()),
                "velocity_mm_per_6d": 1e3 * float(ar["velocity"][k]),
                "always_active": int(bool(ar["guaranteed"][k])),
                "disturbed": int(bool(ar["disturbed"][k])),
            }
        )
    cols = [
        "id",
        "class",
        "zone",
        "length_m",
        "width_m",
        "lobes",
        "velocity_mm_per_6d",
        "always_active",
        "disturbed",
    ]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry=geoms, crs="EPSG:4326")


def decoys_frame(scene: Scene) -> gpd.GeoDataFrame:
    """The fixed decoys (kind ``low_coherence_bubble``; their bubble amplitude is drawn per
    date). The per-date decoys are listed in each acquisition's JSON ``truth.decoys`` and in
    each pair's ``truth/{delay}d/{ref}_{sec}_areas.gpkg`` layer ``decoys``."""
    dc = scene.decoys
    geoms = [
        A.polygon(
            dc["lon"][k], dc["lat"][k], dc["orient"][k], dc["a"][k], dc["b"][k], dc["harm"][k]
        )
        for k in range(len(dc["id"]))
    ]
    std = float(scene.sim["decoys"]["phase_rad"])
    code = D.CODES["low_coherence_bubble"]
    rows = [
        {
            "id": int(dc["id"][k]),
            "kind": D.KINDS[code],
            "code": code,
            "coherence_factor": float(dc["coherence"][k]),
            "phase_std_rad": std,
        }
        for k in range(len(dc["id"]))
    ]
    cols = ["id", "kind", "code", "coherence_factor", "phase_std_rad"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry=geoms, crs="EPSG:4326")


def write_scene(scene: Scene, outputs: dict, spacing_deg: float | None = None) -> None:
    write_bands(
        outputs["dem"],
        np.asarray(scene.dem, np.float32),
        transform=scene.dem_transform,
        nodata=DEM_NODATA,
        tags={"UNITS": "metre", "SOURCE": str(scene.sim["dem"] or "procedural relief")},
    )
    write_json(outputs["geometry"], scene.geometry.to_dict(), indent=1)
    frame = areas_frame(scene)
    write_vector(
        outputs["areas"],
        frame,
        "GPKG",
        layer="areas",
        append_layers=[("decoys", decoys_frame(scene))],
    )
    if outputs.get("layover_shadow") and spacing_deg:
        og = OutputGrid(scene, spacing_deg)
        write_bands(
            outputs["layover_shadow"], og.layover_shadow, transform=og.transform, nodata=255
        )
    scene.save(outputs["scene"])


def simulate_scene(params: dict, wildcards: dict, inputs: dict, outputs: dict) -> Scene:
    """Snakemake entry: build the scene of stack ``wildcards['sim_stack']`` and write it."""
    stack = wildcards.get("sim_stack") or wildcards.get("stack")
    scene = build_scene(params, stack, dem_path=inputs.get("source_dem"))
    write_scene(scene, outputs, float(params["insar"]["pixel_spacing_deg"]))
    log.info(
        "stack %s: scene %s, radar grid %d lines x %d samples, %d moving areas, %d fixed "
        "decoys, footprint %s, time axis from %s every %d days",
        stack,
        [round(b, 5) for b in scene.bounds],
        scene.geometry.lines,
        scene.geometry.samples,
        scene.n_areas,
        len(scene.decoys["id"]),
        F.describe(scene.footprint),
        scene.start,
        scene.revisit_days,
    )
    return scene
