"""A quick look at a stack's detections: one row per interferogram, phase and probability.

Written by the workflow's ``detection_preview`` rule (``results/detections/{stack}/preview.png``)
for the Snakemake report; the layers themselves open in QGIS (docs/detection.md).
"""

from __future__ import annotations

import os

import numpy as np
import rasterio

from ..files import file_mode

MAX_PAIRS = 6


def _read(path: str) -> tuple[np.ndarray, tuple]:
    with rasterio.open(path) as src:
        band = src.read(1, masked=True).astype(np.float32).filled(np.nan)
        b = src.bounds
    return band, (b.left, b.right, b.bottom, b.top)


def write_preview(pairs: list[dict], candidates: str, out: str, max_pairs: int = MAX_PAIRS) -> int:
    """Draw up to ``max_pairs`` interferograms (``pairs``: dicts with ``name``, ``phase``,
    ``probability``) with the stack's candidate outlines; return how many were drawn."""
    import geopandas as gpd
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = pairs[:max_pairs]
    frame = gpd.read_file(candidates) if os.path.exists(candidates) else None
    fig, axes = plt.subplots(
        len(shown), 2, figsize=(8, 3.2 * len(shown)), squeeze=False, constrained_layout=True
    )
    for row, pair in zip(axes, shown, strict=True):
        phase, extent = _read(pair["phase"])
        prob, pextent = _read(pair["probability"])
        im0 = row[0].imshow(phase, cmap="twilight", vmin=-np.pi, vmax=np.pi, extent=extent)
        im1 = row[1].imshow(prob, cmap="magma", vmin=0, vmax=1, extent=pextent)
        row[0].set_title(f"{pair['name']}: phase (rad)", fontsize=9)
        row[1].set_title("probability, candidates", fontsize=9)
        fig.colorbar(im0, ax=row[0], shrink=0.8)
        fig.colorbar(im1, ax=row[1], shrink=0.8)
        if frame is not None and len(frame):
            ref, sec = pair["name"].split("/")[-1].split("_")
            mine = frame[
                (frame["reference"].astype(str) == ref) & (frame["secondary"].astype(str) == sec)
            ]
            if len(mine):
                mine.boundary.plot(ax=row[1], color="cyan", linewidth=0.5)
        for ax in row:
            ax.tick_params(labelsize=7)
            ax.set_xlabel("longitude (deg)", fontsize=7)
            ax.set_ylabel("latitude (deg)", fontsize=7)
    more = len(pairs) - len(shown)
    if more > 0:
        fig.suptitle(f"first {len(shown)} of {len(pairs)} interferograms", fontsize=10)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.part.png"
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.chmod(tmp, file_mode())
    os.replace(tmp, out)
    return len(shown)
