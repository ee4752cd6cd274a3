"""Realism report: the default run's simulated interferograms against a real Sentinel-1 pair.

    python benchmarks/bench_realism.py      # writes benchmarks/results_realism.json and
                                            # docs/figures/realism.png, layover_blocks.png

Simulates the default config's first simulated stack (``config/config.yaml`` + schema defaults)
with the library entries, runs the eight embedded steps on each of its 12-day pairs, and
computes the statistics of ``isslide.simulate.realism`` for them and for the real 12-day pair
``resources/real/s1_ifg_20230904_20230916`` (see its PROVENANCE.md):

* valid fraction (pixels with data), coherence quartiles, texture anisotropy (1/e correlation
  lengths north-south / east-west of the coherence residual, in metres) over the whole scene
  and on gentle slopes (< 15 degrees), phase roughness (std of neighbour differences) where the
  coherence is > 0.6, residue fraction, phase autocorrelation length;
* on the first pair processed again with Goldstein switched off: the phase noise of stable
  ground by true coherence against the Cramer-Rao bound of the 8 x 2 looks (the true phase is
  the simulator's deformation + atmosphere + decoys, sampled on the output grid);
* the same pair processed as the real pair was (3 x 10 boxcar phase, 1 x 4 looks, no Goldstein,
  the real pair's pixel size): its phase roughness compares like with like;
* per pair: decoy pixels per kind, and the annotation ceiling: the true motion
  (``|deformation| >= annotations.outline_rad``) scored against the rasterised annotations.

``--measure DIR`` measures an existing work folder of the same layout instead (for instance
one made by an older simulator: the Goldstein-off and real-like parts are skipped when their
products are missing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from isslide.config import load_config  # noqa: E402
from isslide.insar import STEPS, run_step  # noqa: E402
from isslide.simulate import realism as R  # noqa: E402
from isslide.simulate.terrain import M_PER_DEG  # noqa: E402

REAL = REPO / "resources/real/s1_ifg_20230904_20230916"
FIGURES = REPO / "docs/figures"
DELAY = 12
GENTLE_DEG = 15.0
LOOKS = 16  # 8 x 2
REAL_SPACING_M = (17.1, 14.6)  # the real pair's pixel, north-south x east-west (m)


def read(path):
    with rasterio.open(path) as ds:
        return ds.read(1).astype(np.float64), ds.nodata, ds.transform, ds.tags()


# -- the default run's stack ------------------------------------------------------------------
def default_config():
    return load_config(REPO / "config/config.yaml")


def simulate(cfg, root: Path, stack: str):
    """Scene, acquisitions and truth of the 12-day pairs (library entries, as the rules)."""
    from isslide.plan import plan_stacks
    from isslide.simulate import (
        simulate_acquisition,
        simulate_annotations,
        simulate_scene,
    )
    from isslide.workflow import simulation_params

    p = simulation_params(cfg, stack)
    st = root / "stack"
    outs = {
        "dem": st / "dem.tif",
        "geometry": st / "geometry.json",
        "scene": st / "scene.npz",
        "areas": st / "truth/areas.gpkg",
        "layover_shadow": st / "truth/layover_shadow.tif",
    }
    dem = cfg["simulation"]["dem"]
    t0 = time.perf_counter()
    simulate_scene(p, {"sim_stack": stack}, {"source_dem": str(REPO / dem)} if dem else {}, outs)
    timing = {"scene_s": time.perf_counter() - t0, "acquisitions_s": 0.0, "truth_s": 0.0}
    pairs = [pp.wildcards for pp in plan_stacks(cfg)[stack].pairs if int(pp.delay) == DELAY]
    for w in pairs:
        for d in (w["reference"], w["secondary"]):
            if not (st / f"slc/{d}.tif").exists():
                t0 = time.perf_counter()
                simulate_acquisition(
                    p,
                    {"sim_stack": stack, "date": d},
                    {"scene": outs["scene"]},
                    {"slc": st / f"slc/{d}.tif", "metadata": st / f"slc/{d}.json"},
                )
                timing["acquisitions_s"] += time.perf_counter() - t0
        stem = f"{DELAY}d/{w['reference']}_{w['secondary']}"
        t0 = time.perf_counter()
        simulate_annotations(
            p,
            dict(w, sim_stack=stack),
            {"scene": outs["scene"]},
            {
                "annotation": [str(st / f"ann/{stem}{e}") for e in (".shp", ".shx", ".dbf")],
                "deformation": st / f"truth/{stem}_deformation.tif",
                "valid": st / f"truth/{stem}_valid.tif",
                "areas": st / f"truth/{stem}_areas.gpkg",
                "decoys": st / f"truth/{stem}_decoys.tif",
                "coherence": st / f"truth/{stem}_coherence.tif",
            },
        )
        timing["truth_s"] += time.perf_counter() - t0
    return [f"{w['reference']}_{w['secondary']}" for w in pairs], timing


def process(cfg, root: Path, pair: str, goldstein: bool = True) -> float:
    """The eight embedded steps on one pair (products under root/work_*, root/out_*)."""
    ref, sec = pair.split("_")
    insar = json.loads(json.dumps(cfg["insar"]))
    tag = "on" if goldstein else "off"
    if not goldstein:
        insar["goldstein"]["alpha"] = 0.0
    params = {"insar": insar, "backend": "embedded"}
    st, wk, out = root / "stack", root / f"work_{tag}/{pair}", root / f"out_{tag}/{pair}"
    dem = st / "dem.tif"
    t0 = time.perf_counter()
    for d in (ref, sec):
        if not (root / f"orbit/{d}.tif").exists():
            run_step(
                "calibrate",
                "embedded",
                {"slc": st / f"slc/{d}.tif", "metadata": st / f"slc/{d}.json"},
                {"product": root / f"cal/{d}.tif"},
                params,
                threads=2,
            )
            run_step(
                "apply_orbit",
                "embedded",
                {"product": root / f"cal/{d}.tif"},
                {"product": root / f"orbit/{d}.tif"},
                params,
            )
    chain = {
        "coregister": (
            {"reference": root / f"orbit/{ref}.tif", "secondary": root / f"orbit/{sec}.tif"},
            "coregistered",
        ),
        "interferogram": ({"product": wk / "coregistered.tif"}, "interferogram"),
        "remove_topographic_phase": ({"product": wk / "interferogram.tif"}, "topo_removed"),
        "goldstein": ({"product": wk / "topo_removed.tif"}, "goldstein"),
        "multilook": ({"product": wk / "goldstein.tif"}, "multilooked"),
    }
    for step in STEPS[2:-1]:
        inputs, name = chain[step]
        inputs = (
            dict(inputs, dem=dem) if step in ("coregister", "remove_topographic_phase") else inputs
        )
        run_step(step, "embedded", inputs, {"product": wk / f"{name}.tif"}, params, threads=2)
    run_step(
        "terrain_correct",
        "embedded",
        {"product": wk / "multilooked.tif", "dem": dem},
        {k: out / f"{k}.tif" for k in ("coherence", "phase", "layover_shadow")},
        params,
    )
    return time.perf_counter() - t0


def real_like(root: Path, pair: str) -> Path:
    """The pair processed as the real one: 3 x 10 boxcar phase, 1 x 4 looks, its pixel size."""
    from scipy import ndimage

    from isslide.geometry import Orbit, SarGeometry
    from isslide.insar import multilook, terrain
    from isslide.insar.embedded import _write_geotiffs, reproject_dem
    from isslide.insar.products import ProductReader

    wk = root / f"work_on/{pair}"
    with ProductReader(wk / "topo_removed.tif") as src:
        meta = src.meta
        ifg = src.read("ifg")
        coh = src.read("coherence")
    valid = ifg != 0
    box = ndimage.uniform_filter(ifg.real, (3, 10)) + 1j * ndimage.uniform_filter(ifg.imag, (3, 10))
    box = np.where(valid, box, 0).astype(np.complex64)
    ml = multilook.multilook_valid(box, valid, 1, 4)
    mc = multilook.multilook_valid(coh, valid, 1, 4)
    geom = SarGeometry.from_dict(meta["geometry"])
    ref_orbit = Orbit.from_dict(meta["reference"]["orbit"]["precise"])
    w, s, e, n = geom.extra["bounds"]
    dy = REAL_SPACING_M[0] / M_PER_DEG
    dx = REAL_SPACING_M[1] / (M_PER_DEG * math.cos(math.radians(geom.lat0)))
    tr = Affine(dx, 0, w, 0, -dy, n)
    width, height = int((e - w) / dx), int((n - s) / dy)
    heights = reproject_dem(str(root / "stack/dem.tif"), tr, width, height)
    phase, c, mask = terrain.terrain_correct(ml, mc, geom, ref_orbit, 1, 4, heights, tr)
    out = root / f"out_reallike/{pair}"
    _write_geotiffs(
        {
            out / "phase.tif": (phase, terrain.NODATA),
            out / "coherence.tif": (c, terrain.NODATA),
            out / "layover_shadow.tif": (mask, terrain.MASK_NODATA),
        },
        tr,
    )
    return out


# -- statistics -----------------------------------------------------------------------------
def slope_on(dem_path: Path, transform, shape) -> np.ndarray:
    from isslide.insar.embedded import reproject_dem
    from isslide.simulate.terrain import gradients

    h = reproject_dem(str(dem_path), transform, shape[1], shape[0]).astype(np.float64)
    lat = transform.f + transform.e * shape[0] / 2
    gx, gy = gradients(h, transform, lat)
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def interferogram_stats(out_dir: Path, dem: Path | None = None) -> dict:
    ph, pnd, tr, _ = read(out_dir / "phase.tif")
    co, cnd, _, _ = read(out_dir / "coherence.tif")
    data = (ph != pnd) & (co != cnd)
    usable = data.copy()
    if (out_dir / "layover_shadow.tif").exists():
        ls = read(out_dir / "layover_shadow.tif")[0]
        usable &= ls == 0
    gentle = slope_on(dem, tr, ph.shape) < GENTLE_DEG if dem is not None else None
    st = R.interferogram_statistics(ph, co, usable, tr, gentle=gentle)
    st["valid_fraction"] = float(data.mean())  # pixels with data (layover included)
    st["layover_shadow_fraction"] = float((data & ~usable).mean())
    if gentle is not None:
        st["gentle_fraction"] = float((gentle & usable).mean())
    return st


def real_stats() -> dict:
    ph, pnd, tr, _ = read(REAL / "phase.tif")
    co, cnd, _, _ = read(REAL / "coherence.tif")
    valid = (ph != pnd) & (co != cnd)
    st = R.interferogram_statistics(ph, co, valid, tr)
    return st


def annotation_ceiling(root: Path, pair: str, outline_rad: float, out_dir: Path) -> dict:
    """F1 of the true motion scored against the rasterised annotations, over usable pixels."""
    import geopandas as gpd
    from rasterio import features

    st = root / "stack"
    defo, _, tr, _ = read(st / f"truth/{DELAY}d/{pair}_deformation.tif")
    ph, pnd, _, _ = read(out_dir / "phase.tif")
    ls = read(out_dir / "layover_shadow.tif")[0]
    usable = (ph != pnd) & (ls == 0)
    ann = gpd.read_file(st / f"ann/{DELAY}d/{pair}.shp")
    labels = np.zeros(defo.shape, bool)
    if len(ann):
        labels = features.rasterize(
            [(g, 1) for g in ann.geometry], out_shape=defo.shape, transform=tr, fill=0
        ).astype(bool)

    def f1(pred):
        tp = float((pred & labels & usable).sum())
        fp = float((pred & ~labels & usable).sum())
        fn = float((~pred & labels & usable).sum())
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")

    moving = (np.abs(defo) > 0) & usable
    lab = labels & usable
    return {
        "annotated": int(len(ann)),
        "labelled_pixels": int(lab.sum()),
        "labelled_below_0.5rad": float((np.abs(defo[lab]) < 0.5).mean()) if lab.any() else None,
        "f1_motion_above_outline": f1(np.abs(defo) >= outline_rad),
        "f1_any_motion": f1(np.abs(defo) > 0),
        "moving_pixels": int(moving.sum()),
    }


def phase_noise(root: Path, pair: str) -> list[dict]:
    """Goldstein-off phase about the simulator's true phase on stable ground, by coherence."""
    from scipy import ndimage

    from isslide.simulate import OutputGrid, Scene
    from isslide.simulate.acquisition import nuisance_phase

    cfg = default_config()
    ref, sec = pair.split("_")
    sc = Scene.load(root / "stack/scene.npz")
    sc.dates = sc.grid_until(sec)
    i, j = sc.date_index(ref), sc.date_index(sec)
    og = OutputGrid(sc, float(cfg["insar"]["pixel_spacing_deg"]))

    def on_grid(f):
        return ndimage.map_coordinates(f, og._coords, order=1, mode="nearest")

    psi = on_grid(nuisance_phase(sc, j)) - on_grid(nuisance_phase(sc, i))
    defo = og.deformation(i, j)
    coh = og.coherence(i, j)
    ph, pnd, _, _ = read(root / f"out_off/{pair}/phase.tif")
    ls = read(root / f"out_off/{pair}/layover_shadow.tif")[0]
    codes, _ = og.decoys(i, j, float(sc.sim["decoys"]["visible_rad"]))
    stable = (ph != pnd) & (ls == 0) & (defo == 0) & (codes == 0)
    bins = tuple((round(a, 1), round(a + 0.1, 1)) for a in np.arange(0.2, 0.8, 0.1))
    return R.phase_noise(ph, defo + psi, coh, stable, LOOKS, bins=bins)


