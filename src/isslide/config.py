"""Configuration: validation against the JSON schema, with one-line errors.

The schema (``isslide/data/config.schema.yaml``, shipped inside the package and found through
:mod:`importlib.resources`, never through the checkout's layout) is the only place of every key,
its type and its default. The workflow calls :func:`validate_config` once (clear message naming
the key and the expected value, then the defaults filled in place); the CLI uses
:func:`load_config`, which does the same on a file. Library code that takes a partial section
fills it with :func:`fill_section` and :func:`schema_default` instead of repeating a default.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import os
from importlib import resources
from typing import Any

import jsonschema
import yaml

from .errors import IsslideError

SCHEMA_PATH = str(resources.files("isslide").joinpath("data", "config.schema.yaml"))


@functools.cache
def _schema(path: str) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def load_schema(path: str | os.PathLike | None = None) -> dict:
    """The config schema (a copy: callers may change it)."""
    return copy.deepcopy(_schema(str(path or SCHEMA_PATH)))


def schema_default(*keys: str):
    """The schema's default of one key, e.g. ``schema_default("labels", "all_touched")``."""
    node = _schema(SCHEMA_PATH)
    for key in keys:
        node = node["properties"][key]
    return copy.deepcopy(node["default"])


def fill_section(name: str, value: dict | None) -> dict:
    """A (possibly partial) top-level section, e.g. ``snap``, with the schema's defaults."""
    return fill_defaults({name: value or {}})[name]


def validate_config(config: dict, source: str = "config") -> dict:
    """Check ``config`` (one-line :class:`IsslideError`) and fill in the defaults, in place."""
    check_config(config, source=source)
    config.update(fill_defaults(config))
    return config


def _where(path) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """One sentence: the key, what was found, what is expected."""
    where = _where(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    v = error.validator
    if v == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = (
            sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        )
        key = (
            f"{where}.{extra[0]}"
            if where != "(top level)" and extra
            else (extra[0] if extra else where)
        )
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"unknown key '{key}'{hint}"
    if v == "required":
        return f"{where}: {error.message}"
    if v == "type":
        return f"{where}: expected {error.validator_value}, got {error.instance!r}"
    if v == "enum":
        opts = ", ".join(repr(o) for o in error.validator_value)
        return f"{where}: expected one of {opts}, got {error.instance!r}"
    if v == "oneOf":
        kinds = []
        for sub in error.validator_value:
            kinds.append(sub.get("type", "value") if isinstance(sub, dict) else str(sub))
        return f"{where}: expected {' or '.join(map(str, kinds))}, got {error.instance!r}"
    desc = schema.get("description")
    tail = f" ({desc})" if desc else ""
    return f"{where}: {error.message}{tail}"


def check_config(config: dict, source: str = "config", schema: dict | None = None) -> None:
    """Raise IsslideError with one line naming the first offending key, or return None."""
    schema = schema or _schema(SCHEMA_PATH)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.absolute_path))
    )
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise IsslideError(f"{source}: {_describe(best)}")
    _check_semantics(config, source)


def _check_semantics(config: dict, source: str) -> None:
    revisit = config.get("revisit_days", schema_default("revisit_days"))
    for d in config.get("delays", schema_default("delays")):
        if d % revisit:
            raise IsslideError(
                f"{source}: delays: {d} days is not a multiple of revisit_days ({revisit}); "
                f"use multiples of {revisit}"
            )
    dates = config.get("dates", {})
    parsed = {}
    for key in ("start", "end"):
        try:
            parsed[key] = dt.date.fromisoformat(str(dates[key]))
        except KeyError:
            raise IsslideError(f"{source}: dates.{key}: missing; give a date YYYY-MM-DD") from None
        except ValueError as exc:
            raise IsslideError(
                f"{source}: dates.{key}: {dates[key]!r} is not a valid date ({exc}); "
                "use an existing calendar date, YYYY-MM-DD"
            ) from None
    start, end = parsed["start"], parsed["end"]
    if end < start:
        raise IsslideError(
            f"{source}: dates.end {end} is before dates.start {start}; swap them or fix the typo"
        )


def fill_defaults(config: dict, schema: dict | None = None) -> dict:
    """Return a copy of ``config`` with the schema's defaults filled in (recursively)."""
    schema = schema or _schema(SCHEMA_PATH)
    out = copy.deepcopy(config)

    def fill(instance: Any, sub: dict) -> None:
        if not isinstance(instance, dict) or not isinstance(sub, dict):
            return
        for key, prop in sub.get("properties", {}).items():
            if key not in instance and "default" in prop:
                instance[key] = copy.deepcopy(prop["default"])
            if key in instance:
                fill(instance[key], prop)
        extra = sub.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in instance.items():
                if key not in sub.get("properties", {}):
                    fill(value, extra)

    fill(out, schema)
    return out


def load_config(path: str | os.PathLike, overrides: dict | None = None) -> dict:
    """Read, validate and fill a config file (as the workflow does)."""
    path = str(path)
    if not os.path.exists(path):
        raise IsslideError(f"{path}: config file not found; pass --configfile config/config.yaml")
    with open(path) as fh:
        try:
            config = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise IsslideError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if overrides:
        config = deep_update(config, overrides)
    check_config(config, source=path)
    return fill_defaults(config)


def deep_update(base: dict, new: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
