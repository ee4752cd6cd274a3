"""Cluster execution: the SLURM profile (always dry-run) and a real single-node SLURM cluster.

The dry-run tests run in the normal suite: a mistyped profile key, rule name or resource name
fails here instead of on a cluster.

The ``slurm``-marked tests start a real Slurm (Debian's slurm-wlm + munge, slurmctld and slurmd
on localhost, no accounting database) with ``tests/slurm/start.sh`` and stop it afterwards with
``tests/slurm/stop.sh``. They run the tiny workflow through ``profiles/slurm`` up to the
ready-to-use dataset and one short training job, cancel a running job with ``scancel``, check
that it left no output that looks complete and that a rerun does only the missing work, and
compare every output with a local run's (tolerance 0; the only exception is the training
history's wall-clock columns, see ``assert_same``).

On the 2-core test node the profile's requests are capped to the node, as a user would for a
small cluster: on the command line ``--cores 2 --max-threads 1`` (one CPU per job, so two jobs
run side by side; the local reference run uses the same ``--max-threads 1`` so every job has the
same thread count in both runs) and ``--resources mem_mb=<node memory> gpu=1`` (for the SLURM
executor mem_mb caps each job); and ``cpus_per_gpu`` capped to 1 in a copy of the profile (the
job step's srun reads it from the profile, so it cannot be capped on the command line). The node
advertises one GPU GRES backed by /dev/null, so the profile's ``--gpus=1`` requests on
partition ``gpu`` are scheduled unchanged; training runs on the CPU (tiny.yaml's
training.device is cpu).

To keep CI short, the cluster runs tiny.yaml with its acquisitions cut to four and delays to
[6] (3 interferograms instead of 5: one each for evaluation, validation and training) and
training.batch_size 1: every rule of the path still runs.

Skips (with the reason printed) only where the cluster cannot be started: not root, or Slurm is
not installed and apt-get is unavailable. With CI=true these are failures, never skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from workflow_utils import copy_repo, job_counts, snakemake

from isslide.insar import STEPS

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
WORKSTATION = REPO / "profiles" / "workstation"
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SLURM_DIR = REPO / "tests" / "slurm"
STATE = Path("/var/lib/isslide-slurm")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Resources the SLURM executor plugin (2.x) turns into sbatch options, and Snakemake's own.
SLURM_RESOURCES = {
    "slurm_partition",
    "slurm_account",
    "runtime",
    "mem_mb",
    "mem_mb_per_cpu",
    "mem",
    "cpus_per_task",
    "cpus_per_gpu",
    "gpu",
    "gpu_model",
    "gres",
    "tasks",
    "tasks_per_gpu",
    "nodes",
    "constraint",
    "qos",
    "slurm_extra",
    "mpi",
    "disk_mb",
    "tmpdir",
    "clusters",
}
INSAR_RULES = tuple(STEPS)
IFG_DIR = "results/interferograms"


def dry_run_jobs(output: str) -> list[tuple[str, dict, int]]:
    """(rule, resources, threads) of every job block of a dry run's output."""
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\n)", output):
        m = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if not m:
            continue
        res = {}
        rm = re.search(r"^\s+resources: (.*)$", block, re.M)
        if rm:
            for item in rm.group(1).split(", "):
                key, _, value = item.partition("=")
                res[key] = value
        tm = re.search(r"^\s+threads: (\d+)$", block, re.M)
        jobs.append((m.group(1), res, int(tm.group(1)) if tm else 1))
    return jobs


def load_profile(path: Path | None = None) -> dict:
    return yaml.safe_load(((path or PROFILE) / "config.yaml").read_text())


def workflow_rules(cwd=REPO, *extra) -> set[str]:
    out = snakemake("--list-rules", *extra, cwd=cwd).stdout
    return {line.strip() for line in out.splitlines() if re.fullmatch(r"\s*\w+\s*", line)}


