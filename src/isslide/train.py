"""Training of the detectors on the ready-to-use store, the ISSLIDE paper's protocol by default.

Protocol (config ``training``, all keys in src/isslide/data/config.schema.yaml):

* inputs: three channels, coherence, cos(phase + a) and sin(phase + a), with a random phase offset
  ``a`` in [0, 2 pi) drawn per training sample and epoch (``phase_offset``; none at evaluation);
  invalid pixels (store ``valid`` = 0) are zeroed in the input and left out of the loss;
* samples: those with at least one valid motion pixel (``motion_only``, as the paper's public
  code, which kept only patches containing motion);
* loss: binary cross-entropy on logits, averaged over the valid pixels of the batch;
* Adam (betas ``betas``, the paper's code used (0.5, 0.999)), batch 8, ``drop_last`` off (the
  authors' DataLoader keeps the last partial batch);
  learning rate and epochs per family: ``shallow`` (UNet, ResUNet, SepUNet) 1e-5 for 300 epochs,
  ``large`` (FCN, DeepLabV3) 1e-7 for 600 epochs, ``per_model`` overrides; ``lr_schedule``
  constant (the paper) or cosine (decayed per step to 0 at the last epoch);
* crops (off by default): ``crops_per_sample`` random ``crop_size`` crops of every training patch
  per epoch, each shifted uniformly inside the patch and with its own phase offset;
  ``flips`` (off by default) applies one of the 8 symmetries of the square to each;
* validation: after every epoch the loss on the validation store (``val.npz``, no offset);
  ``select_best: val_loss`` keeps the weights of the epoch with the lowest one (``last``: the
  last epoch, the paper). The kept weights then choose the operating thresholds on the
  validation store (:func:`choose_thresholds`: the paper's per-image F1 and the pooled F1, each
  maximised there), written to ``thresholds.json`` and into ``model.pt``; evaluation applies
  them unchanged.

Bad input: an empty training or validation split, or one without motion, or an evaluation set
without motion stops :func:`train_model` before anything is trained or written, with one line
naming the config keys to change.

Speed: the whole store is kept as tensors (on the GPU when it fits in half its free memory,
otherwise in pinned host memory copied batch by batch with ``non_blocking``); each epoch indexes
batches with a seeded permutation, so no DataLoader, no worker process, no per-sample Python.

Determinism: every draw comes from generators seeded by (seed, epoch); on CPU a run is bitwise
reproducible. A checkpoint (model, optimizer, AMP scaler, RNG states, epoch, history) is written
atomically after every epoch under ``checkpoints/<settings-hash>/last.pt``; rerunning the same
settings resumes from it and ends with exactly the weights of an uninterrupted run. Changing a
setting that alters the trajectory (learning rate, batch, seed, data...) uses another
directory, so no checkpoint is ever overwritten by a different run.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .dataset.store import read_store
from .errors import IsslideError
from .files import file_mode
from .models import build_model, count_parameters, get_spec

log = logging.getLogger("isslide.train")

HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "val_loss",
    "eval_loss",
    "lr",
    "seconds",
    "samples_per_s",
]
CHECKPOINT_FORMAT = "isslide-checkpoint/2"
MODEL_FORMAT = "isslide-model/2"
THRESHOLDS_FORMAT = "isslide-thresholds/1"

# What to change when a split is empty or has no motion (the one-line errors).
SPLIT_ADVICE = {
    "training": "widen the train-role zones (stacks.<stack>.zones), add dates (dates.end) or "
    "lower dataset.eval_fraction / dataset.val_fraction",
    "validation": "raise dataset.val_fraction, add dates (dates.end) or widen the train-role "
    "zones (stacks.<stack>.zones)",
    "evaluation": "widen the evaluation-role zones (stacks.<stack>.zones), add dates "
    "(dates.end) or raise dataset.eval_fraction",
}


def training_config(cfg: dict | None) -> dict:
    """Config ``training`` with the schema's defaults filled in (for callers outside Snakemake)."""
    from .config import fill_defaults

    return fill_defaults({"training": json.loads(json.dumps(cfg or {}))})["training"]


def evaluation_config(cfg: dict | None) -> dict:
    """Config ``evaluation`` with the schema's defaults filled in."""
    from .config import fill_defaults

    return fill_defaults({"evaluation": json.loads(json.dumps(cfg or {}))})["evaluation"]


def resolve_device(spec: str) -> torch.device:
    spec = str(spec or "auto")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise IsslideError(
                f"training.device: {spec!r} asked for but no CUDA device is visible; "
                "use 'auto' or 'cpu'"
            )
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise IsslideError(
                f"training.device: {spec!r} but only {torch.cuda.device_count()} CUDA device(s)"
            )
        return dev
    raise IsslideError(f"training.device: {spec!r} is not auto, cpu, cuda or cuda:N")


