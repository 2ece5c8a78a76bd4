"""Lint of the pipeline definition: stages list their own code and only keys that exist."""

import dataclasses
import re
from pathlib import Path

import yaml

from lifting.config import BudgetParams, pipeline_runs
from lifting.models import METHODS
from lifting.runner import is_lookup

REPO = Path(__file__).resolve().parents[1]
PIPELINE = yaml.safe_load((REPO / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def test_every_stage_depends_on_its_own_stage_module():
    for name, stage in PIPELINE["stages"].items():
        module = re.search(r"python -m stages\.(\w+)", stage["cmd"]).group(1)
        assert f"stages/{module}.py" in stage["deps"], name


def test_every_stage_is_gated_by_the_params_check():
    """Any dvc repro, targeted or not, runs check_params first (it depends on the whole params.yaml)."""
    (gate,) = PIPELINE["stages"]["check_params"]["outs"]
    assert "params.yaml" in PIPELINE["stages"]["check_params"]["deps"]
    for name, stage in PIPELINE["stages"].items():
        if name != "check_params":
            assert gate in stage["deps"], f"{name} does not depend on {gate}"


def test_every_declared_param_key_exists():
    for name, stage in PIPELINE["stages"].items():
        for key in stage.get("params", []):
            if "${" in key:
                continue
            node = PARAMS
            for part in key.split("."):
                assert part in node, f"{name}: params key {key} is not in params.yaml"
                node = node[part]


def test_every_method_has_a_knob_section_and_a_module():
    for method in PARAMS["methods"] + PARAMS["heavy_methods"]:
        assert method in METHODS
        assert method in PARAMS["model"], f"model.{method} is missing from params.yaml"


def test_the_overlay_plots_cover_every_trained_run():
    expected = {f"metrics/train/{run}-{i}.csv" for run, i in pipeline_runs(PARAMS)
                if not (run in METHODS and is_lookup(run))}
    for plot in PIPELINE["plots"]:
        (definition,) = plot.values()
        assert set(definition["y"]) == expected


def _declared_params() -> set[str]:
    """Every params key some stage declares, with ${item.method} expanded to every method a train
    matrix can run (any registered method: a user may add one to `methods` or `heavy_methods`)."""
    declared = set()
    for stage in PIPELINE["stages"].values():
        for key in stage.get("params", []):
            declared |= {key.replace("${item.method}", m) for m in METHODS} if "${item.method}" in key else {key}
    return declared


def test_every_budget_field_is_a_declared_dependency_of_every_training_stage():
    fields = {f"budget.{f.name}" for f in dataclasses.fields(BudgetParams)}
    for name in ("train", "train_heavy", "train_gridconv"):
        assert fields <= set(PIPELINE["stages"][name]["params"]), name


def test_every_per_method_budget_override_is_a_declared_dependency():
    declared = _declared_params()
    for method, value in PARAMS["budget"].items():
        if isinstance(value, dict):
            assert f"budget.{method}" in declared, f"budget.{method} overrides a budget no stage depends on"
