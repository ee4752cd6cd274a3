"""Hash the final outputs of a workflow run, to show that a restructuring changes no result.

    python benchmarks/hash_outputs.py --run [--config tests/configs/tiny.yaml] --out before.json
    python benchmarks/hash_outputs.py --dir /path/to/a/finished/run --out after.json
    python benchmarks/hash_outputs.py --compare before.json after.json

``--run`` copies the repository (tracked and untracked-not-ignored files, as a fresh clone) to
``--workdir`` (default ``/tmp/isslide_hash_run``, always the same path so that no output differs
only by where it was made), runs ``snakemake --cores N --configfile CONFIG`` there with this
checkout's ``src`` on ``PYTHONPATH``, then hashes ``results/`` and ``resources/synthetic/``
(``logs/`` and ``benchmarks/`` hold wall-clock records and are not results).

One sha256 per file, over its content with what is legitimately not deterministic taken out:

* CSV and JSON: the wall-clock fields ``seconds``, ``samples_per_s`` and ``mpx_per_s``
  (training history, ``detection.json``) are dropped; in JSON strings the run folder's absolute
  path is replaced by ``<RUN>`` (``detection.json`` names its inputs by absolute path), and JSON
  is hashed with sorted keys;
* GeoTIFF: pixels, dtype, CRS, transform, nodata and tags (not the file bytes);
* GeoPackage: every layer's attributes and geometries as WKB, in file order (a GeoPackage
  stores its creation and update timestamps);
* ESRI Shapefile ``.dbf``: the header's date of last update (bytes 1-3) is zeroed;
* ``.npz`` / ``.npy``: every array's name, dtype, shape and bytes (``np.savez`` stores zip
  timestamps);
* ``.pt``: the loaded object, tensors by dtype, shape and bytes (wall-clock keys dropped);
* PNG figures: the decoded pixels (matplotlib embeds its version in the metadata), so a figure
  counts as unchanged when it looks the same to the pixel;
* anything else: its bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # this checkout's library, as the run below uses

from isslide.files import copy_checkout  # noqa: E402

WALL_CLOCK = {"seconds", "samples_per_s", "mpx_per_s"}
ROOTS = ("results", "resources/synthetic")


_RUN = {"root": ""}  # the run folder being hashed


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in WALL_CLOCK}
    if isinstance(obj, list | tuple):
        return [_strip(v) for v in obj]
    if isinstance(obj, str) and _RUN["root"]:
        return obj.replace(_RUN["root"], "<RUN>")
    return obj


def _array_bytes(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a)
    return f"{a.dtype.str}{a.shape}".encode() + a.tobytes()


def _hash_obj(h, obj) -> None:
    import torch

    if isinstance(obj, torch.Tensor):
        h.update(b"T" + _array_bytes(obj.detach().cpu().numpy()))
    elif isinstance(obj, np.ndarray):
        h.update(b"A" + _array_bytes(obj))
    elif isinstance(obj, dict):
        for k in obj:
            if k in WALL_CLOCK:
                continue
            h.update(b"K" + repr(k).encode())
            _hash_obj(h, obj[k])
    elif isinstance(obj, list | tuple):
        h.update(b"L%d" % len(obj))
        for v in obj:
            _hash_obj(h, v)
    else:
        h.update(b"V" + repr(obj).encode())


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    suffix = path.suffix.lower()
    if suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(path)
        frame = frame.drop(columns=[c for c in frame.columns if c in WALL_CLOCK])
        h.update(frame.to_csv(index=False).encode())
    elif suffix == ".json":
        h.update(json.dumps(_strip(json.loads(path.read_text())), sort_keys=True).encode())
    elif suffix in (".tif", ".tiff"):
        import rasterio

        with rasterio.open(path) as src:
            h.update(
                repr(
                    (src.crs.to_wkt() if src.crs else None, tuple(src.transform), src.nodata)
                ).encode()
            )
            tags = {k: v for k, v in src.tags().items() if k != "TIFFTAG_DATETIME"}
            h.update(json.dumps(tags, sort_keys=True).encode())
            h.update(_array_bytes(src.read()))
    elif suffix == ".gpkg":
        import pyogrio

        for layer, _ in pyogrio.list_layers(path):
            frame = pyogrio.read_dataframe(path, layer=layer)
            h.update(repr(layer).encode())
            h.update(str(frame.crs).encode() if hasattr(frame, "crs") else b"")
            attributes = frame.drop(columns="geometry", errors="ignore")
            h.update(attributes.to_csv(index=False).encode())
            if "geometry" in frame:
                for wkb in frame.geometry.to_wkb():
                    h.update(wkb or b"")
    elif suffix == ".dbf":
        data = bytearray(path.read_bytes())
        data[1:4] = b"\0\0\0"
        h.update(bytes(data))
    elif suffix in (".npz", ".npy"):
        loaded = np.load(path, allow_pickle=False)
        if suffix == ".npy":
            h.update(_array_bytes(loaded))
        else:
            for name in sorted(loaded.files):
                h.update(name.encode() + _array_bytes(loaded[name]))
    elif suffix == ".pt":
        import torch

        _hash_obj(h, torch.load(path, map_location="cpu", weights_only=False))
    elif suffix == ".png":
        import matplotlib.image as mpimg

        h.update(_array_bytes(mpimg.imread(io.BytesIO(path.read_bytes()), format="png")))
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def hash_dir(work: Path) -> dict[str, str]:
    _RUN["root"] = str(Path(work).resolve())
    out = {}
    for root in ROOTS:
        base = work / root
        if not base.exists():
            continue
        for p in sorted(base.rglob("*")):
            if p.is_file():
                out[str(p.relative_to(work))] = file_hash(p)
    return out


def run(config: str, work: Path, cores: int) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    copy_checkout(REPO, work)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", config]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")


def compare(a: dict[str, str], b: dict[str, str]) -> int:
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    for title, names in (("only before", only_a), ("only after", only_b), ("changed", changed)):
        for name in names:
            print(f"{title}: {name}")
    same = len(set(a) & set(b)) - len(changed)
    print(f"{same} identical, {len(changed)} changed, {len(only_a)} + {len(only_b)} unmatched")
    return 0 if not (only_a or only_b or changed) else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--run", action="store_true", help="run the workflow, then hash it")
    mode.add_argument("--dir", type=Path, help="hash an existing run (its root folder)")
    mode.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    ap.add_argument("--config", default="tests/configs/tiny.yaml")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/isslide_hash_run"))
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the hashes here (JSON)")
    args = ap.parse_args(argv)
    if args.compare:
        a, b = (json.loads(p.read_text()) for p in args.compare)
        return compare(a, b)
    if args.run:
        run(args.config, args.workdir, args.cores)
    hashes = hash_dir(args.workdir if args.run else args.dir)
    text = json.dumps(hashes, indent=1, sort_keys=True)
    if args.out:
        args.out.write_text(text + "\n")
    for name, digest in hashes.items():
        print(f"{digest}  {name}")
    total = hashlib.sha256("".join(f"{k}{v}" for k, v in hashes.items()).encode()).hexdigest()
    print(f"{len(hashes)} files, combined sha256 {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
