"""The valid footprint of the simulated SLCs: a swath or burst edge crossing the scene.

A real Sentinel-1 IW product holds zeros outside the valid samples of each burst: beyond the
near / far range edge of the swath (a line of constant slant range, running along the flight
direction: oblique on a north-up map), before the first or after the last burst (a line of
constant azimuth), and, where a subswath's bursts start later than its neighbour's, in a corner
between the two. Each burst's first and last valid samples differ by a few tens of samples, so a
range edge is a staircase with one step per burst. The scene draws one such footprint per stack
(``simulation.footprint``) so that a share of the scene in ``nodata_fraction`` lies outside it;
every date shifts it by a few samples / lines (its own draw); the SLC is 0 outside.

The footprint is a dict (stored in ``scene.npz`` ``meta``)::

    {"kind": "none" | "range" | "azimuth" | "corner",
     "range_side": -1 | 1,     # 1: valid samples are below the edge (far edge), -1: above it
     "range_edge": float,      # edge sample (first burst)
     "azimuth_side": -1 | 1,   # 1: valid lines are below the edge (end of data), -1: above it
     "azimuth_edge": float,    # edge line
     "burst_lines": int, "burst_offset": float, "burst_steps": [float, ...]}

``corner``: nodata where the pixel is beyond the range edge *and* beyond the azimuth edge (one
subswath starting later); ``range`` / ``azimuth``: beyond that one edge.
"""

from __future__ import annotations

import math

import numpy as np

NONE = {"kind": "none"}
MAX_BURSTS = 64


def draw(gen: np.random.Generator, cfg: dict, lines, samples) -> dict:
    """Draw a footprint leaving ``nodata_fraction`` of the scene points outside.

    ``lines``, ``samples``: radar coordinates of points spread evenly over the scene box.
    """
    lo, hi = (float(x) for x in cfg["nodata_fraction"])
    kinds = [k for k in ("range", "azimuth", "corner") if float(cfg["weights"][k]) > 0]
    if hi <= 0 or not kinds:
        return dict(NONE)
    frac = gen.uniform(lo, hi)
    w = np.array([float(cfg["weights"][k]) for k in kinds])
    kind = kinds[int(gen.choice(len(kinds), p=w / w.sum()))]
    lines = np.asarray(lines, float).ravel()
    samples = np.asarray(samples, float).ravel()
    r_side = int(gen.choice([-1, 1]))
    a_side = int(gen.choice([-1, 1]))
    burst = int(cfg["burst_lines"])
    step = float(cfg["burst_step_samples"])
    offset = gen.uniform(0.0, burst)
    steps = gen.uniform(-step, step, MAX_BURSTS)
    steps[0] = 0.0
    out = {
        "kind": kind,
        "range_side": r_side,
        "azimuth_side": a_side,
        "range_edge": float("nan"),
        "azimuth_edge": float("nan"),
        "burst_lines": burst,
        "burst_offset": float(offset),
        "burst_steps": [float(s) for s in np.cumsum(steps)],
    }
    if frac <= 0:
        return dict(NONE)

    def edge(values, share, side):
        # the edge beyond which ``share`` of the values lie (side 1: above it, -1: below it)
        q = 1.0 - share if side == 1 else share
        return float(np.quantile(values, min(max(q, 0.0), 1.0)))

    if kind == "range":
        out["range_edge"] = edge(samples - _staircase(out, lines), frac, r_side)
    elif kind == "azimuth":
        out["azimuth_edge"] = edge(lines, frac, a_side)
    else:
        # the corner beyond both edges: split the share between range and azimuth
        f_r = frac ** gen.uniform(0.3, 0.7)
        f_a = min(frac / f_r, 1.0)
        out["range_edge"] = edge(samples - _staircase(out, lines), f_r, r_side)
        out["azimuth_edge"] = edge(lines, f_a, a_side)
    return out


def _staircase(fp: dict, lines) -> np.ndarray:
    """Range-edge shift (samples) of the burst holding each line."""
    steps = np.asarray(fp["burst_steps"], float)
    k = (
        np.floor((np.asarray(lines, float) - fp["burst_offset"]) / fp["burst_lines"]).astype(int)
        + 1
    )
    return steps[np.clip(k, 0, len(steps) - 1)]


def valid(fp: dict, lines, samples, shift=(0.0, 0.0)) -> np.ndarray:
    """True where (line, sample) of an SLC lies inside its footprint.

    ``shift`` (lines, samples): the date's displacement of the footprint edges.
    """
    lines = np.asarray(lines, float)
    samples = np.asarray(samples, float)
    shape = np.broadcast_shapes(lines.shape, samples.shape)
    kind = fp.get("kind", "none")
    if kind == "none":
        return np.ones(shape, bool)
    da, dr = shift
    beyond_r = beyond_a = None
    if kind in ("range", "corner"):
        e = fp["range_edge"] + dr + _staircase(fp, lines)
        beyond_r = (samples > e) if fp["range_side"] == 1 else (samples < e)
    if kind in ("azimuth", "corner"):
        e = fp["azimuth_edge"] + da
        beyond_a = (lines > e) if fp["azimuth_side"] == 1 else (lines < e)
    if kind == "range":
        out = ~beyond_r
    elif kind == "azimuth":
        out = ~beyond_a
    else:
        out = ~(beyond_r & beyond_a)
    return np.broadcast_to(out, shape)


def date_shift(gen: np.random.Generator, cfg: dict) -> np.ndarray:
    """A date's (line, sample) shift of the footprint edges, uniform in +-jitter."""
    j = float(cfg["jitter_px"])
    return gen.uniform(-j, j, 2) * np.array([0.25, 1.0]) if j > 0 else np.zeros(2)


def describe(fp: dict) -> str:
    kind = fp.get("kind", "none")
    if kind == "none":
        return "no footprint edge"
    parts = []
    if not math.isnan(fp.get("range_edge", float("nan"))):
        parts.append(f"{'far' if fp['range_side'] == 1 else 'near'} range edge")
    if not math.isnan(fp.get("azimuth_edge", float("nan"))):
        parts.append(f"{'end' if fp['azimuth_side'] == 1 else 'start'} of the bursts")
    return f"{kind}: " + " + ".join(parts)