# ------------------------------------------------------------------------------------------------
# Always: the profiles, dry-run.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [None, TINY], ids=["demo", "tiny"])
def test_slurm_profile_dry_run(config):
    """`snakemake -n --profile profiles/slurm` plans the whole workflow (a bad key fails here)."""
    args = ["-n", "--profile", str(PROFILE)] + (["--configfile", str(config)] if config else [])
    out = snakemake(*args, cwd=REPO).stdout
    jobs = dry_run_jobs(out)
    counts = job_counts(out)
    assert counts.get("terrain_correct", 0) > 0 and counts.get("train", 0) > 0, out[-3000:]
    profile = load_profile()
    by_rule: dict[str, list[dict]] = {}
    for rule, res, _ in jobs:
        by_rule.setdefault(rule, []).append(res)
    # Every job lands on the partition the profile gives it, with the profile's requests.
    for rule, resources in by_rule.items():
        wanted = {**profile["default-resources"], **profile["set-resources"].get(rule, {})}
        for res in resources:
            if "group" in res:
                continue
            assert res.get("slurm_partition") == str(wanted["slurm_partition"]), (rule, res)
            for key in ("mem_mb", "runtime", "gpu", "cpus_per_gpu"):
                if key in profile["set-resources"].get(rule, {}):
                    assert res.get(key) == str(wanted[key]), (rule, key, res)
    for rule in ("train", "evaluate"):
        for res in by_rule[rule]:
            assert res["gpu"] == "1" and res["slurm_partition"] == "gpu", (rule, res)


def test_slurm_profile_names_exist():
    """Snakemake ignores unknown rule and resource names in set-resources/groups: check them."""
    profile = load_profile()
    rules = workflow_rules()
    assert profile["executor"] == "slurm"
    for key in ("set-threads", "set-resources", "groups"):
        unknown = set(profile.get(key, {})) - rules
        assert not unknown, f"profiles/slurm: {key} names rules the workflow lacks: {unknown}"
    for rule, res in profile["set-resources"].items():
        unknown = set(res) - SLURM_RESOURCES
        assert not unknown, f"profiles/slurm: set-resources {rule}: unknown resources {unknown}"
    unknown = set(profile["default-resources"]) - SLURM_RESOURCES
    assert not unknown, f"profiles/slurm: default-resources: unknown resources {unknown}"
    assert set(profile["group-components"]) == set(profile["groups"].values())
    for rule in INSAR_RULES:  # every heavy InSAR step has its own threads and memory
        assert rule in profile["set-threads"] and "mem_mb" in profile["set-resources"][rule]
    for rule in ("train", "evaluate"):
        res = profile["set-resources"][rule]
        assert res["gpu"] == 1 and res["cpus_per_gpu"] >= 1
        assert res["slurm_partition"] != profile["default-resources"]["slurm_partition"]


def test_workstation_profile_and_no_default_slurm():
    """Local runs never go to SLURM by default; the workstation profile limits GPU jobs."""
    for default in (
        REPO / "profiles" / "default",
        Path.home() / ".config" / "snakemake" / "default",
    ):
        cfg = default / "config.yaml"
        if cfg.exists():
            assert (yaml.safe_load(cfg.read_text()) or {}).get("executor") in (None, "local"), cfg
    ws = load_profile(WORKSTATION)
    assert "executor" not in ws and ws["resources"]["gpu"] >= 1 and ws["cores"] >= 1
    out = snakemake("-n", "--profile", str(WORKSTATION), "--configfile", str(TINY), cwd=REPO).stdout
    assert job_counts(out).get("train", 0) > 0


# ------------------------------------------------------------------------------------------------
# A real single-node Slurm.
# ------------------------------------------------------------------------------------------------


def _cannot_run_cluster() -> str | None:
    if os.geteuid() != 0:
        return "not root: starting slurmctld/slurmd and installing slurm-wlm need root"
    if not (shutil.which("slurmctld") and shutil.which("munged")) and not shutil.which("apt-get"):
        return "slurm-wlm/munge are not installed and apt-get is unavailable"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')"
    return None


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text()), 0)
        return True
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def cluster():
    """Start the cluster (tests/slurm/start.sh); stop it afterwards if this fixture started it."""
    reason = _cannot_run_cluster()
    if reason:
        print(f"\ntests/test_slurm.py: cannot run the real-Slurm tests: {reason}", file=sys.stderr)
        if IN_CI:
            pytest.fail(f"CI=true but the real-Slurm tests cannot run: {reason}")
        pytest.skip(reason)
    was_up = _alive(STATE / "slurmctld.pid") and _alive(STATE / "slurmd.pid")
    proc = subprocess.run(
        ["bash", str(SLURM_DIR / "start.sh")], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        pytest.fail(f"tests/slurm/start.sh failed:\n{proc.stdout}\n{proc.stderr}")
    node = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%c %m %G"], capture_output=True, text=True, check=True
    ).stdout.split()
    info = {"cpus": int(node[0]), "mem_mb": int(node[1]), "gres": node[2]}
    partitions = set(
        subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True).stdout.split()
    )
    profile = load_profile()
    wanted = {profile["default-resources"]["slurm_partition"]} | {
        r["slurm_partition"] for r in profile["set-resources"].values() if "slurm_partition" in r
    }
    assert wanted <= partitions, f"the test cluster lacks partitions {wanted - partitions}"
    yield info
    if not was_up and not os.environ.get("ISSLIDE_KEEP_SLURM"):
        subprocess.run(["bash", str(SLURM_DIR / "stop.sh")], timeout=120)


