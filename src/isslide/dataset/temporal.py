"""Multi-temporal samples: short time series of patches of one centre, built from the stores.

A temporal sample is a *target* sample of ``index.csv`` (a patch centre on one interferogram,
split ``train``, ``val`` or ``eval``) and the K patches of the same centre on the interferograms
that precede it (config ``temporal``, docs/training.md "Multi-temporal detectors"):

* ``consecutive`` (default): the ``k`` interferograms of the target's delay whose references are
  every ``revisit_days`` up to the target's, oldest first, the target last;
* ``same_reference``: the interferograms of every configured delay that share the target's
  reference date, the other delays ascending then the target's; K is the number of delays.

In both modes the target is the last step.

The mask is the target's label (and its ``valid``, ``truth``, ``decoy``); the other steps
contribute only their coherence, phase and valid pixels. A step whose interferogram is missing
(an acquisition gap, or the first ones of the stack) gets a validity flag 0 and zero inputs
(``missing: pad``), or its sample is dropped (``missing: drop``); both are counted.

Nothing is copied on disk: :func:`temporal_index` writes ``temporal.csv``, one row per target
with the row numbers of its steps in the stacks' stores (``results/dataset/ready/stacks/
{stack}.npz``, which hold every patch of every centre on every interferogram, including the
``unused`` ones), and :func:`load_temporal` assembles the arrays of one split in memory. The
targets of a split are in the order of that split's store (``train.npz`` ...), so the
evaluation images of the temporal models are those of the single-interferogram ones.

Split guarantee: every step is a patch of the target's own centre, hence of its zone. The zone's
role decides the side of the split (evaluation-role zones only ever feed ``eval``, train-role
zones ``train`` and ``val``), so no pixel of an evaluation sample's steps is ever in a training
or validation sample, and conversely; :func:`temporal_index` checks it row by row. Inside the
train-role zones a step may be a patch of another training-side interferogram (a ``val``
target may read an earlier ``train`` interferogram's coherence and phase, never its label).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from ..errors import IsslideError
from .store import DECOY_KINDS, OPTIONAL_KEYS, decoy_kinds, kinds_member, read_rows, store_layout

log = logging.getLogger("isslide.dataset")

MODES = ("consecutive", "same_reference")
MISSING = ("pad", "drop")
SPLITS = ("train", "val", "eval")
TEMPORAL_FORMAT = "isslide-temporal/1"
CENTRE = ["stack", "zone", "phenomenon_id", "k"]  # a patch centre (zone: ISSLIDE imports)


def side(split: str, role: str) -> str:
    """The side of the split a row is on: ``evaluation`` or ``training`` (train and val)."""
    if split == "eval":
        return "evaluation"
    if split in ("train", "val"):
        return "training"
    return "evaluation" if role == "evaluation" else "training"


def _dates(values: pd.Series) -> tuple[pd.Series, str]:
    s = values.astype(str)
    fmt = "%Y%m%d" if s.str.fullmatch(r"\d{8}").all() else "%Y-%m-%d"
    return pd.to_datetime(s, format=fmt), fmt


def steps_of(mode: str, k: int, delays: list[int]) -> int:
    return int(k) if mode == "consecutive" else len(delays)


def check_temporal(index: pd.DataFrame, k: int, mode: str, delays, revisit_days: int) -> None:
    """One-line errors naming the key when the stacks cannot give K-step samples."""
    if mode not in MODES:
        raise IsslideError(f"temporal.mode: {mode!r}; use one of {', '.join(MODES)}")
    if mode == "consecutive" and int(k) < 1:
        raise IsslideError(f"temporal.k: {k}; use an integer >= 1")
    refs, _ = _dates(index["reference"])
    for stack in sorted(index["stack"].unique()):
        here = index["stack"] == stack
        for d in sorted(int(x) for x in delays):
            sel = here & (index["delay"] == d)
            days = sorted({int(x) for x in (refs[sel] - refs[here].min()).dt.days})
            if mode == "same_reference":
                if not days:
                    raise IsslideError(
                        f"temporal.mode: same_reference needs every delay, but stack {stack} has "
                        f"no {d}-day interferogram; remove {d} from delays or use consecutive"
                    )
                continue
            if not days:  # a delay that gives no pair (the plan notes it): no target to build
                continue
            run = best = 0
            for i, day in enumerate(days):
                run = run + 1 if i and day - days[i - 1] == revisit_days else 1
                best = max(best, run)
            if best < int(k):
                raise IsslideError(
                    f"temporal.k: {k} interferograms per sample, but the {d}-day interferograms "
                    f"of stack {stack} give at most {best} consecutive ones ({len(days)} in all); "
                    f"lower temporal.k to {best} or add dates (dates.end)"
                )


def temporal_index(
    index: pd.DataFrame,
    k: int = 3,
    mode: str = "consecutive",
    missing: str = "pad",
    delays=(6, 12, 18),
    revisit_days: int = 6,
) -> tuple[pd.DataFrame, dict]:
    """(``temporal.csv`` frame, summary) from ``index.csv``'s frame (every row, all splits).

    Columns: ``sample_id`` (the target's), ``split``, ``stack``, ``zone``, ``delay``,
    ``reference``, ``secondary``, ``target_row`` (its row in the stack's store), ``n_present``,
    ``kept``, then per step t = 0..K-1 (the target last; ``consecutive``: oldest first): ``step{t}_reference``, ``step{t}_secondary`` (the interferogram the
    step asks for), ``step{t}_row`` and ``step{t}_sample_id`` (-1 when it is missing).
    """
    if missing not in MISSING:
        raise IsslideError(f"temporal.missing: {missing!r}; use pad or drop")
    delays = sorted(int(d) for d in delays)
    check_temporal(index, k, mode, delays, revisit_days)
    K = steps_of(mode, k, delays)
    idx = index.reset_index(drop=True).copy()
    idx["zone"] = idx["zone"].fillna("").astype(str)
    idx["role"] = idx["role"].fillna("").astype(str) if "role" in idx else ""
    # index.csv lists each stack's rows in the order of its store (isslide.dataset.patches)
    idx["_row"] = idx.groupby("stack", sort=False).cumcount()
    refs, fmt = _dates(idx["reference"])
    idx["_ref"] = refs
    lookup = {
        (*key, int(dl), ref): i
        for i, (key, dl, ref) in enumerate(
            zip(
                idx[CENTRE].itertuples(index=False, name=None),
                idx["delay"],
                idx["_ref"],
                strict=True,
            )
        )
    }
    targets = idx[idx["split"].isin(SPLITS)]
    out = {
        c: targets[c].to_numpy()
        for c in ("sample_id", "split", "stack", "zone", "delay", "reference", "secondary")
    }
    out["target_row"] = targets["_row"].to_numpy()
    present = np.zeros((len(targets), K), bool)
    step_cols: dict[str, list] = {}
    for t in range(K):
        for c in ("reference", "secondary", "row", "sample_id"):
            step_cols[f"step{t}_{c}"] = []
    sid = idx["sample_id"].to_numpy()
    rows = idx["_row"].to_numpy()
    splits = idx["split"].to_numpy()
    roles = idx["role"].to_numpy()
    for j, (_, tgt) in enumerate(targets.iterrows()):
        centre = tuple(tgt[c] for c in CENTRE)
        for t in range(K):
            if mode == "consecutive":
                delay = int(tgt["delay"])
                ref = tgt["_ref"] - pd.Timedelta(days=(K - 1 - t) * int(revisit_days))
            else:  # the other delays ascending, the target's last
                order = [d for d in delays if d != int(tgt["delay"])] + [int(tgt["delay"])]
                delay = order[t]
                ref = tgt["_ref"]
            hit = lookup.get((*centre, delay, ref))
            step_cols[f"step{t}_reference"].append(ref.strftime(fmt))
            step_cols[f"step{t}_secondary"].append((ref + pd.Timedelta(days=delay)).strftime(fmt))
            if hit is None:
                step_cols[f"step{t}_row"].append(-1)
                step_cols[f"step{t}_sample_id"].append(-1)
                continue
            if side(splits[hit], roles[hit]) != side(tgt["split"], tgt["role"]):
                raise IsslideError(
                    f"temporal: sample {tgt['sample_id']} ({tgt['split']}) would read sample "
                    f"{sid[hit]} of the other side of the split; check the zones' roles "
                    "(stacks.<stack>.zones)"
                )
            present[j, t] = True
            step_cols[f"step{t}_row"].append(int(rows[hit]))
            step_cols[f"step{t}_sample_id"].append(int(sid[hit]))
    n_present = present.sum(axis=1)
    complete = n_present == K
    kept = complete if missing == "drop" else np.ones(len(targets), bool)
    frame = pd.DataFrame(
        {**out, "n_present": n_present, "kept": kept, **{c: v for c, v in step_cols.items()}}
    )
    summary = {
        "format": TEMPORAL_FORMAT,
        "mode": mode,
        "k": int(k),
        "steps": K,
        "missing": missing,
        "revisit_days": int(revisit_days),
        "delays": delays,
    }
    for split in SPLITS:
        s = frame["split"].to_numpy() == split
        summary[split] = {
            "targets": int(s.sum()),
            "complete": int((s & complete).sum()),
            "padded": int((s & ~complete & kept).sum()),
            "dropped": int((s & ~kept).sum()),
            "missing_steps": int((K - n_present[s]).sum()),
            "samples": int((s & kept).sum()),
        }
    log.info(
        "temporal samples (%s, %d steps, missing: %s): %s",
        mode,
        K,
        missing,
        ", ".join(
            f"{sp} {summary[sp]['samples']} ({summary[sp]['padded']} padded, "
            f"{summary[sp]['dropped']} dropped)"
            for sp in SPLITS
        ),
    )
    return frame, summary


def write_temporal_index(
    index_path: str, out_csv: str, out_json: str, cfg: dict, delays, revisit_days: int
) -> dict:
    """``temporal.csv`` and its summary ``temporal.json`` from ``index.csv`` (config ``temporal``)."""
    from ..files import write_csv, write_json

    index = pd.read_csv(index_path, dtype={"reference": str, "secondary": str, "zone": str})
    frame, summary = temporal_index(
        index,
        k=int(cfg.get("k", 3)),
        mode=str(cfg.get("mode", "consecutive")),
        missing=str(cfg.get("missing", "pad")),
        delays=delays,
        revisit_days=revisit_days,
    )
    write_csv(out_csv, frame)
    write_json(out_json, summary)
    return summary


def read_temporal_index(path: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"reference": str, "secondary": str, "zone": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise IsslideError(
            f"{path}: unreadable temporal index ({exc}); rerun temporal_index"
        ) from None


def n_steps(frame: pd.DataFrame) -> int:
    return sum(1 for c in frame.columns if c.startswith("step") and c.endswith("_row"))


def load_temporal(index_path: str, split: str, stores: dict[str, str]) -> dict[str, np.ndarray]:
    """The temporal samples of ``split`` (kept ones, in the order of the split's store), in memory.

    ``stores``: stack name -> its store (``results/dataset/ready/stacks/{stack}.npz``). Returns
    ``coherence``, ``phase`` float32 (N, K, H, W) and ``step_valid`` uint8 (N, K, H, W), 0 on a
    missing step; ``present`` uint8 (N, K), the per-step validity flag; the target's ``label``,
    ``valid`` (and ``truth``, ``decoy``, ``decoy_kinds`` when every store has them) (N, H, W);
    ``sample_id`` (N,), the target's.
    """
    frame = read_temporal_index(index_path)
    frame = frame[(frame["split"] == split) & frame["kept"].astype(bool)].reset_index(drop=True)
    K = n_steps(frame)
    layouts = {}
    for name in sorted(set(frame["stack"])):
        if name not in stores:
            raise IsslideError(f"{index_path}: no store given for stack {name}; rerun the workflow")
        layouts[name] = store_layout(stores[name])
    optional = tuple(
        k for k in OPTIONAL_KEYS if layouts and all(k in lay for lay in layouts.values())
    )
    if layouts:
        shape = next(iter(layouts.values()))["coherence"][2][1:]
    else:  # an empty split: the patch size of any store given
        shape = store_layout(next(iter(stores.values())))["coherence"][2][1:] if stores else (0, 0)
    n = len(frame)
    out = {
        "coherence": np.zeros((n, K, *shape), np.float32),
        "phase": np.zeros((n, K, *shape), np.float32),
        "step_valid": np.zeros((n, K, *shape), np.uint8),
        "present": np.zeros((n, K), np.uint8),
        "label": np.zeros((n, *shape), np.uint8),
        "valid": np.zeros((n, *shape), np.uint8),
        "sample_id": frame["sample_id"].to_numpy(np.int64),
        **{k: np.zeros((n, *shape), np.uint8) for k in optional},
    }
    kinds: dict[int, str] = {}
    for name, grp in frame.groupby("stack", sort=True):
        path, lay = stores[name], layouts[name]
        at = grp.index.to_numpy()
        tgt = read_rows(path, grp["target_row"].to_numpy(), ("label", "valid", "sample_id",
                        *optional), lay)  # fmt: skip
        if not np.array_equal(tgt["sample_id"], grp["sample_id"].to_numpy(np.int64)):
            raise IsslideError(f"{path}: does not match {index_path}; rerun temporal_index")
        for key in ("label", "valid", *optional):
            out[key][at] = tgt[key]
        for t in range(K):
            r = grp[f"step{t}_row"].to_numpy(np.int64)
            ok = r >= 0
            if not ok.any():
                continue
            got = read_rows(path, r[ok], ("coherence", "phase", "valid", "sample_id"), lay)
            want = grp[f"step{t}_sample_id"].to_numpy(np.int64)[ok]
            if not np.array_equal(got["sample_id"], want):
                raise IsslideError(f"{path}: does not match {index_path}; rerun temporal_index")
            out["coherence"][at[ok], t] = got["coherence"]
            out["phase"][at[ok], t] = got["phase"]
            out["step_valid"][at[ok], t] = got["valid"]
            out["present"][at[ok], t] = 1
        if "decoy" in optional:
            from .store import read_store

            kinds.update(decoy_kinds(read_store(path, mmap=True)))
    if "decoy" in optional:
        out[DECOY_KINDS] = kinds_member(kinds)
    return out


def is_temporal_store(store: dict) -> bool:
    return np.ndim(store["coherence"]) == 4


def summary_counts(path: str) -> dict:
    with open(path) as fh:
        return json.load(fh)