def decoy_pixels(root: Path, pair: str) -> dict:
    path = root / f"stack/truth/{DELAY}d/{pair}_decoys.tif"
    if not path.exists():
        return {}
    codes, _, _, tags = read(path)
    kinds = json.loads(tags.get("DECOY_KINDS", "{}"))
    return {name: int((codes == int(c)).sum()) for c, name in kinds.items()}


# -- figures --------------------------------------------------------------------------------
def figure_realism(root: Path, pair: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("real 12-day pair (Morocco)", REAL), (f"simulated {pair} (default run)", None)]
    fig, ax = plt.subplots(2, 3, figsize=(15, 9.5))
    for r, (title, src) in enumerate(rows):
        d = src if src is not None else root / f"out_on/{pair}"
        ph, pnd, tr, _ = read(d / "phase.tif")
        co, cnd, _, _ = read(d / "coherence.tif")
        ok = (ph != pnd) & (co != cnd)
        h, w = ph.shape
        lat = tr.f + tr.e * h / 2
        ny, nx = R.pixel_size_m(tr, lat)
        ext = [0, w * nx / 1e3, 0, h * ny / 1e3]
        ax[r, 0].imshow(np.where(ok, ph, np.nan), cmap="hsv", vmin=-np.pi, vmax=np.pi, extent=ext)
        ax[r, 0].set_title(f"{title}: phase")
        ax[r, 1].imshow(np.where(ok, co, np.nan), cmap="gray", vmin=0, vmax=1, extent=ext)
        ax[r, 1].set_title("coherence")
        ax[r, 2].hist(co[ok], bins=50, range=(0, 1), color="0.3")
        ax[r, 2].set_title("coherence histogram")
        for a in ax[r, :2]:
            a.set_xlabel("km")
    plt.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.savefig(path, dpi=72)
    plt.close(fig)


