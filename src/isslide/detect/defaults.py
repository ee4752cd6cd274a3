"""The defaults of config ``detection`` (stated once, in the package's schema) for the CLI and
library callers."""

from __future__ import annotations

import functools

from ..config import fill_section


@functools.lru_cache(maxsize=1)
def detection_defaults() -> dict:
    return fill_section("detection", {})


def default(key: str):
    return detection_defaults()[key]
