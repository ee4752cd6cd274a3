"""SNAP backend: ``isslide snap-graph`` and the Snakemake wiring of both variants (dry runs)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml
from test_foundation import product_names
from workflow_utils import job_counts, snakemake

from isslide.cli import main
from isslide.insar import STEPS


def graph_nodes(xml: str) -> dict:
    root = ET.fromstring(xml)
    return {n.get("id"): n.findtext("operator") for n in root.findall("node")}


@pytest.mark.parametrize("step", STEPS)
def test_snap_graph_prints_each_step(repo, capsys, monkeypatch, step):
    monkeypatch.chdir(repo)
    assert main(["snap-graph", "--configfile", "config/isslide.yaml", "--step", step]) == 0
    out, err = capsys.readouterr()
    nodes = graph_nodes(out)
    assert "Read" in nodes and "Write" in nodes.values()
    assert "placeholders bound by the rule" in err and "-Pout" in err


def test_snap_graph_fused(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert main(["snap-graph", "--configfile", "config/isslide.yaml", "--fused"]) == 0
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
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    assert graph_nodes(proc.stdout)["Terrain-Correction"] == "Terrain-Correction"


@pytest.mark.workflow
@pytest.mark.parametrize("fuse", [False, True])
def test_dry_run_both_variants(repo, tmp_path, fuse):
    products = tmp_path / "s1"
    products.mkdir()
    for name in product_names(20):
        (products / name).touch()
    cfg = yaml.safe_load(open(repo / "config/isslide.yaml"))
    cfg["stacks"]["alps"]["products"] = str(products / "*.zip")
    cfg["snap"]["fuse"] = fuse
    path = tmp_path / "isslide.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # the InSAR part (annotations and weights, absent here, are checked only past it)
    out = snakemake(
        "-n", "--cores", "2", "--until", "terrain_correct", "--configfile", str(path), cwd=repo
    ).stdout
    counts = job_counts(out)
    assert counts["calibrate"] == counts["apply_orbit"] == 20
    assert counts["terrain_correct"] == 54
    per_pair = ("coregister", "interferogram", "remove_topographic_phase", "goldstein", "multilook")
    if fuse:
        assert not any(rule in counts for rule in per_pair)
        assert ".snap" in out and "coregistered.snap" not in out
    else:
        assert all(counts[rule] == 54 for rule in per_pair)
        assert "coregistered.snap" in out
