"""The train/evaluation split (the paper's protocol by default).

* Held-out interferograms: per stack, the ``eval_fraction`` of its interferograms (rounded,
  at least one, never all when there are two or more) with the smallest seeded hash of
  ``stack/reference_secondary``. Each interferogram's hash depends only on its own name and the
  seed, so adding an interferogram never reshuffles the others: the held-out set changes by at
  most the one interferogram crossing the rank cut.
* Validation interferograms: among the interferograms not held out, the ``val_fraction`` of
  them (same rounding: at least one when the fraction is positive, never all when there are two
  or more) with the smallest seeded hash of ``val/stack/reference_secondary``: another ranking
  than the held-out one, equally stable.
* ``eval``  = patches of evaluation-role zones on held-out interferograms;
  ``val``   = patches of train-role zones on validation interferograms;
  ``train`` = patches of train-role zones on the other interferograms;
  everything else is ``unused`` (kept in ``index.csv``, not in the stores). Validation and
  evaluation never share an interferogram, nor training and either of them.
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


def held_out(keys: list[str], fraction: float, seed: int, salt: str = "") -> set[str]:
    """The held-out keys: the n_held_out(len, fraction) keys with the smallest hash."""
    keys = sorted(set(keys))
    ranked = sorted(keys, key=lambda k: (pair_hash(salt + k, seed), k))
    return set(ranked[: n_held_out(len(keys), fraction)])


def split_interferograms(
    keys: list[str], eval_fraction: float, val_fraction: float, seed: int
) -> tuple[set[str], set[str]]:
    """(held-out keys, validation keys) of one stack's interferogram keys."""
    evaluation = held_out(keys, eval_fraction, seed)
    rest = sorted(set(keys) - evaluation)
    return evaluation, held_out(rest, val_fraction, seed, salt="val/")


def assign_split(
    roles, is_held_out, has_motion, motion_only: bool = False, is_val=None
) -> np.ndarray:
    """'train' / 'val' / 'eval' / 'unused' per sample from its zone role and its interferogram."""
    roles = np.asarray(roles)
    is_held_out = np.asarray(is_held_out, bool)
    is_val = np.zeros(roles.shape, bool) if is_val is None else np.asarray(is_val, bool)
    out = np.full(roles.shape, "unused", dtype=object)
    out[(roles == "evaluation") & is_held_out] = "eval"
    out[(roles == "train") & ~is_held_out & ~is_val] = "train"
    out[(roles == "train") & ~is_held_out & is_val] = "val"
    if motion_only:
        out[~np.asarray(has_motion, bool)] = "unused"
    return out
