"""The consolidated training store: one uncompressed ``.npz`` per split.

``results/dataset/ready/{split}.npz`` (split ``train`` or ``eval``) holds, for N samples of
``size x size`` pixels:

=============  ==================  ===================================================
key            dtype, shape        meaning
=============  ==================  ===================================================
coherence      float32 (N, H, W)   coherence in [0, 1]
phase          float32 (N, H, W)   wrapped phase, radians in [-pi, pi]
label          uint8 (N, H, W)     1 where an annotated moving area covers the pixel
valid          uint8 (N, H, W)     1 where the pixel is usable (not layover/shadow, not nodata)
sample_id      int64 (N,)          row key into ``results/dataset/ready/index.csv``
=============  ==================  ===================================================

Loading is a single ``np.load`` of contiguous arrays: memory speed.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from ..errors import IsslideError

KEYS = {
    "coherence": np.float32,
    "phase": np.float32,
    "label": np.uint8,
    "valid": np.uint8,
    "sample_id": np.int64,
}


def write_store(path: str, arrays: dict) -> None:
    """Write the store atomically (temporary file + rename)."""
    missing = set(KEYS) - set(arrays)
    if missing:
        raise IsslideError(f"{path}: training store lacks {', '.join(sorted(missing))}")
    n = len(arrays["sample_id"])
    data = {}
    for key, dtype in KEYS.items():
        a = np.ascontiguousarray(np.asarray(arrays[key], dtype=dtype))
        if a.shape[0] != n:
            raise IsslideError(f"{path}: '{key}' has {a.shape[0]} samples, expected {n}")
        data[key] = a
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npz.part")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_store(path: str) -> dict[str, np.ndarray]:
    """Read a store; a missing, corrupt or incomplete file is an error naming it."""
    if not os.path.exists(path):
        raise IsslideError(f"{path}: training store not found; build it with the dataset rules")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError
        raise IsslideError(f"{path}: unreadable training store ({exc}); delete it and rerun") from None
    missing = set(KEYS) - set(out)
    if missing:
        raise IsslideError(f"{path}: training store lacks {', '.join(sorted(missing))}; rebuild it")
    return out
