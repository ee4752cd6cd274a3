"""Decoys: phase anomalies that are not ground motion, each of a kind with its own code.

A detector must not flag them (the paper's criterion: motion is a phase anomaly on *coherent*
ground that repeats with the delay). Kinds and their codes in the truth raster
``truth/{delay}d/{ref}_{sec}_decoys.tif`` (GeoTIFF tag ``DECOY_KINDS``):

1. ``low_coherence_bubble``: a fixed patch of low coherence (the surroundings' coherence times
   ``decoys.coherence_factor``) carrying a bubble-shaped phase anomaly whose amplitude is drawn
   anew each date (the paper's hard case, its Figure 3): it looks like a moving area but lies in
   low coherence and does not repeat;
2. ``atmospheric_blob``: a localised turbulent water-vapour anomaly of one date, at the scale of
   the areas, elongated along the relief (its long axis follows the contour line at its centre),
   on coherent ground (``aps.blobs_per_date``, ``aps.blob_rad``, ``aps.blob_radius_m``);
3. ``ramp_residue``: straight fringes over a patch of one date (a residual orbit / DEM ramp that
   processing left), ``decoys.ramps_per_date``;
4. ``phase_step``: a patch of one date offset by a constant phase with a sharp border (an
   unwrapping-like jump), ``decoys.steps_per_date``.

Fixed decoys (kind 1) are drawn with the scene; the others per date from the date's generator
(keyed by seed, stack and date), away from the moving areas and on coherent land cover. All
phases are deterministic functions of (lon, lat), so the SLCs (on the scene's DEM grid) and the
truth (on the output grid) see the same anomalies.
"""

from __future__ import annotations

import json
import math

import numpy as np

from . import areas as A
from .terrain import M_PER_DEG, MEADOW, ROCK

KINDS = {1: "low_coherence_bubble", 2: "atmospheric_blob", 3: "ramp_residue", 4: "phase_step"}
CODES = {name: code for code, name in KINDS.items()}
KINDS_TAG = json.dumps({str(k): v for k, v in KINDS.items()})
N_WAVES = 6  # plane waves of an atmospheric blob's turbulent modulation
EDGE = 0.08  # sharpness of a phase step's border (share of its radius)


def blob_id(date_ordinal: int, k: int, code: int) -> int:
    """Stable id of the k-th per-date decoy of a kind (never equal to a fixed decoy's id)."""
    return (date_ordinal * 10 + code) * 100 + k


def _local(lon, lat, clon, clat, orient):
    return A.local_xy(lon, lat, clon, clat, orient)


def _select(lon, lat, clon, clat, ext_m):
    dlon = ext_m / (M_PER_DEG * math.cos(math.radians(clat)))
    dlat = ext_m / M_PER_DEG
    return np.flatnonzero(
        (lon >= clon - dlon) & (lon <= clon + dlon) & (lat >= clat - dlat) & (lat <= clat + dlat)
    )


def blob_phase(lon, lat, b: dict) -> np.ndarray:
    """Phase (rad) of an atmospheric blob: an elongated Gaussian envelope times a turbulent
    modulation (a sum of random plane waves at scales between a third and one radius)."""
    u, v = _local(lon, lat, b["lon"], b["lat"], b["orient"])
    su, sv = b["radius"] * b["elongation"], b["radius"]
    env = np.exp(-0.5 * ((u / su) ** 2 + (v / sv) ** 2))
    waves = np.zeros_like(env)
    for kx, ky, ph in b["waves"]:
        waves += np.cos(kx * u + ky * v + ph)
    mod = 1.0 + 0.45 * waves / math.sqrt(0.5 * len(b["waves"]))
    return b["amplitude"] * env * np.clip(mod, 0.0, None)


def ramp_phase(lon, lat, r: dict) -> np.ndarray:
    """Straight fringes (``fringes`` cycles across the patch) tapered to 0 on its border."""
    rho = A.normalised_radius(lon, lat, r["lon"], r["lat"], r["orient"], r["a"], r["b"], r["harm"])
    x, _ = _local(lon, lat, r["lon"], r["lat"], r["orient"] + r["direction"])
    taper = np.sqrt(np.clip(1.0 - rho**2, 0.0, None))
    return 2.0 * math.pi * r["fringes"] * (x / (2.0 * r["a"])) * taper + r["offset"] * taper


