"""Helpers shared by the workflow-level tests (end to end, incremental, SLURM)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from isslide.files import copy_checkout
from isslide.insar import STEPS

REPO = Path(__file__).resolve().parents[1]
INSAR = set(STEPS)
SIMULATOR = {"simulate_scene", "simulate_acquisition", "simulate_annotations"}


def copy_repo(dest: Path, repo: Path = REPO) -> Path:
    """A clean copy of the project, as a fresh clone (isslide.files.copy_checkout)."""
    return copy_checkout(repo, dest)


def snakemake(*args, cwd, check=True, timeout=1800):
    """Run ``python -m snakemake *args`` in ``cwd``; with ``check``, fail with its output tail."""
    cmd = [sys.executable, "-m", "snakemake", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table Snakemake prints (dry run or real run), without 'total'."""
    counts: dict[str, int] = {}
    block = output.split("Job stats:", 1)[1] if "Job stats:" in output else ""
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts
