"""Training throughput per model, and the data pipeline's overhead.

For each model, on synthetic data of the store's layout (coherence, phase, label, valid):

* ``pipeline``: one epoch through ``isslide.train.train_epoch`` (seeded permutation, batch
  indexing in the tensors of the store, random phase offset, cos/sin channels, masked BCE, Adam);
* ``reference``: the same number of optimisation steps over batches built beforehand and already
  in device memory (the floor any data pipeline can reach).

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

    def reference():
        model.train()
        for x, y, v in prebuilt:
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                logits = model(x)
            s, c = masked_bce(logits, y, v)
            scaler.scale(s / c.clamp_min(1)).backward()
            scaler.step(opt)
            scaler.update()

    def pipeline(epoch):
        train_epoch(model, data, opt, scaler, settings, epoch, name)

    pipeline(0)  # warm-up (allocations, cuDNN/oneDNN kernels)
    reference()
    t_pipe, t_ref = [], []
    for r in range(repeats):
        for which, out in (("pipeline", t_pipe), ("reference", t_ref)):
            sync(device)
            t0 = time.perf_counter()
            pipeline(r + 1) if which == "pipeline" else reference()
            sync(device)
            out.append(time.perf_counter() - t0)
    tp, tr = statistics.median(t_pipe), statistics.median(t_ref)
    sps = steps * batch_size / tp
    return {
        "model": name,
        "parameters": count_parameters(model),
        "samples": n,
        "steps_per_epoch": steps,
        "epoch_s": round(tp, 4),
        "reference_epoch_s": round(tr, 4),
        "step_ms": round(1000 * tp / steps, 3),
        "reference_step_ms": round(1000 * tr / steps, 3),
        "pipeline_over_reference": round(tp / tr, 4),
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
            f"{name:12s} {row['parameters']:>10d} params  {row['samples_per_s']:9.1f} samples/s  "
            f"epoch {row['epoch_s']:.3f} s ({row['samples']} samples)  step {row['step_ms']:.1f} ms"
            f"  vs prebuilt {row['reference_step_ms']:.1f} ms  ratio {row['pipeline_over_reference']:.3f}"
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
        "note": "median of --repeats epochs; shared machines give noisy figures",
        "models": rows,
    }
    tmp = args.out + ".part"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
