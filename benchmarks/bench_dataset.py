"""Benchmark: the dataset stage at ISSLIDE scale, and reading the training store.

Synthetic inputs in a temporary directory: one stack of 54 interferograms (20 dates, delays
6/12/18 days) of 3000 x 3000 px, about 200 moving areas, about 13,000 patches of 100 x 100 px.
Timed, as Snakemake schedules the rules on 2 cores: rasterize_labels (54 jobs, 2 at a time);
patch_centres beside raw_dataset; extract_patches (2 threads); assemble_dataset ->
dataset_manifest beside isslide_layout. CPU seconds per stage are reported too (the machine
may be shared: wall times then exceed what 2 idle cores give).
Then reading ``train.npz``: whole-store load and random mini-batches from the memory map.

    python benchmarks/bench_dataset.py [--size 3000] [--areas 200] [--keep DIR]

Targets (issue 6): dataset < 60 s on 2 cores, memory bounded by a few interferograms,
store reading >= 20,000 samples/s. Prints the figures and writes benchmarks/results_dataset.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

from isslide.dataset.centres import compute_centres, write_centres
from isslide.dataset.isslide import write_layout
from isslide.dataset.patches import assemble, extract_stack_patches
from isslide.dataset.raw import build_raw, write_manifest
from isslide.dataset.store import read_store
from isslide.dataset.synthetic import make_pairs, make_stack
from isslide.labels import rasterize_labels

HERE = os.path.dirname(os.path.abspath(__file__))


def _generate(root, size, areas, seed):
    pairs = make_pairs("2018-07-02", 20, (6, 12, 18))
    stack = make_stack(
        root,
        "alps",
        pairs=pairs,
        height=size,
        width=size,
        n_areas=areas,
        seed=seed,
        area_px=(8, 32),
        active=0.75,
    )
    return [{k: v for k, v in p.items() if k != "active"} for p in stack["pairs"]], stack[
        "transform"
    ]


def _rasterize(p):
    import logging

    logging.disable(logging.WARNING)
    rasterize_labels(p["annotation"], p["layover_shadow"], p["coherence"], p["label"])
    return _peak_mib()


def _side(what, *args):
    """A job running beside the main process (another Snakemake job on the second core)."""
    import logging

    logging.disable(logging.WARNING)
    if what == "raw":
        build_raw(*args)
    else:
        write_layout(*args)
    return _peak_mib()


def _peak_mib():
    """This process's own peak resident memory (VmHWM; ru_maxrss survives exec in a spawned
    child, so it would report the parent's peak)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def mib(kb):
    return round(kb / 1024, 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=3000)
    ap.add_argument("--areas", type=int, default=200)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="build in this directory and keep it")
    ap.add_argument("--out", default=os.path.join(HERE, "results_dataset.json"))
    args = ap.parse_args(argv)
    root = args.keep or tempfile.mkdtemp(prefix="bench_dataset_")
    os.makedirs(root, exist_ok=True)
    try:
        t = time.perf_counter()
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as ex:  # keep our RSS clean
            pairs, transform = ex.submit(_generate, root, args.size, args.areas, args.seed).result()
        gen_s = time.perf_counter() - t
        print(
            f"generated {len(pairs)} interferograms of {args.size}x{args.size} px in {gen_s:.1f} s ({root})"
        )
        x0, y0 = transform.c, transform.f
        x1 = x0 + transform.a * args.size
        y1 = y0 + transform.e * args.size
        split_x = x0 + 0.7 * (x1 - x0)
        zones = {
            "vanoise": {"bbox": [x0 - 1, y1 - 1, split_x, y0 + 1], "role": "train"},
            "queyras": {"bbox": [split_x, y1 - 1, x1 + 1, y0 + 1], "role": "evaluation"},
        }
        ready = os.path.join(root, "results/dataset/ready")
        centres_path = os.path.join(root, "results/dataset/centres/alps.gpkg")
        stages = {}
        peaks = {}

        cpu = {}
        last = [time.process_time(), _children_cpu()]

        def done(name, since):
            stages[name] = time.perf_counter() - since
            now = [time.process_time(), _children_cpu()]
            cpu[name] = round(now[0] - last[0] + now[1] - last[1], 2)
            last[:] = now
            peaks[name] = _peak_mib()
            print(f"{name}: {stages[name]:.2f} s, peak RSS so far {peaks[name]} MiB", flush=True)
            return time.perf_counter()

        store_path = os.path.join(ready, "stacks/alps.npz")
        stack_index = os.path.join(ready, "stacks/alps.csv")
        raw_dir = os.path.join(root, "results/dataset/raw/alps")
        spawn = get_context("spawn")
        t0 = time.perf_counter()
        t = t0
        with ProcessPoolExecutor(args.cores, mp_context=spawn) as ex:
            rss_jobs = list(ex.map(_rasterize, pairs))
        t = done(f"rasterize_labels ({len(pairs)} jobs, {args.cores} at a time)", t)
        # as Snakemake schedules them on 2 cores: raw_dataset (1 thread) beside patch_centres
        with ProcessPoolExecutor(1, mp_context=spawn) as side:
            raw_job = side.submit(_side, "raw", "alps", pairs, raw_dir)
            centres, _ = compute_centres([p["label"] for p in pairs], "alps", zones, 10)
            write_centres(centres, centres_path)
            side_rss = [raw_job.result()]
        t = done("patch_centres | raw_dataset (side by side)", t)
        index = extract_stack_patches(
            "alps", centres_path, pairs, 100, store_path, stack_index, threads=args.cores
        )
        t = done("extract_patches (2 threads)", t)
        # isslide_layout (1 thread) beside assemble_dataset -> dataset_manifest
        with ProcessPoolExecutor(1, mp_context=spawn) as side:
            layout_job = side.submit(
                _side,
                "layout",
                store_path,
                stack_index,
                pairs[0]["label"],
                os.path.join(ready, "isslide/alps"),
                os.path.join(ready, "isslide/alps/patches.csv"),
            )
            stacks = {"alps": {"store": store_path, "index": stack_index}}
            assemble(
                stacks,
                os.path.join(ready, "train.npz"),
                os.path.join(ready, "eval.npz"),
                os.path.join(ready, "index.csv"),
                0.2,
                0,
            )
            counts = write_manifest(
                os.path.join(ready, "index.csv"),
                [raw_dir],
                {"alps": centres_path},
                os.path.join(root, "results/dataset/manifest.json"),
                os.path.join(root, "results/dataset/manifest.csv"),
            )
            side_rss.append(layout_job.result())
        done("assemble_dataset -> dataset_manifest | isslide_layout (side by side)", t)
        total = time.perf_counter() - t0
        rss_main = _peak_mib()
        ifg_mib = args.size * args.size * (4 + 4 + 4 + 1) / 2**20

        # --- reading the training store
        train = os.path.join(ready, "train.npz")
        loads = []
        for _ in range(3):  # the first read may find the file out of the page cache
            t = time.perf_counter()
            store = read_store(train)
            loads.append(time.perf_counter() - t)
            n = len(store["sample_id"])
            del store
        mm = read_store(train, mmap=True)
        rng = np.random.default_rng(0)
        order = rng.permutation(n)
        t = time.perf_counter()
        seen = 0
        for s in range(0, n, 64):
            idx = np.sort(order[s : s + 64])
            batch = {k: np.asarray(mm[k][idx]) for k in ("coherence", "phase", "label", "valid")}
            seen += len(batch["label"])
        batch_s = time.perf_counter() - t
        results = {
            "machine": f"{os.cpu_count()} CPU cores (shared with other users: timings are noisy)",
            "inputs": {
                "interferograms": len(pairs),
                "size_px": args.size,
                "areas": args.areas,
                "centres": int(len(centres)),
                "samples": int(len(index)),
                "samples_with_motion": int(counts["samples_with_motion"]),
                "train_samples": int(counts["train"]["samples"]),
                "eval_samples": int(counts["eval"]["samples"]),
                "generation_s": round(gen_s, 1),
            },
            "stages_s": {k: round(v, 2) for k, v in stages.items()},
            "dataset_total_s": round(total, 2),
            "cpu_s_per_stage (user+sys, all processes)": cpu,
            "cpu_s_total": round(sum(cpu.values()), 2),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "target_s": 60,
            "peak_rss_mib_after_stage (main process: centres, patches, assemble, manifest; imports alone ~170 MiB)": peaks,
            "peak_rss_mib": {
                "centres+patches+assemble+manifest process": rss_main,
                "largest rasterize job": max(rss_jobs),
                "raw_dataset job, isslide_layout job": side_rss,
                "one interferogram (coherence+phase+label+layover) in memory": round(ifg_mib, 1),
            },
            "store_read": {
                "samples": n,
                "whole_store_load_samples_per_s (first, best of 3)": [
                    round(n / loads[0]),
                    round(n / min(loads)),
                ],
                "random_batches_of_64_from_mmap_samples_per_s": round(seen / batch_s),
                "target_samples_per_s": 20000,
            },
        }
        print(json.dumps(results, indent=2))
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)
            fh.write("\n")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
