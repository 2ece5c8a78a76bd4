"""The synthetic artefacts (written once per session) and what the report loads from them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import INPUTS2D, METHODS, write_artefacts

from lifting import report as R


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory) -> dict[str, Path]:
    return write_artefacts(tmp_path_factory.mktemp("artefacts"))


@pytest.fixture(scope="session")
def runs(artefacts) -> dict:
    return R.load_metrics(artefacts["metrics"], METHODS, INPUTS2D)


@pytest.fixture(scope="session")
def logs(artefacts) -> pd.DataFrame:
    return R.load_train_logs(artefacts["train_logs"], METHODS, INPUTS2D)


@pytest.fixture(scope="session")
def convergence(artefacts) -> dict:
    return R.load_convergence(artefacts["convergence"], METHODS, INPUTS2D)
