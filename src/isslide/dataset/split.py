"""The train/evaluation split (the paper's protocol by default).

* Held-out interferograms: per stack, the ``eval_fraction`` of its interferograms (rounded,
  at least one, never all when there are two or more) with the smallest seeded hash of
  ``stack/reference_secondary``. Each interferogram's hash depends only on its own name and the
  seed, so adding an interferogram never reshuffles the others: the held-out set changes by at
  most the one interferogram crossing the rank cut.
* ``eval``  = patches of evaluation-role zones on held-out interferograms;
  ``train`` = patches of train-role zones on the other interferograms;
  everything else is ``unused`` (kept in ``index.csv``, not in the stores).
* ``motion_only`` (the single-interferogram study): only patches with motion enter train/eval.
"""

from __future__ import annotations

import hashlib

import numpy as np


def pair_hash(key: str, seed: int) -> float:
    """A uniform number in [0, 1) from ``seed`` and ``key`` (stable across runs and platforms)."""
    digest = hashlib.blake2b(f"{int(seed)}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def n_held_out(n: int, fraction: float) -> int:
    if n == 0 or fraction <= 0:
        return 0
    k = max(1, int(round(fraction * n)))
    return min(k, n - 1) if n >= 2 else k


def held_out(keys: list[str], fraction: float, seed: int) -> set[str]:
    """The held-out keys: the n_held_out(len, fraction) keys with the smallest hash."""
    keys = sorted(set(keys))
    ranked = sorted(keys, key=lambda k: (pair_hash(k, seed), k))
    return set(ranked[: n_held_out(len(keys), fraction)])


def assign_split(roles, is_held_out, has_motion, motion_only: bool = False) -> np.ndarray:
    """'train' / 'eval' / 'unused' per sample from its zone role and its interferogram."""
    roles = np.asarray(roles)
    is_held_out = np.asarray(is_held_out, bool)
    out = np.full(roles.shape, "unused", dtype=object)
    out[(roles == "evaluation") & is_held_out] = "eval"
    out[(roles == "train") & ~is_held_out] = "train"
    if motion_only:
        out[~np.asarray(has_motion, bool)] = "unused"
    return out