def figure_layover(root: Path, pair: str, path: Path) -> dict:
    """The striped blocks: radar-geometry multilooked phase, the geocoded phase, the slope-only
    layover mask and the full one (slopes plus the ground they overlay), foreshortening."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from isslide.geometry import SarGeometry
    from isslide.insar.products import ProductReader
    from isslide.simulate import OutputGrid, Scene

    sc = Scene.load(root / "stack/scene.npz")
    og = OutputGrid(sc, float(default_config()["insar"]["pixel_spacing_deg"]))
    g: SarGeometry = sc.geometry
    ph, pnd, tr, _ = read(root / f"out_on/{pair}/phase.tif")
    ls = read(root / f"out_on/{pair}/layover_shadow.tif")[0]
    ok = ph != pnd
    # slope-only (active) layover: the local slope facing the sensor exceeds the incidence
    from isslide.simulate.terrain import gradients

    gx, gy = gradients(og.dem, og.transform, g.lat0)
    facing = np.arctan(gx * g.right[0] + gy * g.right[1])
    active = facing > og.incidence
    with ProductReader(root / f"work_on/{pair}/multilooked.tif") as src:
        z = src.read("ifg")
        radar = np.where(z != 0, np.angle(z), np.nan)  # 0: outside the footprint
    fs = og.foreshortening
    fig, ax = plt.subplots(2, 3, figsize=(16, 9))
    ax[0, 0].imshow(radar, cmap="hsv", aspect="auto", interpolation="nearest")
    ax[0, 0].set_title("multilooked phase, radar geometry (lines x samples)")
    ax[0, 1].imshow(np.where(ok, ph, np.nan), cmap="hsv", interpolation="nearest")
    ax[0, 1].set_title("geocoded phase")
    ax[0, 2].imshow(np.where(ok & ~active, ph, np.nan), cmap="hsv", interpolation="nearest")
    ax[0, 2].set_title("masked: layover slopes only (before)")
    ax[1, 0].imshow(np.log2(fs), cmap="RdBu_r", vmin=-2, vmax=2, interpolation="nearest")
    ax[1, 0].set_title("log2 foreshortening (ground m per flat m in range)")
    ax[1, 1].imshow((ls == 1).astype(int) + active, cmap="viridis", interpolation="nearest")
    ax[1, 1].set_title("layover: 2 slope, 1 ground it overlays")
    ax[1, 2].imshow(np.where(ok & (ls == 0), ph, np.nan), cmap="hsv", interpolation="nearest")
    ax[1, 2].set_title("masked: full layover (now)")
    plt.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.savefig(path, dpi=60)
    plt.close(fig)
    # the blocks' texture: anisotropy of the coherence residual by geometry
    co = read(root / f"out_on/{pair}/coherence.tif")[0]
    lat = tr.f + tr.e * ph.shape[0] / 2
    resid = R.coherence_residual(co, ok, tr, lat)
    out = {}
    for name, m in (
        ("layover", ok & (ls == 1)),
        ("foreshortening_gt_2", ok & (ls == 0) & (fs > 2)),
        ("foreshortening_lt_1.2", ok & (ls == 0) & (fs < 1.2)),
    ):
        c = R.correlation_lengths(resid, m, tr, lat)
        out[name] = {"fraction": float(m.mean()), **c}
    out["active_layover_fraction"] = float((ok & active).mean())
    out["full_layover_fraction"] = float((ok & (ls == 1)).mean())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", help="work folder (kept); default: a temporary one")
    ap.add_argument("--measure", help="measure this existing work folder only (no simulation)")
    ap.add_argument("--output", default=str(REPO / "benchmarks/results_realism.json"))
    ap.add_argument("--figures", default=str(FIGURES))
    args = ap.parse_args(argv)
    cfg = default_config()
    stack = next(n for n, s in cfg["stacks"].items() if s.get("source") == "simulated")
    outline = float(cfg["simulation"]["annotations"]["outline_rad"])
    result = {
        "benchmark": "realism",
        "machine": {"python": platform.python_version(), "load": os.getloadavg()[0]},
        "config": "config/config.yaml",
        "stack": stack,
        "delay_days": DELAY,
    }
    tmp = None
    if args.measure:
        root = Path(args.measure)
        pairs = sorted(p.name for p in (root / "out_on").iterdir())
    else:
        if args.work:
            root = Path(args.work)
        else:
            tmp = tempfile.TemporaryDirectory(prefix="realism.")
            root = Path(tmp.name)
        pairs, timing = simulate(cfg, root, stack)
        timing["chain_s"] = [process(cfg, root, p) for p in pairs]
        process(cfg, root, pairs[0], goldstein=False)
        real_like(root, pairs[0])
        result["timing"] = timing
    result["real"] = real_stats()
    result["simulated"] = {}
    for p in pairs:
        st = interferogram_stats(root / f"out_on/{p}", root / "stack/dem.tif")
        st["decoy_pixels"] = decoy_pixels(root, p)
        st["annotation_ceiling"] = annotation_ceiling(root, p, outline, root / f"out_on/{p}")
        result["simulated"][p] = st
        print(p, json.dumps({k: st[k] for k in ("valid_fraction", "texture")}))
    if (root / f"out_off/{pairs[0]}").exists():
        result["goldstein_off"] = {
            "pair": pairs[0],
            "looks": LOOKS,
            "phase_noise": phase_noise(root, pairs[0]),
            "statistics": interferogram_stats(root / f"out_off/{pairs[0]}", root / "stack/dem.tif"),
        }
    if (root / f"out_reallike/{pairs[0]}").exists():
        result["real_like_processing"] = {
            "pair": pairs[0],
            "processing": "3 x 10 boxcar phase, 1 x 4 looks, no Goldstein, 17.1 x 14.6 m pixels",
            "statistics": interferogram_stats(
                root / f"out_reallike/{pairs[0]}", root / "stack/dem.tif"
            ),
        }
    if not args.measure:
        fig = Path(args.figures)
        figure_realism(root, pairs[0], fig / "realism.png")
        result["layover_blocks"] = figure_layover(root, pairs[0], fig / "layover_blocks.png")
    Path(args.output).write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {args.output}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
