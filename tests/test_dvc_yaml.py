"""Lint of the pipeline definition: dvc.yaml is its generator's output, each stage's code deps are
exactly what it imports, and stages list only keys that exist."""

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from lifting import dvc_yaml
from lifting.code_deps import code_files, expanded_stages, import_closure, stage_mismatches, stage_roots
from lifting.config import BudgetParams, pipeline_runs
from lifting.models import METHOD_NAMES, method_module_name
from lifting.runner import is_lookup

REPO = Path(__file__).resolve().parents[1]
PIPELINE = yaml.safe_load((REPO / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
#: A value for each matrix key, so that every block is checked, also one whose list is empty by default.
ITEM = {"input2d": "gt", "sgt": "learnable"}


def test_dvc_yaml_is_the_generators_output():
    assert (REPO / "dvc.yaml").read_text() == dvc_yaml.render(PARAMS), \
        "dvc.yaml is stale: run `python -m lifting.dvc_yaml` (edit lifting/dvc_yaml.py, not dvc.yaml)"


def _instantiated(stage: dict) -> dict:
    """A stage's cmd and deps with ``${item.x}`` replaced by :data:`ITEM`'s value."""
    fill = lambda text: re.sub(r"\$\{item\.(\w+)\}", lambda m: ITEM[m.group(1)], text)  # noqa: E731
    return {"cmd": fill(stage["cmd"]), "deps": [fill(d) for d in stage["deps"]]}


def test_every_stage_lists_exactly_the_code_it_imports():
    """Every block of dvc.yaml, each matrix filled with one item (a block the default leaves empty too)."""
    stages = {name: _instantiated(stage) for name, stage in PIPELINE["stages"].items()}
    mismatches = stage_mismatches(stages, REPO)
    assert not mismatches, "\n".join(f"{name}: imports but does not list {sorted(missing)}; lists but does not "
                                     f"import {sorted(extra)}" for name, (missing, extra) in mismatches.items())


def test_dvcs_own_expansion_of_the_default_pipeline_agrees():
    """The same check on the stages as DVC expands them from params.yaml (dvc status sees these)."""
    stages = expanded_stages(REPO)
    assert "train_hgn@gt" in stages and "evaluate_semgcn@detected" in stages
    assert not stage_mismatches(stages, REPO)


def _closure(stage: str) -> set[str]:
    item = _instantiated(PIPELINE["stages"][stage])
    return import_closure(REPO, stage_roots(item["cmd"], item["deps"], REPO))


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_a_methods_stages_run_no_other_methods_module(method):
    """The closures are narrow: touching one method's module re-runs its own stages (and HGN's for
    SemGCN's layers, which HGN builds on)."""
    uses = {"hgn": {"semgcn"}}.get(method, set())
    block = {"gridconv": "gridconv", "rie": "rie_stage3"}.get(method, method)
    for stage in (f"train_{block}", f"evaluate_{'rie' if method == 'rie' else block}"):
        models = {f for f in _closure(stage) if f.removeprefix("lifting/models/").removesuffix(".py") in METHOD_NAMES}
        assert models == {f"lifting/models/{m}.py" for m in {method} | uses}, stage


def test_the_data_stages_hold_no_model_and_no_training_code():
    training = {"lifting/train.py", "lifting/runner.py", "lifting/codec.py"}
    for stage in ("fetch", "normalize", "align"):
        closure = _closure(stage)
        assert not {f for f in closure if f.startswith("lifting/models/")} and not closure & training, stage


def test_the_detector_stages_do_not_run_the_lifting_loop():
    for stage in ("train_detector", "detect2d"):
        assert not _closure(stage) & {"lifting/train.py", "lifting/runner.py"}, stage


def test_a_folder_dep_counts_as_its_python_files():
    assert code_files(["lifting/report", "data/aligned", "stages/train.py"], REPO) == \
        {p.relative_to(REPO).as_posix() for p in (REPO / "lifting/report").glob("*.py")} | {"stages/train.py"}


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
            node = PARAMS
            for part in key.split("."):
                assert part in node, f"{name}: params key {key} is not in params.yaml"
                node = node[part]


def test_every_method_has_its_runs_a_knob_section_and_stages():
    assert list(PARAMS["runs"]) == list(METHOD_NAMES)
    for method in METHOD_NAMES:
        assert method in PARAMS["model"], f"model.{method} is missing from params.yaml"
        matrices = [s["matrix"]["input2d"] for s in PIPELINE["stages"].values() if f"--method {method} " in s["cmd"]]
        assert matrices and set(matrices) == {f"${{runs.{method}}}"}, method


def test_the_overlay_plots_cover_every_trained_run():
    expected = {f"metrics/train/{run}-{i}.csv" for run, i in pipeline_runs(PARAMS)
                if not (run in METHOD_NAMES and is_lookup(run))}
    for plot in PIPELINE["plots"]:
        (definition,) = plot.values()
        assert set(definition["y"]) == expected


def test_every_budget_field_is_a_declared_dependency_of_every_training_stage():
    fields = {f"budget.{f.name}" for f in dataclasses.fields(BudgetParams)}
    train_stages = [name for name, stage in PIPELINE["stages"].items() if "stages.train " in stage["cmd"]]
    assert len(train_stages) == len(METHOD_NAMES) + 2  # RIE's three stages
    for name in train_stages:
        assert fields <= set(PIPELINE["stages"][name]["params"]), name


def test_every_per_method_budget_override_is_a_declared_dependency():
    declared = {key for stage in PIPELINE["stages"].values() for key in stage.get("params", [])}
    for method, value in PARAMS["budget"].items():
        if isinstance(value, dict):
            assert f"budget.{method}" in declared, f"budget.{method} overrides a budget no stage depends on"


def test_evaluation_runs_the_model_module_its_checkpoint_names():
    cmd = "python -m stages.evaluate --model data/checkpoints/gridconv_learnable-gt/model.pt --input2d gt"
    assert stage_roots(cmd) == ["stages.evaluate", method_module_name("gridconv")]
    rie = "python -m stages.evaluate --model data/checkpoints/rie-gt/model.pt --input2d gt"
    assert stage_roots(rie)[1] == method_module_name("rie")