def step_phase(lon, lat, s: dict) -> np.ndarray:
    """A constant offset inside the patch, falling to 0 over a thin border."""
    rho = A.normalised_radius(lon, lat, s["lon"], s["lat"], s["orient"], s["a"], s["b"], s["harm"])
    return s["offset"] * np.clip((1.0 - rho) / EDGE, 0.0, 1.0)


def bubble_phase(lon, lat, d: dict) -> np.ndarray:
    return d["amplitude"] * A.profile(
        lon, lat, d["lon"], d["lat"], d["orient"], d["a"], d["b"], d["harm"]
    )


def extent_m(decoy: dict) -> float:
    if decoy["code"] == CODES["atmospheric_blob"]:
        return 3.0 * decoy["radius"] * max(decoy["elongation"], 1.0)
    return A.extent_m(decoy["a"], decoy["b"], decoy["harm"])


PHASE = {
    CODES["low_coherence_bubble"]: bubble_phase,
    CODES["atmospheric_blob"]: blob_phase,
    CODES["ramp_residue"]: ramp_phase,
    CODES["phase_step"]: step_phase,
}


def phase_of(decoy: dict, lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """(indices, phase) of a decoy over the points ``lon``/``lat`` (1-D) it can reach."""
    sel = _select(lon, lat, decoy["lon"], decoy["lat"], extent_m(decoy))
    if not sel.size:
        return sel, np.zeros(0)
    return sel, PHASE[decoy["code"]](lon[sel], lat[sel], decoy)


def footprint_of(decoy: dict, lon, lat, phase: np.ndarray, visible_rad: float) -> np.ndarray:
    """Where the decoy counts as present in an interferogram (bool over its points)."""
    code = decoy["code"]
    if code in (CODES["low_coherence_bubble"], CODES["phase_step"]):
        d = decoy
        rho = A.normalised_radius(
            lon, lat, d["lon"], d["lat"], d["orient"], d["a"], d["b"], d["harm"]
        )
        return rho < 1.0
    return np.abs(phase) >= visible_rad


def total_phase(decoys: list[dict], lon, lat) -> np.ndarray:
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    out = np.zeros(lon.shape, np.float64)
    for d in decoys:
        sel, ph = phase_of(d, lon, lat)
        if sel.size:
            out[sel] += ph
    return out


# -- drawing ------------------------------------------------------------------------------
def _free(scene, clon, clat, ext_m, margin_m=60.0) -> bool:
    """True when a decoy of extent ``ext_m`` at (clon, clat) keeps clear of every moving area."""
    ar = scene.areas
    if not scene.n_areas:
        return True
    e = (ar["lon"] - clon) * M_PER_DEG * math.cos(math.radians(clat))
    n = (ar["lat"] - clat) * M_PER_DEG
    if "reach" in ar:
        reach = np.asarray(ar["reach"], float)
    else:
        reach = np.array(
            [A.extent_m(a, b, h) for a, b, h in zip(ar["a"], ar["b"], ar["harm"], strict=True)]
        )
    return bool(np.all(np.hypot(e, n) > reach + ext_m + margin_m))


def _coherent_at(scene, clon, clat) -> bool:
    tr = scene.dem_transform
    col, row = ~tr @ (clon, clat)
    r = min(max(int(row), 0), scene.cover.shape[0] - 1)
    c = min(max(int(col), 0), scene.cover.shape[1] - 1)
    return int(scene.cover[r, c]) in (ROCK, MEADOW)


def _contour_orientation(scene, clon, clat) -> float:
    """Direction (rad from east) of the contour line at a point (perpendicular to the gradient)."""
    from .terrain import gradients

    tr = scene.dem_transform
    col, row = ~tr @ (clon, clat)
    r0 = min(max(int(row) - 3, 0), scene.dem.shape[0] - 7)
    c0 = min(max(int(col) - 3, 0), scene.dem.shape[1] - 7)
    win = scene.dem[r0 : r0 + 7, c0 : c0 + 7]
    gx, gy = gradients(win, tr, scene.geometry.lat0)
    ge, gn = float(gx.mean()), float(gy.mean())
    if math.hypot(ge, gn) < 1e-6:
        return 0.0
    return math.atan2(gn, ge) + math.pi / 2.0


def _centre(gen, scene, ext_m, tries=100):
    """A random centre on coherent cover, inside the scene, away from the areas (or None)."""
    w, s, e, n = scene.bounds
    lat0 = scene.geometry.lat0
    mlon = ext_m / (M_PER_DEG * math.cos(math.radians(lat0)))
    mlat = ext_m / M_PER_DEG
    for _ in range(tries):
        clon = gen.uniform(w, e)
        clat = gen.uniform(s, n)
        ok = w + 0.3 * mlon < clon < e - 0.3 * mlon and s + 0.3 * mlat < clat < n - 0.3 * mlat
        if ok and _coherent_at(scene, clon, clat) and _free(scene, clon, clat, ext_m):
            return clon, clat
    return None


def draw_date(gen: np.random.Generator, scene, ordinal: int) -> list[dict]:
    """The per-date decoys (kinds 2-4) of one date, drawn from the date's generator ``gen``."""
    sim = scene.sim
    aps, dcfg = sim["aps"], sim["decoys"]
    out = []
    # atmospheric blobs
    nb = int(gen.poisson(aps["blobs_per_date"]))
    rad_lo, rad_hi = aps["blob_radius_m"]
    el_lo, el_hi = dcfg["blob_elongation"]
    for k in range(nb):
        radius = gen.uniform(rad_lo, rad_hi)
        elong = gen.uniform(el_lo, el_hi)
        amp = gen.choice([-1.0, 1.0]) * gen.uniform(0.5, 1.0) * aps["blob_rad"]
        kk = gen.uniform(1.0 / radius, 3.0 / radius, N_WAVES)
        ang = gen.uniform(0, 2 * math.pi, N_WAVES)
        waves = [
            (float(a * math.cos(t)), float(a * math.sin(t)), float(p))
            for a, t, p in zip(kk, ang, gen.uniform(0, 2 * math.pi, N_WAVES), strict=True)
        ]
        where = _centre(gen, scene, radius * elong)
        if where is None:
            continue
        orient = _contour_orientation(scene, *where)
        out.append(
            {
                "code": CODES["atmospheric_blob"],
                "id": blob_id(ordinal, k, CODES["atmospheric_blob"]),
                "lon": where[0],
                "lat": where[1],
                "orient": orient,
                "radius": float(radius),
                "elongation": float(elong),
                "amplitude": float(amp),
                "waves": waves,
            }
        )
    for code, rate, size, extra in (
        (CODES["ramp_residue"], dcfg["ramps_per_date"], dcfg["ramp_size_m"], "fringes"),
        (CODES["phase_step"], dcfg["steps_per_date"], dcfg["step_size_m"], "offset"),
    ):
        n = int(gen.poisson(rate))
        for k in range(n):
            length = math.exp(gen.uniform(math.log(size[0]), math.log(size[1])))
            aspect = gen.uniform(1.0, 2.0)
            a, b = length / 2.0, length / 2.0 / aspect
            harm = A.random_harmonics(gen, False)
            orient = gen.uniform(-math.pi, math.pi)
            sign = gen.choice([-1.0, 1.0])
            if extra == "fringes":
                lo, hi = dcfg["ramp_fringes"]
                values = {
                    "fringes": float(sign * gen.uniform(lo, hi)),
                    "direction": float(gen.uniform(-0.5, 0.5)),
                    "offset": float(gen.uniform(-math.pi, math.pi)),
                }
            else:
                lo, hi = dcfg["step_rad"]
                values = {"offset": float(sign * gen.uniform(lo, hi))}
            where = _centre(gen, scene, A.extent_m(a, b, harm))
            if where is None:
                continue
            out.append(
                {
                    "code": code,
                    "id": blob_id(ordinal, k, code),
                    "lon": where[0],
                    "lat": where[1],
                    "orient": float(orient),
                    "a": float(a),
                    "b": float(b),
                    "harm": harm,
                    **values,
                }
            )
    return out


def fixed(scene, amplitudes: np.ndarray) -> list[dict]:
    """The scene's fixed decoys (kind 1) with one date's bubble amplitudes."""
    dc = scene.decoys
    return [
        {
            "code": CODES["low_coherence_bubble"],
            "id": int(dc["id"][k]),
            "lon": float(dc["lon"][k]),
            "lat": float(dc["lat"][k]),
            "orient": float(dc["orient"][k]),
            "a": float(dc["a"][k]),
            "b": float(dc["b"][k]),
            "harm": dc["harm"][k],
            "amplitude": float(amplitudes[k]),
        }
        for k in range(len(dc.get("id", [])))
    ]


def to_json(decoy: dict) -> dict:
    """A per-date decoy as plain JSON (the acquisition metadata's truth)."""
    out = {"kind": KINDS[decoy["code"]]}
    for k, v in decoy.items():
        if k == "harm":
            v = np.asarray(v).tolist()
        elif isinstance(v, (np.floating, np.integer)):
            v = v.item()
        out[k] = v
    return out
