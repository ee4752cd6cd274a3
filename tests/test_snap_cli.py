"""SNAP backend: ``isslide snap-graph`` and the Snakemake wiring of both variants (dry runs)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml
from test_foundation import product_names
from workflow_utils import job_counts, snakemake

from isslide.cli import main
from isslide.snap.chain import recipe_steps


def graph_nodes(xml: str) -> dict:
    root = ET.fromstring(xml)
    return {n.get("id"): n.findtext("operator") for n in root.findall("node")}


def recipe_config(repo, tmp_path, recipe, **snap):
    cfg = yaml.safe_load(open(repo / "config/isslide.yaml"))
    cfg["snap"].update(recipe=recipe, **snap)
    path = tmp_path / f"{recipe}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.mark.parametrize(
    "recipe, step", [(r, st) for r in ("esa", "isslide") for st in recipe_steps(r)]
)
def test_snap_graph_prints_each_step(repo, tmp_path, capsys, recipe, step):
    path = recipe_config(repo, tmp_path, recipe)
    args = ["snap-graph", "--configfile", path, "--step", step, "--snap-version", "10"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    nodes = graph_nodes(out)
    assert "Read" in nodes and "Write" in nodes.values()
    assert "placeholders bound by the rule" in err and "-Pout" in err


def test_config_isslide_runs_the_authors_recipe(repo):
    cfg = yaml.safe_load(open(repo / "config/isslide.yaml"))
    assert cfg["snap"]["recipe"] == "isslide" and cfg["snap"]["version"] is None


def test_snap_graph_without_a_known_version(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)  # gpt is not installed here and config/isslide.yaml detects it
    assert main(["snap-graph", "--configfile", "config/isslide.yaml", "--step", "goldstein"]) == 1
    assert "--snap-version" in capsys.readouterr().err
    assert main(["snap-graph", "--configfile", "config/isslide.yaml", "--step", "multilook"]) == 0


def test_snap_graph_fused(repo, tmp_path, capsys):
    path = recipe_config(repo, tmp_path, "esa", version=10)
    assert main(["snap-graph", "--configfile", path, "--fused"]) == 0
    ops = list(graph_nodes(capsys.readouterr().out).values())
    for op in (
        "Back-Geocoding",
        "Enhanced-Spectral-Diversity",
        "Interferogram",
        "TOPSAR-Deburst",
        "TOPSAR-Merge",
        "TopoPhaseRemoval",
        "GoldsteinPhaseFiltering",
        "Multilook",
        "Terrain-Correction",
    ):
        assert op in ops
    assert ops.count("Back-Geocoding") == 3 and ops.count("Write") == 1


def test_snap_graph_follows_the_config(repo, tmp_path, capsys):
    cfg = yaml.safe_load(open(repo / "config/isslide.yaml"))
    cfg["snap"]["version"] = 14
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["snap-graph", "--configfile", str(path), "--step", "goldstein"]) == 0
    assert "<useAdaptiveAlpha>false</useAdaptiveAlpha>" in capsys.readouterr().out
    cfg["snap"]["version"] = 10
    path.write_text(yaml.safe_dump(cfg))
    assert main(["snap-graph", "--configfile", str(path), "--step", "goldstein"]) == 0
    assert "useAdaptiveAlpha" not in capsys.readouterr().out


def test_snap_graph_version_must_agree_with_the_config(repo, tmp_path, capsys):
    path = recipe_config(repo, tmp_path, "isslide", version=13)
    args = ["snap-graph", "--configfile", path, "--step", "goldstein", "--snap-version", "14"]
    assert main(args) == 1
    assert "snap.version: configured 13" in capsys.readouterr().err


def test_snap_graph_slices(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert (
        main(
            [
                "snap-graph",
                "--configfile",
                "config/isslide.yaml",
                "--step",
                "calibrate",
                "--slices",
                "2",
                "--snap-version",
                "10",
            ]
        )
        == 0
    )
    assert "SliceAssembly" in graph_nodes(capsys.readouterr().out).values()


def test_snap_graph_errors(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert (
        main(
            ["snap-graph", "--configfile", "config/isslide.yaml", "--step", "goldstein", "--fused"]
        )
        == 1
    )
    assert "isslide:" in capsys.readouterr().err
    assert (
        main(
            [
                "snap-graph",
                "--configfile",
                "config/isslide.yaml",
                "--stack",
                "nope",
                "--step",
                "goldstein",
            ]
        )
        == 1
    )
    assert "--stack" in capsys.readouterr().err


def test_snap_graph_entry_point(repo):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "isslide.cli",
            "snap-graph",
            "--configfile",
            "config/isslide.yaml",
            "--step",
            "terrain_correct",
            "--snap-version",
            "10",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    assert graph_nodes(proc.stdout)["Terrain-Correction"] == "Terrain-Correction"


@pytest.mark.workflow
@pytest.mark.parametrize("recipe, fuse", [("esa", False), ("esa", True), ("isslide", False)])
def test_dry_run_both_variants(repo, tmp_path, recipe, fuse):
    products = tmp_path / "s1"
    products.mkdir()
    for name in product_names(20):
        (products / name).touch()
    cfg = yaml.safe_load(open(repo / "config/isslide.yaml"))
    cfg["stacks"]["alps"]["products"] = str(products / "*.zip")
    cfg["snap"]["fuse"] = fuse
    cfg["snap"]["recipe"] = recipe
    path = tmp_path / "isslide.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # the InSAR part (annotations and weights, absent here, are checked only past it)
    proc = snakemake(
        "-n", "--cores", "2", "--until", "terrain_correct", "--configfile", str(path), cwd=repo
    )
    out = proc.stdout
    counts = job_counts(out)
    assert counts["calibrate"] == counts["apply_orbit"] == 20
    assert counts["terrain_correct"] == 54
    per_pair = ("coregister", "interferogram", "remove_topographic_phase", "goldstein", "multilook")
    if fuse:
        assert not any(rule in counts for rule in per_pair)
        assert ".snap" in out and "coregistered.snap" not in out
    elif recipe == "isslide":
        assert "remove_topographic_phase" not in counts and "topo_removed.snap" not in out
        assert all(counts[rule] == 54 for rule in per_pair if rule != "remove_topographic_phase")
    else:
        assert all(counts[rule] == 54 for rule in per_pair)
        assert "coregistered.snap" in out
    # gpt is not installed here: planning says so in one line and the dry run goes on
    assert "snap.gpt: 'gpt' not found on PATH" in proc.stdout + proc.stderr


@pytest.mark.workflow
@pytest.mark.parametrize("configured, ok", [(None, True), (10, False)])
def test_planning_asks_gpt_before_any_job(repo, tmp_path, configured, ok):
    """With gpt installed (the test double, SNAP 14), planning detects the version and refuses
    a configured snap.version that disagrees, in one line, before any job."""
    fake = tmp_path / "bin" / "gpt"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{repo / "tests" / "fake_gpt.py"}" "$@"\n')
    fake.chmod(0o755)
    products = tmp_path / "s1"
    products.mkdir()
    for name in product_names(4):
        (products / name).touch()
    cfg = yaml.safe_load(open(repo / "config/isslide.yaml"))
    cfg["stacks"]["alps"]["products"] = str(products / "*.zip")
    cfg["dates"]["end"] = "2018-07-20"
    cfg["snap"].update(gpt=str(fake), version=configured)
    path = tmp_path / "isslide.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env_proc = subprocess.run(
        # the InSAR part (annotations, absent here, are checked only past it)
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--until", "terrain_correct"]
        + ["--configfile", str(path)],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "FAKE_GPT_VERSION": "14.0.0"},
        timeout=900,
    )
    out = env_proc.stdout + env_proc.stderr
    if ok:
        assert env_proc.returncode == 0, out[-3000:]
        assert f"isslide: SNAP 14.0.0 at {fake}" in out
    else:
        assert env_proc.returncode != 0
        lines = [ln for ln in env_proc.stderr.splitlines() if ln.startswith("isslide:")]
        assert len(lines) == 1 and "snap.version: configured 10 but" in lines[0]
        assert "Job stats" not in out
