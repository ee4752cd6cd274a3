"""The training store as a PyTorch ``Dataset`` (torchgeo ``NonGeoDataset`` style, no torchgeo).

    from isslide.dataset.torchdata import ISSLIDE

    ds = ISSLIDE("results/dataset/ready", split="train")   # or an `isslide import-isslide` --out
    sample = ds[0]          # {"image": (3, H, W) float32, "mask": (H, W) int64, "valid": (H, W) bool}
    fig = ds.plot(sample)   # matplotlib Figure: coherence, phase, mask (and "prediction" if given)

``image`` holds the channels the detectors are trained on (:mod:`isslide.train`): coherence,
cos(phase), sin(phase), zero where the pixel is invalid (layover, shadow, nodata). ``mask`` is
1 where an annotated moving area covers a valid pixel, else 0; ``valid`` says which pixels count
(the training loss ignores the others). Samples also carry ``sample_id`` and the ``index.csv``
fields ``zone``, ``delay``, ``reference``, ``secondary``, ``phenomenon_id``. ``transforms`` (a
callable on the sample dict, as in torchgeo) is applied last. The store is memory-mapped: a
worker reads only the samples it is asked for.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..errors import IsslideError
from .store import read_store

SPLITS = {"train": "train.npz", "eval": "eval.npz"}


class ISSLIDE(Dataset):
    """ISSLIDE patches of a store folder (``train.npz``/``eval.npz`` + ``index.csv``)."""

    splits = tuple(SPLITS)

    def __init__(self, root: str, split: str = "train", transforms=None, motion_only=False):
        if split not in SPLITS:
            raise IsslideError(f"split: '{split}' is not one of {', '.join(SPLITS)}")
        path = os.path.join(root, SPLITS[split])
        if not os.path.isfile(path):
            raise IsslideError(
                f"{path}: no store; build it (snakemake) or import the release "
                "(isslide import-isslide ... --out {root})"
            )
        self.root, self.split, self.transforms = root, split, transforms
        self.store = read_store(path, mmap=True)
        ids = np.asarray(self.store["sample_id"])
        index_path = os.path.join(root, "index.csv")
        if os.path.isfile(index_path):
            index = pd.read_csv(index_path, dtype={"reference": str, "secondary": str})
            index = index.drop_duplicates("sample_id").set_index("sample_id")
            missing = np.setdiff1d(ids, index.index.to_numpy())
            if len(missing):
                raise IsslideError(
                    f"{index_path}: {len(missing)} samples of {path} are not in it; rebuild both"
                )
            self.index = index.loc[ids].reset_index()
        else:
            self.index = pd.DataFrame({"sample_id": ids})
        self.rows = np.arange(len(ids))
        if motion_only:
            label = self.store["label"].reshape(len(ids), -1)
            valid = self.store["valid"].reshape(len(ids), -1)
            self.rows = np.flatnonzero(((label > 0) & (valid > 0)).any(axis=1))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        r = int(self.rows[i])
        valid = torch.from_numpy(np.array(self.store["valid"][r], dtype=bool))
        phase = torch.from_numpy(np.array(self.store["phase"][r], dtype=np.float32))
        coherence = torch.from_numpy(np.array(self.store["coherence"][r], dtype=np.float32))
        v = valid.float()
        image = torch.stack([coherence * v, torch.cos(phase) * v, torch.sin(phase) * v])
        mask = torch.from_numpy(np.array(self.store["label"][r], dtype=np.int64)) * valid
        sample = {"image": image, "mask": mask, "valid": valid}
        row = self.index.iloc[r]
        sample["sample_id"] = int(row["sample_id"])
        for key in ("zone", "delay", "reference", "secondary", "phenomenon_id"):
            if key in row:
                sample[key] = row[key]
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def plot(self, sample: dict, show_titles: bool = True, suptitle: str | None = None):
        """A matplotlib Figure of one sample: coherence, wrapped phase, mask (+ prediction)."""
        import matplotlib.pyplot as plt

        image = sample["image"].detach().cpu().numpy()
        valid = sample.get("valid")
        valid = np.ones(image.shape[1:], bool) if valid is None else np.asarray(valid, bool)
        phase = np.where(valid, np.arctan2(image[2], image[1]), np.nan)
        coherence = np.where(valid, image[0], np.nan)
        panels = [
            ("Coherence", coherence, {"cmap": "gray", "vmin": 0, "vmax": 1}),
            ("Phase (rad)", phase, {"cmap": "twilight", "vmin": -np.pi, "vmax": np.pi}),
            ("Mask", np.asarray(sample["mask"]), {"cmap": "viridis", "vmin": 0, "vmax": 1}),
        ]
        if "prediction" in sample:
            pred = sample["prediction"]
            pred = pred.detach().cpu().numpy() if hasattr(pred, "detach") else np.asarray(pred)
            panels.append(("Prediction", pred.squeeze(), {"cmap": "viridis", "vmin": 0, "vmax": 1}))
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
        for ax, (title, data, kw) in zip(axes, panels, strict=True):
            ax.imshow(data, interpolation="nearest", **kw)
            ax.set_axis_off()
            if show_titles:
                ax.set_title(title)
        if suptitle is not None:
            fig.suptitle(suptitle)
        fig.tight_layout()
        return fig
