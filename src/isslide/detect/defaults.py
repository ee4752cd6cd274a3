"""The defaults of config ``detection`` (stated once, in the workflow's schema) for the CLI and
library callers."""

from __future__ import annotations

import functools

from ..config import load_schema


@functools.lru_cache(maxsize=1)
def detection_defaults() -> dict:
    props = load_schema()["properties"]["detection"]["properties"]
    return {k: v.get("default") for k, v in props.items()}


def default(key: str):
    return detection_defaults()[key]
