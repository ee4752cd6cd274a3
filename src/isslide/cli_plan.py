"""``isslide plan`` and ``isslide check-config``: what a config asks for, before running it."""

from __future__ import annotations

from .config import load_config
from .preflight import preflight


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="list the acquisitions and interferogram pairs a config plans")
    p.add_argument("--configfile", default="config/config.yaml")
    p.set_defaults(func=cmd_plan)
    c = sub.add_parser(
        "check-config",
        help="validate a config file and its input files (the checks the workflow makes first)",
    )
    c.add_argument("--configfile", default="config/config.yaml")
    c.set_defaults(func=cmd_check)


def cmd_check(args) -> int:
    config = load_config(args.configfile)
    plans = preflight(config)
    for stack in plans.values():
        for line in stack.report():
            print(f"warning: {line}")
    print(f"{args.configfile}: valid")
    return 0


def cmd_plan(args) -> int:
    config = load_config(args.configfile)
    total = 0
    for stack in preflight(config).values():
        print(
            f"stack {stack.name} ({stack.source}, track {stack.track}): {len(stack.dates)} acquisitions"
        )
        for delay in config["delays"]:
            pairs = stack.pairs_for_delay(delay)
            total += len(pairs)
            print(f"  {delay:>3}d: {len(pairs)} pairs")
        for line in stack.report():
            print(f"  warning: {line}")
    print(f"total: {total} interferograms")
    return 0
