"""``isslide snap-graph``: print the gpt graph XML a rule runs, for a config and a step.

    isslide snap-graph --configfile config/isslide.yaml --step goldstein
    isslide snap-graph --configfile config/isslide.yaml --step goldstein --snap-version 14
    isslide snap-graph --configfile my.yaml --fused       # snap.recipe esa only

File paths are ``${name}`` placeholders that the rule binds with ``gpt -P<name>=<value>``; the
list of placeholders goes to stderr, the XML alone to stdout. The SNAP version is
``--snap-version``, else ``snap.version``, else asked of ``snap.gpt`` (``gpt --diag``).
"""

from __future__ import annotations

import dataclasses
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
    p.add_argument(
        "--snap-version",
        type=int,
        default=None,
        help="SNAP major version to write the graph for (default: snap.version, else gpt --diag)",
    )
    p.set_defaults(func=cmd_snap_graph)


def settings_for(config: dict, stack: str | None, version: int | None = None) -> SnapSettings:
    stacks = config["stacks"]
    if stack is None:
        real = [n for n, st in stacks.items() if st.get("source") == "products"]
        stack = (real or list(stacks))[0]
    if stack not in stacks:
        raise IsslideError(
            f"--stack: no stack '{stack}' in the config; choose one of {', '.join(stacks)}"
        )
    from ..workflow import insar_params

    params = insar_params(config, stack, backend="snap")
    if version is not None:
        params["snap_install"] = {"version": version}  # refused if snap.version disagrees
    settings = SnapSettings.from_params(params)
    if settings.version is None:
        from .install import probe, resolve_version

        try:
            found = probe(settings.gpt)
        except IsslideError as exc:
            if "not found" not in str(exc) and "not an executable" not in str(exc):
                raise
            return settings  # graphs that need the version say so (require_version)
        settings = dataclasses.replace(settings, version=resolve_version(None, found)[0])
    return settings


def cmd_snap_graph(args) -> int:
    if args.step is None and not args.fused:
        raise IsslideError("snap-graph: give --step <rule> or --fused")
    if args.slices < 1:
        raise IsslideError("--slices: at least 1")
    config = load_config(args.configfile)
    settings = settings_for(config, args.stack, args.snap_version)
    graph = build_graph(
        args.step or "terrain_correct", settings, n_slices=args.slices, fused=args.fused
    )
    sys.stdout.write(to_xml(graph))
    names = " ".join(f"-P{n}=..." for n in sorted(graph.placeholders))
    print(f"placeholders bound by the rule: {names}", file=sys.stderr)
    return 0
