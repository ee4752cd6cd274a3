"""Helpers shared by the workflow-level tests (end to end, incremental, SLURM)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from isslide.insar import STEPS

REPO = Path(__file__).resolve().parents[1]
INSAR = set(STEPS)
SIMULATOR = {"simulate_scene", "simulate_acquisition", "simulate_annotations"}
# Outputs of earlier runs never travel with a copy (ignored by git anyway, but a developer's
# tree may hold them as untracked files).
_SKIP = ("results/", "resources/synthetic/", "logs/", ".snakemake/", ".git/")


def copy_repo(dest: Path, repo: Path = REPO) -> Path:
    """A clean copy of the project (tracked and untracked-not-ignored files), as a fresh clone."""
    listing = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for f in filter(None, listing.split("\0")):
        if f.startswith(_SKIP) or (f.startswith("benchmarks/") and f.count("/") > 1):
            continue
        src = repo / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    return dest
