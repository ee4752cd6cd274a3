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

``dataset.split_rule`` chooses the held-out interferograms:

* ``hash`` (default): the seeded hash ranking above, with the zone roles.
* ``last_by_date`` (the ISSLIDE authors' code): within each delay (and, for an imported
  ISSLIDE tree, each zone), the last ``eval_fraction`` of the interferograms by date (reference,
  then secondary) are held out, with the same rounding. Zone roles are not used: the held-out
  interferograms' patches of every zone are ``eval``, the others' ``train`` or ``val``
  (validation still hash-ranked among the training interferograms). A held-out set that moves
  forward in time: an added later date shifts the cut.
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


SPLIT_RULES = ("hash", "last_by_date")


def last_by_date(dated: dict[str, tuple], fraction: float) -> set[str]:
    """Held-out keys of ``last_by_date``: ``dated`` maps key -> (group, reference, secondary);
    within each group the n_held_out(n, fraction) latest keys by (reference, secondary, key)."""
    groups: dict = {}
    for key, (group, reference, secondary) in dated.items():
        groups.setdefault(group, []).append((str(reference), str(secondary), key))
    out: set[str] = set()
    for items in groups.values():
        items.sort()
        k = n_held_out(len(items), fraction)
        out.update(key for *_, key in items[len(items) - k :] if k)
    return out


def split_interferograms(
    keys: list[str],
    eval_fraction: float,
    val_fraction: float,
    seed: int,
    rule: str = "hash",
    dated: dict[str, tuple] | None = None,
) -> tuple[set[str], set[str]]:
    """(held-out keys, validation keys) of one stack's interferogram keys; ``rule``
    ``last_by_date`` needs ``dated`` (see :func:`last_by_date`) for every key."""
    if rule == "hash":
        evaluation = held_out(keys, eval_fraction, seed)
    elif rule == "last_by_date":
        missing = sorted(set(keys) - set(dated or {}))
        if missing:
            raise ValueError(f"dataset.split_rule last_by_date: no dates for {missing[0]}")
        evaluation = last_by_date({k: dated[k] for k in set(keys)}, eval_fraction)
    else:
        raise ValueError(f"dataset.split_rule: unknown rule {rule!r} (one of {SPLIT_RULES})")
    rest = sorted(set(keys) - evaluation)
    return evaluation, held_out(rest, val_fraction, seed, salt="val/")


def assign_split(
    roles, is_held_out, has_motion, motion_only: bool = False, is_val=None, use_roles=True
) -> np.ndarray:
    """'train' / 'val' / 'eval' / 'unused' per sample from its zone role and its interferogram
    (``use_roles`` False, the ``last_by_date`` rule: every zone plays both roles)."""
    roles = np.asarray(roles)
    if not use_roles:
        roles = np.where(roles == "", "", "both")
    is_held_out = np.asarray(is_held_out, bool)
    is_val = np.zeros(roles.shape, bool) if is_val is None else np.asarray(is_val, bool)
    out = np.full(roles.shape, "unused", dtype=object)
    evaluates, trains = np.isin(roles, ("evaluation", "both")), np.isin(roles, ("train", "both"))
    out[evaluates & is_held_out] = "eval"
    out[trains & ~is_held_out & ~is_val] = "train"
    out[trains & ~is_held_out & is_val] = "val"
    if motion_only:
        out[~np.asarray(has_motion, bool)] = "unused"
    return out