def small_tiny_config(dest: Path) -> tuple[Path, str]:
    """tiny.yaml with four acquisitions and delays [6]: 3 interferograms (one each for
    evaluation, validation and training). Returns (path, model)."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["dates"]["end"] = "2018-07-20"
    cfg["delays"] = [6]
    # Fewer interferograms give fewer training patches than tiny.yaml's batch size.
    cfg["training"] = {**(cfg.get("training") or {}), "batch_size": 1}
    path = dest / "tests" / "configs" / "tiny-slurm.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    sys.path.insert(0, str(REPO / "src"))
    from isslide.config import load_config

    model = load_config(path)["training"]["models"][0]
    return path, model


def targets(model: str) -> list[str]:
    ready = "results/dataset/ready"
    return [
        f"{ready}/train.npz",
        f"{ready}/eval.npz",
        f"{ready}/index.csv",
        "results/dataset/manifest.json",
        f"results/models/{model}/model.pt",
    ]


def node_profile(dest: Path, cpus: int) -> Path:
    """profiles/slurm with cpus_per_gpu capped to `cpus`, the one request that cannot be capped
    on the command line (the job step's srun takes it from the profile); nothing else changes."""
    profile = load_profile()
    for res in profile["set-resources"].values():
        if "cpus_per_gpu" in res:
            res["cpus_per_gpu"] = min(res["cpus_per_gpu"], cpus)
    path = dest / "slurm-node-profile"
    path.mkdir(exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


def cluster_args(info: dict, config: Path) -> list[str]:
    return [
        "--profile",
        str(node_profile(config.parents[2], 1)),
        "--configfile",
        str(config),
        "--slurm-status-command",
        "squeue",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--cores",
        "2",
        "--max-threads",
        "1",
        "--resources",
        f"mem_mb={info['mem_mb']}",
        "gpu=1",
    ]


def squeue_all() -> list[dict]:
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%P|%T|%k"], capture_output=True, text=True
    ).stdout
    keys = ("id", "partition", "state", "comment")
    return [
        dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines() if line.strip()
    ]


CANCELLED_RULE = "terrain_correct"  # writes the final interferogram GeoTIFFs


def run_and_cancel(cmd, cwd: Path, rule: str, timeout: float = 900):
    """Run Snakemake; scancel the first job of `rule` once its code runs (its log exists).

    Returns (return code, the cancelled job's squeue fields, its pair (delay, ref, sec), log).
    """
    before = {j["id"] for j in squeue_all()}
    pattern = re.compile(rf"rule_{rule}_wildcards_(\w+)_(\d+)_(\d{{8}})_(\d{{8}})")
    logfile = cwd / "run1.log"
    cancelled = pair = None
    with open(logfile, "w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if cancelled is None:
                for job in squeue_all():
                    m = pattern.fullmatch(job["comment"])
                    if job["id"] in before or job["state"] != "RUNNING" or not m:
                        continue
                    stack, delay, ref, sec = m.groups()
                    if (cwd / f"logs/{rule}/{stack}/{delay}d/{ref}_{sec}.log").exists():
                        # The rule's code has started (it opened its log): kill it mid-work.
                        subprocess.run(["scancel", job["id"]], check=True)
                        cancelled, pair = job, (delay, ref, sec)
                        break
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            raise AssertionError(f"snakemake on SLURM ran past {timeout} s")
    return proc.returncode, cancelled, pair, logfile.read_text()


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The local reference run (in the background, it uses the CPU the cluster's job chains
    leave idle) and, on SLURM: run 1 (retries 0) with a running terrain_correct job cancelled,
    the dry run after it, run 2 (the rerun) and a last dry run."""
    before = {j["id"] for j in squeue_all()}
    local = copy_repo(tmp_path_factory.mktemp("local"))
    config, model = small_tiny_config(local)
    local_log = open(local / "local.log", "w")
    local_proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snakemake",
            *targets(model),
            "--cores",
            "2",
            "--max-threads",
            "1",
            "--resources",
            "gpu=1",
            "--configfile",
            str(config),
        ],
        cwd=local,
        stdout=local_log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        work = copy_repo(tmp_path_factory.mktemp("slurm"))
        config, model = small_tiny_config(work)
        args = [*targets(model), *cluster_args(cluster, config)]
        rc1, cancelled, pair, log1 = run_and_cancel(
            [sys.executable, "-m", "snakemake", *args, "--retries", "0"], work, CANCELLED_RULE
        )
        assert cancelled is not None, f"no {CANCELLED_RULE} job was seen running:\n{log1[-4000:]}"
        dry = snakemake("-n", *args, cwd=work).stdout
        snapshot = {p: p.stat().st_mtime_ns for p in (work / "results").rglob("*") if p.is_file()}
        run2 = snakemake(*args, cwd=work, timeout=900)
        after = snakemake("-n", *args, cwd=work).stdout
        jobs = [j for j in squeue_all() if j["id"] not in before]
    finally:
        try:
            local_proc.wait(timeout=1200)
        finally:
            local_log.close()
    local_out = (local / "local.log").read_text()
    assert local_proc.returncode == 0, f"the local reference run failed:\n{local_out[-6000:]}"
    return {
        "work": work,
        "local": local,
        "model": model,
        "rc1": rc1,
        "log1": log1,
        "cancelled": cancelled,
        "pair": pair,
        "dry": dry,
        "snapshot": snapshot,
        "log2": run2.stdout + run2.stderr,
        "after": after,
        "jobs": jobs,
    }


@pytest.mark.slurm
def test_cancelled_job_leaves_no_complete_output(runs):
    r = runs
    delay, ref, sec = r["pair"]
    pair = f"tiny/{delay}d/{ref}_{sec}"
    assert r["rc1"] != 0, "snakemake reported success although one of its jobs was cancelled"
    assert f"Error in rule {CANCELLED_RULE}" in r["log1"], r["log1"][-4000:]
    job = next(j for j in r["jobs"] if j["id"] == r["cancelled"]["id"])
    assert job["state"] == "CANCELLED", job
    # Nothing of the cancelled pair's interferogram or labels existed after run 1 (the files
    # present then are the snapshot); only its multilooked product, a temp() input, waited.
    leftovers = [p for p in r["snapshot"] if pair in str(p) and p.name != "multilooked.tif"]
    assert not leftovers, f"the cancelled job left outputs: {leftovers}"
    # The dry run after it schedules exactly that job and what depends on it.
    counts = job_counts(r["dry"])

    # rasterize_labels jobs run as one group job, which waited for the cancelled pair.
    def is_label(p: Path) -> bool:
        return "labels" in p.parts and p.suffix == ".tif"

    labels = [p for p in r["snapshot"] if is_label(p)]
    # Every annotated interferogram gets one label raster: the local run's count is the total.
    total = sum(is_label(p) for p in (r["local"] / "results").rglob("*.tif"))
    assert total >= 1 and len(labels) < total, (labels, total)
    expected = {CANCELLED_RULE: 1, "rasterize_labels": total - len(labels), "train": 1}
    for rule, n in expected.items():
        assert counts.get(rule) == n, (rule, counts)
    upstream = ("simulate_scene", "simulate_acquisition", "simulate_annotations", *INSAR_RULES[:-1])
    assert not set(upstream) & set(counts), counts
    assert f"{IFG_DIR}/{pair}/phase.tif" in r["dry"], r["dry"][-3000:]
    # keep-going: every other interferogram was finished in run 1 (the local run has them all).
    others = [p for p in r["snapshot"] if p.name == "phase.tif" and pair not in str(p)]
    pairs = list((r["local"] / "results" / "interferograms").rglob("phase.tif"))
    assert len(pairs) >= 2 and len(others) == len(pairs) - 1, (others, pairs)


@pytest.mark.slurm
def test_rerun_completes_only_missing_work(runs):
    r = runs
    ran, planned = job_counts(r["log2"]), job_counts(r["dry"])
    assert ran and ran == planned, (ran, planned)
    assert "Nothing to be done" in r["after"], r["after"][-2000:]
    # Files finished in run 1 were not rewritten by run 2 (temp() inputs it consumed are gone).
    for path, mtime in r["snapshot"].items():
        if path.exists():
            assert path.stat().st_mtime_ns == mtime, f"the rerun rewrote {path}"


@pytest.mark.slurm
def test_gpu_rules_ran_on_gpu_partition(runs):
    jobs = [j for j in runs["jobs"] if j["comment"].startswith("rule_")]
    train = [j for j in jobs if j["comment"].startswith("rule_train_")]
    assert len(train) == 1 and train[0]["partition"] == "gpu", train
    assert train[0]["state"] == "COMPLETED", train
    shown = subprocess.run(
        ["scontrol", "show", "job", train[0]["id"]], capture_output=True, text=True, check=True
    ).stdout
    assert "TresPerJob=gres:gpu:1" in shown, shown  # sbatch --gpus=1
    insar = [j for j in jobs if j["comment"].startswith("rule_coregister_")]
    assert len(insar) == 3 and all(j["partition"] == "cpu" for j in insar), insar


@pytest.mark.slurm
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # radar-grid temps
def test_cluster_outputs_equal_local_run(runs):
    work, local = runs["work"], runs["local"]
    mine = sorted(p.relative_to(work) for p in (work / "results").rglob("*") if p.is_file())
    ref = sorted(p.relative_to(local) for p in (local / "results").rglob("*") if p.is_file())
    assert mine == ref, set(mine) ^ set(ref)
    assert any(p.suffix == ".pt" for p in ref) and any(p.name == "train.npz" for p in ref)
    for rel in ref:
        assert_same(local / rel, work / rel)


# Training history columns measured with the wall clock: they differ between any two runs.
WALL_CLOCK = ["seconds", "samples_per_s"]


def assert_same(a: Path, b: Path) -> None:
    """Equal content, tolerance 0. One exception: the training history's wall-clock columns
    (seconds, samples_per_s, in history.csv and in the checkpoints' history); GeoPackages are compared by
    content (layers, CRS, attributes, geometry WKB) since the file holds write timestamps."""
    suffix = a.suffix
    if suffix == ".tif":
        with rasterio.open(a) as ra, rasterio.open(b) as rb:
            assert ra.profile == rb.profile, (a, ra.profile, rb.profile)
            assert np.array_equal(ra.read(), rb.read(), equal_nan=True), a
    elif suffix == ".npz":
        with np.load(a, allow_pickle=False) as za, np.load(b, allow_pickle=False) as zb:
            assert sorted(za.files) == sorted(zb.files), a
            for key in za.files:
                va, vb = za[key], zb[key]
                nan_ok = va.dtype.kind in "fc" and vb.dtype.kind in "fc"  # strings hold no NaN
                assert np.array_equal(va, vb, equal_nan=nan_ok), (a, key)
    elif suffix == ".csv":
        da, db = pd.read_csv(a), pd.read_csv(b)
        if a.name == "history.csv":  # the one exception: wall-clock seconds per epoch
            da, db = da.drop(columns=WALL_CLOCK), db.drop(columns=WALL_CLOCK)
        pd.testing.assert_frame_equal(da, db, check_exact=True)
    elif suffix == ".pt":
        import torch

        sa = torch.load(a, map_location="cpu", weights_only=False)
        sb = torch.load(b, map_location="cpu", weights_only=False)
        assert_same_tree(sa, sb, str(a))
    elif suffix == ".gpkg":  # the file holds write timestamps: compare its layers' content
        import geopandas as gpd
        import pyogrio

        layers = [name for name, _ in pyogrio.list_layers(a)]
        assert layers == [name for name, _ in pyogrio.list_layers(b)], a
        for layer in layers:
            ga, gb = gpd.read_file(a, layer=layer), gpd.read_file(b, layer=layer)
            assert ga.crs == gb.crs, (a, layer)
            pd.testing.assert_frame_equal(
                pd.DataFrame(ga.drop(columns="geometry")),
                pd.DataFrame(gb.drop(columns="geometry")),
                check_exact=True,
            )
            assert list(ga.geometry.to_wkb()) == list(gb.geometry.to_wkb()), (a, layer)
    elif suffix == ".json":
        assert json.loads(a.read_text()) == json.loads(b.read_text()), a
    else:
        assert a.read_bytes() == b.read_bytes(), a


def assert_same_tree(x, y, where: str) -> None:
    import torch

    if isinstance(x, dict):
        assert isinstance(y, dict) and sorted(x) == sorted(y), where
        for k in x:
            if k not in WALL_CLOCK:
                assert_same_tree(x[k], y[k], f"{where}[{k}]")
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            assert_same_tree(u, v, f"{where}[{i}]")
    elif isinstance(x, torch.Tensor):
        assert torch.equal(x, y), where
    elif isinstance(x, np.ndarray):
        assert np.array_equal(x, y), where
    else:
        assert x == y, (where, x, y)
