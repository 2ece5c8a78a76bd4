"""GridConv padding experiments with `dvc exp`, end to end in a temporary clone (issue: GridConv)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from repo_copy import copy_repository, only_runs, run, set_params

from lifting import sweep
from lifting.report import plain_text

FAST = {**only_runs(knn=["gt"], gridconv=["gt"]), "data.inputs2d": ["gt"], "gridconv_sgt": ["handcrafted"], "budget.max_epochs": 1, "budget.train_stride": 100,
        "budget.gridconv.max_epochs": 1, "train.curve_points": 1, "eval.test_every50": True}


@pytest.fixture(scope="module")
def committed_copy(tmp_path_factory) -> Path:
    root = copy_repository(tmp_path_factory.mktemp("exp"))
    set_params(root, **FAST)
    run(["dvc", "repro"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "baseline"], root)
    return root


@pytest.mark.slow
def test_one_padding_experiment_reruns_only_gridconv(committed_copy):
    root = committed_copy
    before_knn = (root / "metrics/knn-gt.json").read_text()
    out = run(["dvc", "exp", "run", "-S", "model.padding=c", "-n", "pad-c"], root).stdout
    assert "Running stage 'train_gridconv@handcrafted-gt'" in out
    assert "Running stage 'train_knn@gt'" not in out and "Running stage 'evaluate_knn@gt'" not in out
    assert (root / "metrics/knn-gt.json").read_text() == before_knn
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], root).stdout)
    assert "metrics/gridconv_handcrafted-gt.json" in diff  # and its robustness (and 3DHP) files, nothing else
    assert {Path(name).name for name in diff} == {"gridconv_handcrafted-gt.json"}, sorted(diff)
    shown = run(["dvc", "exp", "show", "--md", "--only-changed", "--no-pager"], root).stdout
    assert "pad-c" in shown and "model.padding" in shown


@pytest.mark.slow
def test_a_comma_list_is_a_queued_sweep_of_two_experiments(committed_copy):
    root = committed_copy
    run(["git", "checkout", "-q", "--", "params.yaml"], root)
    queued = run(["dvc", "exp", "run", "--queue", "-S", "model.padding=z,r"], root).stdout
    assert queued.count("Queueing with overrides") == 2
    run(["dvc", "queue", "start", "-j", "1"], root)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], root).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    assert status.count("Success") == 2, status
    table = json.loads(run(["dvc", "exp", "show", "--json", "--no-pager"], root).stdout)
    found = sweep.experiments(table)
    paddings = {plain_text(sweep.param_value(e.params, "model.padding")) for e in found}
    assert {"z", "r"} <= paddings, paddings
    # The sweep summary reads the same output: one row per experiment, each with its own numbers.
    summary = sweep.sweep_table(found, "model.padding", "gridconv")
    assert {"z", "r"} <= set(summary["model.padding"]) and summary.notna().all().all()
    for experiment, p1 in zip(found, summary["gridconv_handcrafted-gt P1 h36m16"]):
        stored = experiment.metrics["metrics/gridconv_handcrafted-gt.json"]["metrics"]["h36m16"]["mpjpe_mm"]["action_mean"]
        assert p1 == round(stored, 1)
