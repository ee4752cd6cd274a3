"""Acquisition and pair planning: which interferograms a config asks for.

Per stack, the acquisitions are the dates from ``dates.start`` to ``dates.end`` every
``revisit_days`` (simulated stacks), or the dates of the Sentinel-1 products found (real
stacks). The pairs are (reference, secondary) with ``secondary - reference`` equal to one of the
configured delays. A missing acquisition drops only the pairs that need it; the plan records them
in ``dropped`` so the run can report them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .errors import IsslideError
from .sentinel1 import Product, find_products, group_slices

DATE_FMT = "%Y%m%d"


def fmt(date: dt.date) -> str:
    return date.strftime(DATE_FMT)


def parse_date(text: str) -> dt.date:
    return dt.datetime.strptime(text, DATE_FMT).date()


@dataclass(frozen=True, order=True)
class Pair:
    stack: str
    reference: dt.date
    secondary: dt.date

    @property
    def delay(self) -> int:
        return (self.secondary - self.reference).days

    @property
    def name(self) -> str:
        return f"{fmt(self.reference)}_{fmt(self.secondary)}"

    @property
    def wildcards(self) -> dict:
        return {
            "stack": self.stack,
            "delay": str(self.delay),
            "reference": fmt(self.reference),
            "secondary": fmt(self.secondary),
        }


@dataclass
class StackPlan:
    name: str
    source: str
    track: int | None
    expected: list[dt.date]
    dates: list[dt.date]
    products: dict[dt.date, list[Product]] = field(default_factory=dict)
    pairs: list[Pair] = field(default_factory=list)
    dropped: list[tuple[Pair, list[dt.date]]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[dt.date]:
        have = set(self.dates)
        return [d for d in self.expected if d not in have]

    def pairs_for_delay(self, delay: int) -> list[Pair]:
        return [p for p in self.pairs if p.delay == delay]

    def report(self) -> list[str]:
        """Human-readable lines about missing acquisitions, dropped pairs and ignored products."""
        lines = []
        for d in self.missing:
            lines.append(f"stack {self.name}: no acquisition on {d.isoformat()}")
        for pair, missing in self.dropped:
            gone = ", ".join(d.isoformat() for d in missing)
            lines.append(
                f"stack {self.name}: pair {pair.name} ({pair.delay}d) dropped: missing {gone}"
            )
        lines.extend(f"stack {self.name}: {msg}" for msg in self.ignored)
        return lines


def expected_dates(config: dict) -> list[dt.date]:
    start = dt.date.fromisoformat(config["dates"]["start"])
    end = dt.date.fromisoformat(config["dates"]["end"])
    step = dt.timedelta(days=config.get("revisit_days", 6))
    out, d = [], start
    while d <= end:
        out.append(d)
        d += step
    return out


def plan_pairs(name: str, dates: list[dt.date], expected: list[dt.date], delays: list[int]):
    have = set(dates)
    pairs, dropped = [], []
    for delay in sorted(delays):
        for ref in expected:
            sec = ref + dt.timedelta(days=delay)
            if sec > expected[-1] or sec not in set(expected):
                continue
            pair = Pair(name, ref, sec)
            missing = [d for d in (ref, sec) if d not in have]
            if missing:
                dropped.append((pair, missing))
            else:
                pairs.append(pair)
    return pairs, dropped


def _real_stack(name: str, stack: dict, expected: list[dt.date], base: str) -> StackPlan:
    if not stack.get("products"):
        raise IsslideError(
            f"stacks.{name}.products: a stack with source 'products' needs a glob or list of "
            "Sentinel-1 IW SLC products"
        )
    products = find_products(stack["products"], base=base)
    ignored = []
    good = []
    for p in products:
        if p.mode != "IW" or p.product_type != "SLC":
            ignored.append(f"{p.name} ignored: {p.mode} {p.product_type}, not an IW SLC product")
        else:
            good.append(p)
    tracks = sorted({p.relative_orbit for p in good})
    track = stack.get("track")
    if track is None:
        if len(tracks) > 1:
            raise IsslideError(
                f"stacks.{name}.products: products of several tracks {tracks}; set "
                f"stacks.{name}.track to one of them or split them into stacks"
            )
        track = tracks[0] if tracks else None
    window = set(expected)
    by_date: dict[dt.date, list[Product]] = {}
    for (orbit, date), slices in group_slices(good).items():
        if orbit != track:
            ignored.extend(f"{p.name} ignored: track {orbit}, not {track}" for p in slices)
        elif date not in window:
            ignored.extend(
                f"{p.name} ignored: {date} is outside dates/revisit grid" for p in slices
            )
        else:
            by_date[date] = slices
    return StackPlan(name, "products", track, expected, sorted(by_date), by_date, ignored=ignored)


def plan_stacks(config: dict, base: str = ".") -> dict[str, StackPlan]:
    """The full acquisition and pair plan of a (validated, defaults-filled) config."""
    expected = expected_dates(config)
    delays = config.get("delays", [6, 12, 18])
    plans = {}
    for name, stack in config["stacks"].items():
        if stack.get("source") == "interferograms":  # made elsewhere: isslide.interferograms
            from .interferograms import plan_interferogram_stack

            plans[name] = plan_interferogram_stack(name, stack, config, base)
            continue
        if stack.get("source", "simulated") == "products":
            sp = _real_stack(name, stack, expected, base)
        else:
            sp = StackPlan(name, "simulated", stack.get("track"), expected, list(expected))
        if len(sp.dates) < 2:
            raise IsslideError(
                f"stacks.{name}: {len(sp.dates)} acquisition(s) between {expected[0]} and "
                f"{expected[-1]}; a stack needs at least two (check dates and products)"
            )
        sp.pairs, sp.dropped = plan_pairs(name, sp.dates, expected, delays)
        plans[name] = sp
    return plans
