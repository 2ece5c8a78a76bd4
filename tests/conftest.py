"""Shared fixtures: the embedded dataset is built once per test session (about 2 s)."""

from __future__ import annotations

import pytest

from lifting.data import deepmimic
from lifting.data.embedded import build_embedded


@pytest.fixture(scope="session")
def embedded_tables():
    """StoreTables of the full embedded dataset, built from the installed pybullet clips."""
    return build_embedded(deepmimic.motion_dir())
