"""The synthetic artefacts (written once per session) and what the report loads from them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import INPUTS2D, METHODS, PARTIAL_INPUT, PARTIAL_RUN, write_artefacts

from lifting import report as R


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("artefacts")
    paths = write_artefacts(root)
    # a run on one of the inputs only (GridConv's default `runs.gridconv: [gt]`); the same seeded
    # targets and gt inputs are written again, so the files agree
    write_artefacts(root, [PARTIAL_RUN], [PARTIAL_INPUT])
    return paths


@pytest.fixture(scope="session")
def runs(artefacts) -> dict:
    return R.load_metrics(artefacts["metrics"], R.run_grid(METHODS, INPUTS2D))


@pytest.fixture(scope="session")
def logs(artefacts) -> pd.DataFrame:
    return R.load_train_logs(artefacts["train_logs"], R.run_grid(METHODS, INPUTS2D))


@pytest.fixture(scope="session")
def convergence(artefacts) -> dict:
    return R.load_convergence(artefacts["convergence"], R.run_grid(METHODS, INPUTS2D))
