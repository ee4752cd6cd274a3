"""Acquisition and pair planning: which interferograms a config asks for.

Per stack, the acquisitions are the dates from ``dates.start`` to ``dates.end`` every
``revisit_days`` (simulated stacks), or the dates of the Sentinel-1 products found (real
stacks). The pairs are (reference, secondary) with ``secondary - reference`` equal to one of the
configured delays. A missing acquisition drops only the pairs that need it; the plan records them
in ``dropped`` so the run can report them.

Products that cannot be used are dropped with the reason (``ignored``): not IW SLC, without the
configured ``insar.polarisation``, another track, outside the date grid. The same file listed
twice is used once (a note); two different products of one acquisition slice are an error naming
both. A plan without a single interferogram is an error saying which dates or delays to change.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

from .config import schema_default
from .errors import IsslideError
from .sentinel1 import Product, find_products, group_slices

DATE_FMT = "%Y%m%d"


def fmt(date: dt.date) -> str:
    return date.strftime(DATE_FMT)


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
    notes: list[str] = field(default_factory=list)

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
        lines.extend(f"stack {self.name}: {msg}" for msg in self.notes)
        return lines


def annotation_stem(directory: str, stack: str, delay, reference: str, secondary: str) -> str:
    """The annotation file of a pair without its extension:
    ``{annotations.directory}/{stack}/{delay}d/{reference}_{secondary}``."""
    return f"{directory}/{stack}/{delay}d/{reference}_{secondary}"


def annotation_path(directory, stack, delay, reference, secondary, extension) -> str:
    return f"{annotation_stem(directory, stack, delay, reference, secondary)}.{extension}"


def expected_dates(config: dict) -> list[dt.date]:
    start = dt.date.fromisoformat(config["dates"]["start"])
    end = dt.date.fromisoformat(config["dates"]["end"])
    step = dt.timedelta(days=config.get("revisit_days", schema_default("revisit_days")))
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


def _same_file(a: Product, b: Product) -> bool:
    """Two listings of one file: the same path, or copies (same name, same size)."""
    if os.path.realpath(a.path) == os.path.realpath(b.path):
        return True
    if a.name != b.name:
        return False
    if os.path.isdir(a.path) or os.path.isdir(b.path):
        return os.path.isdir(a.path) and os.path.isdir(b.path)
    return os.path.getsize(a.path) == os.path.getsize(b.path)


def _deduplicate(name: str, products: list[Product], notes: list[str]) -> list[Product]:
    """One product per acquisition slice: a file listed twice is used once (with a note); two
    different products of the same slice (same mission, orbit, start and stop) are an error."""
    kept: dict[tuple, Product] = {}
    for p in products:
        key = (p.mission, p.absolute_orbit, p.start, p.stop)
        first = kept.get(key)
        if first is None:
            kept[key] = p
        elif _same_file(first, p):
            notes.append(f"{p.path} is listed twice (same file as {first.path}); used once")
        else:
            raise IsslideError(
                f"stacks.{name}.products: {first.path} and {p.path} are two products of the same "
                f"acquisition ({p.mission} orbit {p.absolute_orbit}, {p.start:%Y-%m-%dT%H:%M:%S} to "
                f"{p.stop:%H:%M:%S}; product ids {first.product_id} and {p.product_id}); keep one "
                "of them (usually the most recent processing) and remove the other from the list"
            )
    return sorted(kept.values())


def _real_stack(
    name: str, stack: dict, expected: list[dt.date], base: str, polarisation: str
) -> StackPlan:
    if not stack.get("products"):
        raise IsslideError(
            f"stacks.{name}.products: a stack with source 'products' needs a glob or list of "
            "Sentinel-1 IW SLC products"
        )
    products = find_products(stack["products"], base=base)
    ignored: list[str] = []
    notes: list[str] = []
    good = []
    for p in products:
        if p.mode != "IW" or p.product_type != "SLC":
            ignored.append(f"{p.name} ignored: {p.mode} {p.product_type}, not an IW SLC product")
        elif polarisation not in p.polarisations:
            ignored.append(
                f"{p.name} ignored: polarisations {'+'.join(p.polarisations)} lack "
                f"insar.polarisation {polarisation}"
            )
        else:
            good.append(p)
    if products and not good:
        raise IsslideError(
            f"stacks.{name}.products: none of the {len(products)} products is an IW SLC product "
            f"with polarisation {polarisation} (e.g. {ignored[0]}); list IW SLC products or change "
            "insar.polarisation"
        )
    good = _deduplicate(name, good, notes)
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
    return StackPlan(
        name,
        "products",
        track,
        expected,
        sorted(by_date),
        by_date,
        ignored=ignored,
        notes=notes,
    )


def _no_pair_message(sp: StackPlan, delays: list[int]) -> str:
    first, last = sp.expected[0], sp.expected[-1]
    span = (last - first).days
    fits = [d for d in delays if d <= span]
    listed = ", ".join(str(d) for d in sorted(delays))
    if not fits:
        need = first + dt.timedelta(days=min(delays))
        return (
            f"delays: no interferogram fits: the acquisitions from {first} to {last} span "
            f"{span} days, less than every delay ({listed} days); set dates.end to {need} or "
            f"later, or use delays of at most {span} days"
        )
    have = ", ".join(d.isoformat() for d in sp.dates)
    return (
        f"stacks.{sp.name}: no interferogram can be made: every pair at delays {listed} days "
        f"needs a missing acquisition (have {have}); add the missing products or choose delays "
        "that join the acquisitions you have"
    )


def plan_stacks(config: dict, base: str = ".") -> dict[str, StackPlan]:
    """The full acquisition and pair plan of a (validated, defaults-filled) config."""
    expected = expected_dates(config)
    delays = config.get("delays", schema_default("delays"))
    plans = {}
    for name, stack in config["stacks"].items():
        if stack.get("source") == "interferograms":  # made elsewhere: isslide.interferograms
            from .interferograms import plan_interferogram_stack

            plans[name] = plan_interferogram_stack(name, stack, config, base)
            continue
        if stack.get("source", "simulated") == "products":
            sp = _real_stack(name, stack, expected, base, config["insar"]["polarisation"])
        else:
            sp = StackPlan(name, "simulated", stack.get("track"), expected, list(expected))
        if len(sp.dates) < 2:
            raise IsslideError(
                f"stacks.{name}: {len(sp.dates)} acquisition(s) between {expected[0]} and "
                f"{expected[-1]}; a stack needs at least two (check dates and products)"
            )
        sp.pairs, sp.dropped = plan_pairs(name, sp.dates, expected, delays)
        if not sp.pairs:
            raise IsslideError(_no_pair_message(sp, delays))
        for delay in sorted(delays):
            if not sp.pairs_for_delay(delay) and not any(p.delay == delay for p, _ in sp.dropped):
                sp.notes.append(
                    f"delay {delay} d gives no pair between {expected[0]} and {expected[-1]}"
                )
        plans[name] = sp
    return plans
