"""``isslide snap-graph``: print the gpt graph XML a rule runs, for a config and a step.

    isslide snap-graph --configfile config/isslide.yaml --step goldstein
    isslide snap-graph --configfile config/isslide.yaml --fused

File paths are ``${name}`` placeholders that the rule binds with ``gpt -P<name>=<value>``; the
list of placeholders goes to stderr, the XML alone to stdout.
"""

from __future__ import annotations

import sys

from ..config import load_config
from ..errors import IsslideError
from ..insar import STEPS
from .chain import SnapSettings, build_graph
from .xmlgraph import to_xml


def add_parser(sub) -> None:
    p = sub.add_parser("snap-graph", help="print the SNAP gpt graph XML of an InSAR step")
    p.add_argument("--configfile", default="config/isslide.yaml")
    p.add_argument(
        "--step",
        choices=STEPS,
        default=None,
        help="rule name (default terrain_correct with --fused)",
    )
    p.add_argument("--fused", action="store_true", help="the fused per-pair graph (snap.fuse)")
    p.add_argument(
        "--stack", default=None, help="stack whose subswaths/AOI to use (default: the first)"
    )
    p.add_argument(
        "--slices", type=int, default=1, help="products per date for calibrate (>1: SliceAssembly)"
    )
    p.set_defaults(func=cmd_snap_graph)


def settings_for(config: dict, stack: str | None) -> SnapSettings:
    stacks = config["stacks"]
    if stack is None:
        real = [n for n, st in stacks.items() if st.get("source") == "products"]
        stack = (real or list(stacks))[0]
    if stack not in stacks:
        raise IsslideError(
            f"--stack: no stack '{stack}' in the config; choose one of {', '.join(stacks)}"
        )
    st = stacks[stack]
    params = {
        "insar": config["insar"],
        "backend": "snap",
        "snap": config["snap"],
        "stack": {k: st.get(k) for k in ("subswaths", "aoi", "track", "pass")},
    }
    return SnapSettings.from_params(params)


def cmd_snap_graph(args) -> int:
    if args.step is None and not args.fused:
        raise IsslideError("snap-graph: give --step <rule> or --fused")
    if args.slices < 1:
        raise IsslideError("--slices: at least 1")
    config = load_config(args.configfile)
    settings = settings_for(config, args.stack)
    graph = build_graph(
        args.step or "terrain_correct", settings, n_slices=args.slices, fused=args.fused
    )
    sys.stdout.write(to_xml(graph))
    names = " ".join(f"-P{n}=..." for n in sorted(graph.placeholders))
    print(f"placeholders bound by the rule: {names}", file=sys.stderr)
    return 0
