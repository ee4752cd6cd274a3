"""Training throughput per model, and the data pipeline's overhead.

For each model, on synthetic data of the store's layout (coherence, phase, label, valid):

* ``pipeline`` step: a batch built as training builds it (indexing in the store's tensors with
  the epoch permutation, random phase offset, cos/sin channels, invalid pixels zeroed), then
  forward, masked BCE, backward and an Adam step;
* ``reference`` step: the same optimisation step on a batch built beforehand and already in
  device memory (the floor any data pipeline can reach);
* one whole epoch through ``isslide.train.train_epoch``.

Pipeline and reference steps are timed one by one, interleaved, ``--repeats`` passes over the
epoch's batches; medians and minima are compared (minima resist load from other processes).
Reports samples/s, time per epoch, the pipeline/reference step-time ratio (target <= 1.10) and
the time of the paper's protocol per 1000 training samples (epochs of the model's family x
1000 / samples per second). Prints a table and writes benchmarks/results_train.json.

    python benchmarks/bench_train.py                       # shallow nets, CPU or GPU (auto)
    python benchmarks/bench_train.py --models fcn_s deeplabv3_s --samples 16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch

from isslide.models import build_model, count_parameters, get_spec
from isslide.train import (
    Settings,
    StoreTensors,
    masked_bce,
    resolve_device,
    train_epoch,
    training_config,
)


def synthetic_store(n: int, size: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    label = (rng.random((n, size, size)) < 0.1).astype(np.uint8)
    return {
        "coherence": rng.random((n, size, size), dtype=np.float32),
        "phase": rng.uniform(-np.pi, np.pi, (n, size, size)).astype(np.float32),
        "label": label,
        "valid": (rng.random((n, size, size)) > 0.02).astype(np.uint8),
        "sample_id": np.arange(n),
    }


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_model(name, store, device, batch_size, repeats, amp):
    cfg = training_config({})
    family = cfg[get_spec(name).family]
    torch.manual_seed(0)
    model = build_model(name, {}, init=False).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=family["lr"], betas=(0.5, 0.999))
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    settings = Settings(
        model=name, epochs=1, lr=family["lr"], batch_size=batch_size, drop_last=True,
        betas=(0.5, 0.999), motion_only=True, phase_offset=True, seed=0, amp=use_amp,
        device=device.type, eval_loss=False,
    )  # fmt: skip
    n = len(store["sample_id"])
    data = StoreTensors(store, np.arange(n), device, True)
    steps = n // batch_size
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(n, generator=g)
    off = torch.rand(n, generator=g) * 2 * np.pi
    prebuilt = [
        data.batch(
            perm[i * batch_size : (i + 1) * batch_size], off[i * batch_size : (i + 1) * batch_size]
        )
        for i in range(steps)
    ]

    def step(x, y, v):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            logits = model(x)
        s, c = masked_bce(logits, y, v)
        scaler.scale(s / c.clamp_min(1)).backward()
        scaler.step(opt)
        scaler.update()

    def timed(fn):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        return time.perf_counter() - t0

    model.train()
    # Steps are timed one by one, pipeline and reference interleaved, so that load from other
    # processes hits both alike; medians and minima of the per-step times are compared.
    t_pipe, t_ref, t_batch = [], [], []
    for k in range(-2, repeats * steps):  # two warm-up rounds
        i = k % steps
        sl = slice(i * batch_size, (i + 1) * batch_size)
        tp = timed(lambda sl=sl: step(*data.batch(perm[sl], off[sl])))
        tr = timed(lambda i=i: step(*prebuilt[i]))
        tb = timed(lambda sl=sl: data.batch(perm[sl], off[sl]))
        if k >= 0:
            t_pipe.append(tp)
            t_ref.append(tr)
            t_batch.append(tb)
    t_epoch = timed(lambda: train_epoch(model, data, opt, scaler, settings, 1, name))
    med_p, med_r = statistics.median(t_pipe), statistics.median(t_ref)
    sps = batch_size / med_p
    return {
        "model": name,
        "parameters": count_parameters(model),
        "samples": n,
        "steps_timed": len(t_pipe),
        "epoch_s": round(t_epoch, 4),
        "step_ms_median": round(1000 * med_p, 3),
        "reference_step_ms_median": round(1000 * med_r, 3),
        "step_ms_min": round(1000 * min(t_pipe), 3),
        "reference_step_ms_min": round(1000 * min(t_ref), 3),
        "batch_build_ms_median": round(1000 * statistics.median(t_batch), 3),
        "ratio_median": round(med_p / med_r, 4),
        "ratio_min": round(min(t_pipe) / min(t_ref), 4),
        "samples_per_s": round(sps, 2),
        "paper_epochs": family["epochs"],
        "paper_protocol_h_per_1000_samples": round(family["epochs"] * 1000 / sps / 3600, 3),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["unet", "resunet", "sepunet"])
    ap.add_argument("--samples", type=int, default=64, help="samples per epoch")
    ap.add_argument("--size", type=int, default=100, help="patch side (ISSLIDE: 100)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results_train.json"))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    store = synthetic_store(args.samples, args.size)
    rows = []
    for name in args.models:
        row = bench_model(name, store, device, args.batch_size, args.repeats, args.amp)
        rows.append(row)
        print(
            f"{name:12s} {row['parameters']:>10d} params {row['samples_per_s']:8.1f} samples/s"
            f"  epoch {row['epoch_s']:.2f} s ({row['samples']} samples)"
            f"  step {row['step_ms_median']:.1f} ms (min {row['step_ms_min']:.1f})"
            f"  prebuilt {row['reference_step_ms_median']:.1f} ms (min {row['reference_step_ms_min']:.1f})"
            f"  ratio median {row['ratio_median']:.3f} min {row['ratio_min']:.3f}"
            f"  batch build {row['batch_build_ms_median']:.2f} ms"
            f"  paper protocol {row['paper_protocol_h_per_1000_samples']:.2f} h/1000 samples",
            flush=True,
        )
    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "size": args.size,
        "batch_size": args.batch_size,
        "amp": bool(args.amp and device.type == "cuda"),
        "note": "per-step times, pipeline and prebuilt interleaved; shared machines give noisy figures",
        "models": rows,
    }
    tmp = args.out + ".part"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
