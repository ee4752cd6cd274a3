"""Synthetic interferograms with known deformation bubbles, and a tiny detector trained on them
in seconds (CPU), for the detection tests."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from isslide.dataset.store import write_store
from isslide.train import train_model


def bubble_scene(height, width, bubbles, seed=0, fringes=2.5):
    """(phase, coherence, truth) with a smooth atmosphere, a coherence of 0.2-0.5 and, for each
    (row, col, radius) in ``bubbles``, a coherent (0.9) bubble of ``fringes`` fringes
    (1 - rho^2)^1.5: an easy target, so a detector learns it in a few steps."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(float)
    atmo = ndimage.gaussian_filter(rng.normal(size=(height, width)), 25) * 60.0
    coh = np.clip(ndimage.gaussian_filter(rng.uniform(0.2, 1.0, (height, width)), 3), 0, 1)
    coh = (0.2 + 0.3 * (coh - coh.min()) / max(np.ptp(coh), 1e-9)).astype(np.float32)
    truth = np.zeros((height, width), bool)
    defo = np.zeros((height, width))
    for r, c, radius in bubbles:
        rho2 = ((yy - r) ** 2 + (xx - c) ** 2) / radius**2
        inside = rho2 < 1
        truth |= inside
        defo[inside] += 2 * np.pi * fringes * (1 - rho2[inside]) ** 1.5
        coh[inside] = 0.9
    noise = rng.normal(size=(height, width)) * (1 - coh) * 1.2
    phase = np.angle(np.exp(1j * (atmo + defo + noise))).astype(np.float32)
    return phase, coh, truth


def make_bubble_store(path, n=40, size=40, seed=0):
    rng = np.random.default_rng(seed)
    phase = np.empty((n, size, size), np.float32)
    coh = np.empty_like(phase)
    label = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        k = i % 3  # a third of the samples without a bubble
        bubbles = [
            (rng.uniform(8, size - 8), rng.uniform(8, size - 8), rng.uniform(5, 12))
            for _ in range(k)
        ]
        p, c, t = bubble_scene(size, size, bubbles, seed=seed * 1000 + i)
        phase[i], coh[i], label[i] = p, c, t
    valid = np.ones_like(label)
    valid[: n // 4, :, : size // 5] = 0  # some invalid margins, as nodata borders
    write_store(
        str(path),
        dict(coherence=coh, phase=phase, label=label, valid=valid, sample_id=np.arange(n)),
    )
    return str(path)


def train_tiny_model(folder, name="unet", epochs=6, seed=0):
    """A trained isslide model folder (model.pt, history.csv) that finds bubbles."""
    folder.mkdir(parents=True, exist_ok=True)
    store = make_bubble_store(folder / "train.npz", seed=seed)
    cfg = {
        "shallow": {"epochs": epochs, "lr": 1e-2},
        "device": "cpu",
        "batch_size": 8,
        "motion_only": False,
    }
    train_model(
        name,
        store,
        str(folder / "model.pt"),
        str(folder / "history.csv"),
        cfg,
        seed=seed,
        threads=2,
        checkpoint_root=str(folder / "checkpoints"),
    )
    (folder / "train.npz").unlink()
    return folder
