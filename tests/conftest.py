"""Shared fixtures: the embedded dataset is built once per test session (about 2 s)."""

from __future__ import annotations

import pytest

from lifting.data import deepmimic
from lifting.data.align import align_store, write_aligned
from lifting.data.embedded import build_embedded


@pytest.fixture(scope="session")
def embedded_tables():
    """StoreTables of the full embedded dataset, built from the installed pybullet clips."""
    return build_embedded(deepmimic.motion_dir())


@pytest.fixture(scope="session")
def aligned_s1_s9(embedded_tables, tmp_path_factory):
    """An aligned-data folder of the embedded data with S1 for training and S9 for testing."""
    out = tmp_path_factory.mktemp("aligned-s1-s9")
    write_aligned(align_store(embedded_tables, ("S1",), ("S9",)), out, "embedded")
    return out
