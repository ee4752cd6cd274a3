"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A unet model folder trained in seconds on synthetic bubbles (tests/detect_utils.py)."""
    from detect_utils import train_tiny_model

    return train_tiny_model(tmp_path_factory.mktemp("tiny-model") / "unet")