def derive_seed(*parts) -> int:
    h = hashlib.sha256(json.dumps([int(p) for p in parts]).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def atomic_write_bytes(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    os.chmod(tmp, file_mode())  # outputs follow the umask (mkstemp makes 0600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj, path: str) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def write_history(rows: list[dict], path: str) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in HISTORY_COLUMNS})
    atomic_write_bytes(path, buf.getvalue().encode())


def load_checkpoint(path: str) -> dict:
    """A checkpoint or model file, loaded with ``weights_only=True``; one-line error if corrupt."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        msg = " ".join(str(exc).split())[:160]
        raise IsslideError(
            f"{path}: corrupt or unsafe checkpoint ({msg}); delete it to start that training again"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") not in (CHECKPOINT_FORMAT, MODEL_FORMAT):
        raise IsslideError(f"{path}: not an isslide checkpoint; delete it or move it away")
    return obj


# ----------------------------------------------------------------------------- data


def motion_mask(store: dict) -> np.ndarray:
    """Per sample: at least one valid pixel labelled as moving."""
    lab = store["label"].reshape(len(store["label"]), -1) > 0
    val = store["valid"].reshape(len(store["valid"]), -1) > 0
    return (lab & val).any(axis=1)


def select_samples(
    store: dict, motion_only: bool, path: str, split: str = "training"
) -> np.ndarray:
    """Indices of the samples to use; one-line errors (naming the config keys to change) for an
    empty store or one without motion. ``split``: training, validation or evaluation."""
    n = len(store["sample_id"])
    advice = SPLIT_ADVICE[split]
    if n == 0:
        raise IsslideError(f"{path}: the {split} split holds no sample; {advice}")
    moving = motion_mask(store)
    if not moving.any():
        raise IsslideError(
            f"{path}: no sample contains a valid motion pixel ({split} split); {advice}"
        )
    return np.flatnonzero(moving) if motion_only else np.arange(n)


class StoreTensors:
    """The selected samples of a store as tensors, with batches built on ``device``.

    A multi-temporal store (:func:`isslide.dataset.temporal.load_temporal`: ``coherence`` and
    ``phase`` (N, K, H, W), each step's pixel validity ``step_valid``) gives inputs
    (B, K, 3, H, W), each step zeroed where its own pixels are invalid; the target and the loss
    mask are the target's ``label`` and ``valid``.
    """

    def __init__(self, store: dict, indices: np.ndarray, device: torch.device, on_device: bool):
        self.device = device
        self.on_device = on_device or device.type == "cpu"
        home = device if self.on_device else torch.device("cpu")

        def take(key, dtype):
            a = torch.from_numpy(np.ascontiguousarray(store[key][indices])).to(dtype)
            if home.type == "cpu" and device.type == "cuda":
                a = a.pin_memory()
            return a.to(home)

        self.coherence = take("coherence", torch.float32)
        self.phase = take("phase", torch.float32)
        self.label = take("label", torch.uint8)
        self.valid = take("valid", torch.uint8)
        self.temporal = self.coherence.ndim == 4
        self.step_valid = take("step_valid", torch.uint8) if self.temporal else None
        self.steps = int(self.coherence.shape[1]) if self.temporal else 1
        self.n = len(indices)
        self.shape = tuple(self.coherence.shape[-2:])

    @staticmethod
    def nbytes(store: dict, n: int) -> int:
        h, w = store["coherence"].shape[-2:]
        k = store["coherence"].shape[1] if np.ndim(store["coherence"]) == 4 else 1
        return n * h * w * (k * (4 + 4 + 1) + 1 + 1)

    def batch(self, idx: torch.Tensor, offsets: torch.Tensor | None, crops=None, flips=None):
        """(inputs (B,3,H,W) float32, target (B,1,H,W) float32, valid (B,1,H,W) float32);
        inputs (B,K,3,H,W) for a multi-temporal store.

        ``crops``: None, or (rows, cols, size): sample b is cut to ``size`` pixels from
        (rows[b], cols[b]) before the channels are built. ``flips``: None, or one code per
        sample in 0..7 (:func:`dihedral`), applied after the crop. ``offsets``: (B,) or, for a
        multi-temporal store, (B, K) phase offsets (one per step).
        """
        tensors = [self.coherence, self.phase, self.label, self.valid]
        if self.temporal:
            tensors.append(self.step_valid)
        if self.on_device:
            idx = idx.to(self.device)
            parts = [t.index_select(0, idx) for t in tensors]
        else:  # pinned host memory -> asynchronous copies
            parts = [
                t.index_select(0, idx).pin_memory().to(self.device, non_blocking=True)
                for t in tensors
            ]
        if crops is not None:
            rows, cols, size = crops
            parts = [
                torch.stack(
                    [
                        t[b, ..., r : r + size, c : c + size]
                        for b, (r, c) in enumerate(zip(rows, cols, strict=True))
                    ]
                )
                for t in parts
            ]
        if flips is not None:
            parts = [
                torch.stack([dihedral(t[b], int(k)) for b, k in enumerate(flips)]) for t in parts
            ]
        coh, phase, label, valid = parts[:4]
        v = valid.float().unsqueeze(1)
        if self.temporal:  # per step: (B, K, 3, H, W), zero where that step is invalid
            sv = parts[4].float().unsqueeze(2)
            if offsets is not None:
                off = offsets.to(self.device, non_blocking=True)
                phase = phase + off.view(off.shape[0], -1, 1, 1)
            x = torch.stack((coh, torch.cos(phase), torch.sin(phase)), dim=2) * sv
            return x, label.float().unsqueeze(1), v
        if offsets is not None:
            phase = phase + offsets.to(self.device, non_blocking=True).view(-1, 1, 1)
        x = torch.stack((coh, torch.cos(phase), torch.sin(phase)), dim=1) * v
        return x, label.float().unsqueeze(1), v


def dihedral(a: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 symmetries of the square on the last two axes: rotation by k % 4 quarter
    turns, then a transpose when k >= 4 (k = 0: unchanged)."""
    a = torch.rot90(a, k % 4, dims=(-2, -1))
    return a.transpose(-2, -1) if k >= 4 else a


def masked_bce(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor):
    """(sum of BCE over valid pixels, number of valid pixels)."""
    loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
    return (loss * valid).sum(), valid.sum()


# ----------------------------------------------------------------------------- settings


@dataclass
class Settings:
    model: str
    epochs: int
    lr: float
    batch_size: int
    drop_last: bool
    betas: tuple[float, float]
    motion_only: bool
    phase_offset: bool
    seed: int
    amp: bool
    device: str
    eval_loss: bool
    crop_size: int | None = None
    crops_per_sample: int = 1
    lr_schedule: str = "constant"
    flips: bool = False
    data: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Hash of everything that shapes the trajectory (not the number of epochs with a
        constant learning rate: more epochs then continue a finished run)."""
        d = asdict(self)
        if self.lr_schedule == "constant":
            d.pop("epochs")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def store_identity(store: dict, path: str) -> dict:
    """A cheap content fingerprint of a store (ids, shape, strided samples of every array)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(store["sample_id"]).tobytes())
    for key in ("coherence", "phase", "label", "valid", "present"):
        if key not in store:  # present: the per-step flags of a multi-temporal store
            continue
        a = store[key].reshape(-1)
        h.update(np.ascontiguousarray(a[:: max(1, a.size // 4096)]).tobytes())
        h.update(str(store[key].shape).encode())
    return {"sha": h.hexdigest()[:16], "n": int(len(store["sample_id"]))}


def model_settings(name: str, cfg: dict, seed: int, device: torch.device) -> Settings:
    spec = get_spec(name)
    family = dict(cfg[spec.family])
    family.update(cfg.get("per_model", {}).get(name, {}) or {})
    weights = {}
    for key in (("backbone",) if spec.uses_backbone else ()) + (
        (name,) if spec.needs_weights else ()
    ):
        path = (cfg.get("weights") or {}).get(key)
        if path:
            weights[key] = {
                "path": os.path.abspath(path),
                "size": os.path.getsize(path) if os.path.exists(path) else None,
            }
    return Settings(
        model=name,
        epochs=int(family["epochs"]),
        lr=float(family["lr"]),
        batch_size=int(cfg["batch_size"]),
        drop_last=bool(cfg["drop_last"]),
        betas=(float(cfg["betas"][0]), float(cfg["betas"][1])),
        motion_only=bool(cfg["motion_only"]),
        phase_offset=bool(cfg["phase_offset"]),
        seed=int(seed),
        amp=bool(cfg["amp"]) and device.type == "cuda",
        device=device.type,
        eval_loss=bool(cfg.get("eval_loss", True)),
        crop_size=None if cfg.get("crop_size") is None else int(cfg["crop_size"]),
        crops_per_sample=int(cfg.get("crops_per_sample", 1)),
        lr_schedule=str(cfg.get("lr_schedule", "constant")),
        flips=bool(cfg.get("flips", False)),
        weights=weights,
    )


@contextlib.contextmanager
def deterministic(device: torch.device):
    prev = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn_only: a few CUDA backward kernels (bilinear upsampling in FCN/DeepLabV3) have no
    # deterministic implementation; torch warns about them instead of failing.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        torch.backends.cudnn.deterministic = prev[2]
        torch.backends.cudnn.benchmark = prev[3]


def data_on_device(mode, device: torch.device, nbytes: int) -> bool:
    if device.type != "cuda":
        return True
    if mode in (True, "true"):
        return True
    if mode in (False, "false"):
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < 0.5 * free


# ----------------------------------------------------------------------------- loops


def epoch_plan(
    settings: Settings,
    n: int,
    epoch: int,
    shape: tuple[int, int] | None = None,
    steps: int = 1,
):
    """The seeded draws of one epoch (CPU tensors): the order of the ``n * crops_per_sample``
    items (item i is sample i % n), their phase offsets (or None; (m, steps) for a
    multi-temporal store, one per interferogram), crop origins (or None) and symmetries of the
    square (codes 0..7, or None)."""
    g = torch.Generator().manual_seed(derive_seed(settings.seed, 1, epoch))
    m = n * settings.crops_per_sample
    perm = torch.randperm(m, generator=g) % n
    size = (m,) if steps == 1 else (m, steps)
    offsets = torch.rand(size, generator=g) * (2 * math.pi) if settings.phase_offset else None
    crops = None
    c = settings.crop_size
    if c is not None and shape is not None and c < min(shape):
        rows = torch.randint(0, shape[0] - c + 1, (m,), generator=g)
        cols = torch.randint(0, shape[1] - c + 1, (m,), generator=g)
        crops = (rows, cols)
    flips = torch.randint(0, 8, (m,), generator=g) if getattr(settings, "flips", False) else None
    return perm, offsets, crops, flips


def batches_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    """Batches of an epoch of ``n`` items. Without ``drop_last`` a last partial batch of a single
    item joins the one before it (batch norm cannot train on one sample where a layer pools it
    to 1 x 1, as DeepLabV3's image pooling): every item is still seen once."""
    if drop_last:
        return n // batch_size
    nb = math.ceil(n / batch_size)
    return nb - 1 if nb > 1 and n % batch_size == 1 else nb


def batch_slice(b: int, nb: int, n: int, batch_size: int) -> slice:
    """Items of batch ``b`` of ``nb``; the last batch runs to ``n`` (see batches_per_epoch)."""
    return slice(b * batch_size, n if b == nb - 1 else (b + 1) * batch_size)


def learning_rate(settings: Settings, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based, over the whole run)."""
    if settings.lr_schedule == "cosine":
        total = max(1, settings.epochs * steps_per_epoch)
        return settings.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    return settings.lr


def train_epoch(model, data: StoreTensors, opt, scaler, settings: Settings, epoch: int, desc: str):
    model.train()
    torch.manual_seed(derive_seed(settings.seed, 2, epoch))  # dropout of the FCN/DeepLab heads
    perm, offsets, crops, flips = epoch_plan(
        settings, data.n, epoch, data.shape, getattr(data, "steps", 1)
    )
    m = perm.numel()
    if data.on_device:  # one host-to-device copy per epoch, none per batch
        perm = perm.to(data.device)
        offsets = offsets.to(data.device) if offsets is not None else None
    nb = batches_per_epoch(m, settings.batch_size, settings.drop_last)
    total = torch.zeros((), device=data.device, dtype=torch.float64)
    count = torch.zeros((), device=data.device, dtype=torch.float64)
    bs = settings.batch_size
    lr = settings.lr
    for b in tqdm(range(nb), desc=desc, leave=False, disable=None, mininterval=2.0):
        sl = batch_slice(b, nb, m, bs) if not settings.drop_last else slice(b * bs, (b + 1) * bs)
        lr = learning_rate(settings, epoch * nb + b, nb)
        for group in opt.param_groups:
            group["lr"] = lr
        crop = (crops[0][sl].tolist(), crops[1][sl].tolist(), settings.crop_size) if crops else None
        flip = flips[sl].tolist() if flips is not None else None
        x, y, v = data.batch(perm[sl], offsets[sl] if offsets is not None else None, crop, flip)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(data.device.type, dtype=torch.float16, enabled=settings.amp):
            logits = model(x)
        s, c = masked_bce(logits, y, v)
        loss = s / c.clamp_min(1)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        total += s.detach().double()
        count += c.detach().double()
    seen = nb * bs if settings.drop_last else m
    return float(total / count.clamp_min(1)), seen, lr


@torch.no_grad()
def predict_logits(model, data: StoreTensors, batch_size: int, amp: bool = False):
    """Yield (slice, logits) over all samples, in order, without phase offset."""
    model.eval()
    for s in range(0, data.n, batch_size):
        idx = torch.arange(s, min(data.n, s + batch_size))
        x, y, v = data.batch(idx, None)
        with torch.autocast(data.device.type, dtype=torch.float16, enabled=amp):
            logits = model(x)
        yield slice(s, s + len(idx)), logits.float(), y, v


@torch.no_grad()
def predict_store(model, store: dict, device: torch.device, batch_size: int, amp: bool = False):
    """Probabilities (N, H, W) float32 for every sample of ``store`` (or of a multi-temporal
    store: of its targets), no phase offset."""
    n = len(store["sample_id"])
    idx = np.arange(n)
    on_dev = data_on_device("auto", device, StoreTensors.nbytes(store, n))
    data = StoreTensors(store, idx, device, on_dev)
    model = model.to(device)
    out = np.empty((n, *data.shape), dtype=np.float32)
    for sl, logits, _, _ in predict_logits(model, data, batch_size, amp):
        out[sl] = torch.sigmoid(logits)[:, 0].cpu().numpy()
    return out


def choose_thresholds(probs, store: dict, indices: np.ndarray, n_thresholds: int) -> dict:
    """The operating thresholds chosen on a (validation) store's selected samples.

    ``paper``: the candidate maximising the paper convention's F1 (per-image P and R averaged);
    ``pooled``: the probability maximising the pooled-pixel F1 (see :mod:`isslide.metrics`).
    """
    from . import metrics as M

    valid = store["valid"][indices] > 0
    res = M.evaluate_arrays(probs[indices], store["label"][indices] > 0, valid, n_thresholds)
    keep = ("threshold", "f1", "precision", "recall")
    return {
        "n_images": res["n_images"],
        "n_valid_pixels": res["n_valid_pixels"],
        "n_positive_pixels": res["n_positive_pixels"],
        "paper": {k: res["paper"][k] for k in keep},
        "pooled": {k: res["pooled"][k] for k in keep},
    }


def mean_loss(model, data: StoreTensors, batch_size: int, amp: bool) -> float:
    total, count = 0.0, 0.0
    for _, logits, y, v in predict_logits(model, data, batch_size, amp):
        s, c = masked_bce(logits, y, v)
        total += float(s)
        count += float(c)
    return total / max(count, 1.0)


# ----------------------------------------------------------------------------- entry point


STORE_SPLIT = {"training": "train", "validation": "val", "evaluation": "eval"}


def open_store(path: str, split: str, temporal: dict | None = None) -> dict:
    """The store of ``split`` (training, validation, evaluation): ``path`` itself, or with
    ``temporal`` ({"index": temporal.csv, "stores": {stack: stack store}}) the multi-temporal
    samples of that split (:func:`isslide.dataset.temporal.load_temporal`)."""
    if not temporal:
        return read_store(path, mmap=True)
    from .dataset.temporal import load_temporal

    return load_temporal(temporal["index"], STORE_SPLIT[split], dict(temporal["stores"]))


def temporal_inputs(name: str, temporal: dict | None) -> dict | None:
    """``temporal`` for a multi-temporal model (an error when it is missing), None otherwise."""
    if not get_spec(name).temporal:
        return None
    if not temporal or not temporal.get("index") or not temporal.get("stores"):
        raise IsslideError(
            f"training.models: {name} is multi-temporal and needs the temporal index "
            "(results/dataset/ready/temporal.csv) and the stacks' stores; run it from the workflow"
        )
    return temporal


def _check_stores(
    paths: dict, motion_only: bool, eval_motion_only: bool, temporal: dict | None = None
) -> dict:
    """Open every store and check its split before anything is trained (one-line errors)."""
    out = {}
    for split, path in paths.items():
        if path is None:
            continue
        store = open_store(path, split, temporal)
        mo = motion_only if split != "evaluation" else eval_motion_only
        out[split] = (store, select_samples(store, mo, path, split))
    return out


@dataclass
class TrainingRun:
    """What :func:`train_model`'s steps share: the checked stores, settings and paths."""

    name: str
    cfg: dict
    ecfg: dict
    device: torch.device
    settings: Settings
    opened: dict
    steps: int | None
    n_batches: int
    fingerprint: str
    ckpt_dir: str
    ckpt_path: str
    monitor_eval: bool
    val_path: str | None


@dataclass
class TrainingState:
    """The mutable part of a run: the model, its optimiser, history and best epoch."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    history: list = field(default_factory=list)
    best: dict | None = None  # {"epoch", "val_loss", "model"} of the lowest validation loss
    start: int = 0


def setup_training(
    name: str,
    train_path: str,
    model_path: str,
    cfg: dict,
    seed: int,
    eval_path: str | None,
    checkpoint_root: str | None,
    threads: int | None,
    val_path: str | None,
    eval_cfg: dict | None,
    temporal: dict | None,
) -> TrainingRun:
    """Check the config and every store (one-line errors, before anything is trained or
    written) and derive the settings, their fingerprint and the checkpoint paths."""
    cfg = training_config(cfg)
    ecfg = evaluation_config(eval_cfg)
    get_spec(name)  # unknown model: error before anything else
    temporal = temporal_inputs(name, temporal)
    if cfg["select_best"] == "val_loss" and not val_path:
        raise IsslideError("training.select_best: val_loss needs a validation store (val.npz)")
    device = resolve_device(cfg["device"])
    if cfg.get("amp") and device.type != "cuda":
        log.info("training.amp is on but the device is %s: mixed precision is CUDA only", device)
    if threads:
        torch.set_num_threads(int(threads))
    monitor_eval = bool(eval_path) and bool(cfg.get("eval_loss", True))
    opened = _check_stores(
        {"training": train_path, "validation": val_path, "evaluation": eval_path},
        cfg["motion_only"],
        bool(ecfg["motion_only"]),
        temporal,
    )
    store, indices = opened["training"]
    settings = model_settings(name, cfg, seed, device)
    h, w = store["coherence"].shape[-2:]
    steps = int(store["coherence"].shape[1]) if temporal else None
    if temporal:
        settings.data["temporal"] = {"steps": steps}
    if settings.crop_size is not None and settings.crop_size > min(h, w):
        raise IsslideError(
            f"training.crop_size: {settings.crop_size} px is larger than the {w}x{h} px patches; "
            "lower it or set it to null"
        )
    items = len(indices) * settings.crops_per_sample
    nb = batches_per_epoch(items, settings.batch_size, settings.drop_last)
    if nb == 0:
        raise IsslideError(
            f"{train_path}: {len(indices)} training samples, fewer than training.batch_size "
            f"({settings.batch_size}) with drop_last; lower the batch size or add data"
        )
    if "validation" in opened:
        settings.data["val"] = store_identity(opened["validation"][0], val_path)
    if monitor_eval:
        settings.data["eval"] = store_identity(opened["evaluation"][0], eval_path)
    settings.data["train"] = store_identity(store, train_path)
    fp = settings.fingerprint()
    root = checkpoint_root or os.path.join(
        os.path.dirname(os.path.abspath(model_path)), "checkpoints"
    )
    ckpt_dir = os.path.join(root, fp)
    return TrainingRun(
        name=name,
        cfg=cfg,
        ecfg=ecfg,
        device=device,
        settings=settings,
        opened=opened,
        steps=steps,
        n_batches=nb,
        fingerprint=fp,
        ckpt_dir=ckpt_dir,
        ckpt_path=os.path.join(ckpt_dir, "last.pt"),
        monitor_eval=monitor_eval,
        val_path=val_path,
    )


def start_or_resume(run: TrainingRun) -> TrainingState:
    """A fresh model and optimiser (seeded), or the last checkpoint's state when one exists."""
    settings, device = run.settings, run.device
    torch.manual_seed(derive_seed(settings.seed, 0))  # weight initialisation
    model = build_model(run.name, run.cfg.get("weights"), init=True, steps=run.steps).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=settings.betas)
    scaler = torch.amp.GradScaler("cuda", enabled=settings.amp)
    state = TrainingState(model, opt, scaler)
    if not os.path.exists(run.ckpt_path):
        os.makedirs(run.ckpt_dir, exist_ok=True)
        with open(os.path.join(run.ckpt_dir, "settings.json"), "w") as fh:
            json.dump(asdict(settings), fh, indent=1, sort_keys=True)
        return state
    ck = load_checkpoint(run.ckpt_path)
    if ck.get("fingerprint") != run.fingerprint:
        raise IsslideError(f"{run.ckpt_path}: settings hash differs from its folder; delete it")
    if ck["epoch"] > settings.epochs:
        raise IsslideError(
            f"{run.ckpt_path}: this run already reached epoch {ck['epoch']}, beyond the "
            f"{settings.epochs} epochs asked; raise the epochs or delete {run.ckpt_dir}"
        )
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    scaler.load_state_dict(ck["scaler"])
    torch.set_rng_state(ck["rng_cpu"])
    if device.type == "cuda" and ck.get("rng_cuda"):
        torch.cuda.set_rng_state_all(ck["rng_cuda"])
    state.history = list(ck["history"])
    state.best = ck.get("best")
    state.start = int(ck["epoch"])
    log.info("%s: resuming from %s at epoch %d", run.name, run.ckpt_path, state.start)
    return state


def split_tensors(run: TrainingRun) -> tuple:
    """(training, validation or None, evaluation or None) StoreTensors on the run's device."""
    store, indices = run.opened["training"]
    on_dev = data_on_device(
        run.cfg.get("data_on_device", "auto"),
        run.device,
        StoreTensors.nbytes(store, len(indices)),
    )

    def tensors(split):
        if split not in run.opened:
            return None
        st, idx = run.opened[split]
        return StoreTensors(st, idx, run.device, on_dev)

    evaluation = tensors("evaluation") if run.monitor_eval else None
    return tensors("training"), tensors("validation"), evaluation


def run_epoch(run: TrainingRun, state: TrainingState, epoch: int, data, val_data, eval_data):
    """One epoch: train, the validation (and evaluation) loss, the best weights, the history
    row and the resumable checkpoint."""
    settings, model = run.settings, state.model
    eval_bs = 2 * settings.batch_size
    t0 = time.perf_counter()
    loss, seen, lr = train_epoch(
        model, data, state.opt, state.scaler, settings, epoch,
        f"{run.name} {epoch + 1}/{settings.epochs}",
    )  # fmt: skip
    dt = time.perf_counter() - t0
    vl = mean_loss(model, val_data, eval_bs, settings.amp) if val_data else None
    ev = mean_loss(model, eval_data, eval_bs, settings.amp) if eval_data else None
    if vl is not None and (state.best is None or vl < state.best["val_loss"]):
        state.best = {
            "epoch": epoch + 1,
            "val_loss": vl,
            "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        }
    state.history.append(
        {
            "epoch": epoch + 1,
            "train_loss": loss,
            "val_loss": "" if vl is None else vl,
            "eval_loss": "" if ev is None else ev,
            "lr": lr,
            "seconds": round(dt, 4),
            "samples_per_s": round(seen / dt, 3) if dt > 0 else "",
        }
    )
    log.info(
        "%s epoch %d/%d: train loss %.5f%s%s (%.1f s)",
        run.name, epoch + 1, settings.epochs, loss,
        "" if vl is None else f", val loss {vl:.5f}",
        "" if ev is None else f", eval loss {ev:.5f}", dt,
    )  # fmt: skip
    atomic_torch_save(
        {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": run.fingerprint,
            "model_name": run.name,
            "epoch": epoch + 1,
            "model": model.state_dict(),
            "optimizer": state.opt.state_dict(),
            "scaler": state.scaler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if run.device.type == "cuda" else [],
            "history": state.history,
            "best": state.best,
        },
        run.ckpt_path,
    )


def kept_weights_and_thresholds(run: TrainingRun, state: TrainingState) -> tuple[int, dict | None]:
    """Load the kept epoch's weights (``select_best``) and choose the operating thresholds on
    the validation store with them. Returns (kept epoch, thresholds or None)."""
    settings, model = run.settings, state.model
    kept_epoch = settings.epochs
    if run.cfg["select_best"] == "val_loss" and state.best is not None:
        model.load_state_dict(state.best["model"])
        kept_epoch = int(state.best["epoch"])
    if "validation" not in run.opened:
        return kept_epoch, None
    ecfg = run.ecfg
    vstore, _ = run.opened["validation"]
    sel = select_samples(vstore, bool(ecfg["motion_only"]), run.val_path, "validation")
    probs = predict_store(model, vstore, run.device, 2 * settings.batch_size, settings.amp)
    thresholds = {
        "format": THRESHOLDS_FORMAT,
        "model": run.name,
        "chosen_on": "validation",
        "store": run.val_path,
        "epoch": kept_epoch,
        "motion_only": bool(ecfg["motion_only"]),
        "n_thresholds": int(ecfg["n_thresholds"]),
        **choose_thresholds(probs, vstore, sel, int(ecfg["n_thresholds"])),
    }
    log.info(
        "%s: thresholds chosen on %d validation images: paper %.4f (F1 %.4f), "
        "pooled %.4f (F1 %.4f)",
        run.name, thresholds["n_images"], thresholds["paper"]["threshold"],
        thresholds["paper"]["f1"], thresholds["pooled"]["threshold"],
        thresholds["pooled"]["f1"],
    )  # fmt: skip
    return kept_epoch, thresholds


def write_trained(
    run: TrainingRun,
    state: TrainingState,
    kept_epoch: int,
    thresholds: dict | None,
    model_path: str,
    history_path: str,
    thresholds_path: str | None,
) -> None:
    """The final files: thresholds.json, model.pt (weights, settings, thresholds), history."""
    weights = {k: v.detach().cpu() for k, v in state.model.state_dict().items()}
    if thresholds is not None and thresholds_path:
        atomic_write_bytes(thresholds_path, (json.dumps(thresholds, indent=2) + "\n").encode())
    atomic_torch_save(
        {
            "format": MODEL_FORMAT,
            "model_name": run.name,
            "epochs": run.settings.epochs,
            "epoch": kept_epoch,
            "select_best": run.cfg["select_best"],
            "fingerprint": run.fingerprint,
            "settings": json.dumps(asdict(run.settings), sort_keys=True),
            "n_parameters": count_parameters(state.model),
            "steps": run.steps or 1,
            "thresholds": json.dumps(thresholds) if thresholds is not None else "",
            "state_dict": weights,
        },
        model_path,
    )
    write_history(state.history, history_path)


def train_model(
    name: str,
    train_path: str,
    model_path: str,
    history_path: str,
    cfg: dict,
    seed: int,
    eval_path: str | None = None,
    checkpoint_root: str | None = None,
    threads: int | None = None,
    stop_after: int | None = None,
    val_path: str | None = None,
    thresholds_path: str | None = None,
    eval_cfg: dict | None = None,
    temporal: dict | None = None,
) -> dict:
    """Train ``name`` on the store ``train_path``; write ``model_path``, ``history_path`` and,
    with a validation store ``val_path``, ``thresholds_path``.

    ``cfg`` is config ``training``, ``eval_cfg`` config ``evaluation`` (its ``motion_only`` and
    ``n_thresholds`` choose the thresholds as evaluation scores them); ``seed`` the training
    seed. A multi-temporal model also needs ``temporal`` ({"index": temporal.csv, "stores":
    {stack: results/dataset/ready/stacks/{stack}.npz}}): its samples are then the targets of
    ``train_path``'s, ``val_path``'s and ``eval_path``'s splits with their earlier steps.
    Without ``val_path`` no threshold is chosen (the model file then holds none) and
    ``select_best`` must be ``last``. ``stop_after`` ends the run after that many epochs in this
    call without writing the final files (it simulates an interruption, for tests). Returns a
    summary.

    The steps, in order (each a function of this module): :func:`setup_training` (checks,
    settings, checkpoint paths), :func:`start_or_resume`, :func:`split_tensors`,
    :func:`run_epoch` per epoch, :func:`kept_weights_and_thresholds`, :func:`write_trained`.
    """
    run = setup_training(
        name, train_path, model_path, cfg, seed, eval_path, checkpoint_root, threads,
        val_path, eval_cfg, temporal,
    )  # fmt: skip
    settings = run.settings
    with deterministic(run.device):
        state = start_or_resume(run)
        data, val_data, eval_data = split_tensors(run)
        log.info(
            "%s: %d parameters, %d training samples x %d crop(s) of %s px (%d batches of %d), "
            "%s validation samples, device %s, lr %g (%s), epochs %d, data on device: %s",
            name, count_parameters(state.model), data.n, settings.crops_per_sample,
            settings.crop_size or "whole", run.n_batches, settings.batch_size,
            val_data.n if val_data else "no", run.device, settings.lr, settings.lr_schedule,
            settings.epochs, data.on_device,
        )  # fmt: skip
        done_here = 0
        for epoch in range(state.start, settings.epochs):
            run_epoch(run, state, epoch, data, val_data, eval_data)
            done_here += 1
            if stop_after is not None and done_here >= stop_after and epoch + 1 < settings.epochs:
                return {"interrupted": True, "epoch": epoch + 1, "checkpoint": run.ckpt_path}
        kept_epoch, thresholds = kept_weights_and_thresholds(run, state)
    write_trained(run, state, kept_epoch, thresholds, model_path, history_path, thresholds_path)
    return {
        "interrupted": False,
        "epoch": settings.epochs,
        "kept_epoch": kept_epoch,
        "checkpoint": run.ckpt_path,
        "n_train": data.n,
        "device": str(run.device),
        "thresholds": thresholds,
    }


def model_thresholds(info: dict, path: str) -> dict:
    """The validation thresholds embedded in a model file's dict (``load_trained``)."""
    raw = info.get("thresholds") or ""
    if not raw:
        raise IsslideError(
            f"{path}: the model holds no validation thresholds (trained without val.npz); "
            "rerun the train rule"
        )
    return json.loads(raw)


def load_trained(model_path: str, weights_cfg: dict | None = None):
    """(model on CPU in eval mode, the model file's dict) from ``model.pt``."""
    if not os.path.exists(model_path):
        raise IsslideError(f"{model_path}: trained model not found; run the train rule")
    obj = load_checkpoint(model_path)
    if obj.get("format") != MODEL_FORMAT:
        raise IsslideError(f"{model_path}: not a trained isslide model file")
    model = build_model(obj["model_name"], weights_cfg, init=False, steps=obj.get("steps"))
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as exc:
        msg = " ".join(str(exc).split())[:160]
        raise IsslideError(
            f"{model_path}: weights do not fit {obj['model_name']} ({msg})"
        ) from None
    return model.eval(), obj
