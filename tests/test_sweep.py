"""The sweep table read from `dvc exp show --json` (the real output is checked in test_experiments)."""

from lifting import sweep


def metrics_file(p1: float, p2: float) -> dict:
    """A 17-joint run's file: its own P1/P2 and, 1 mm lower, those on the 16 common joints."""
    return {"data": {"protocol": {"joint_set": "h36m17"},
                     "metrics": {"mpjpe_mm": {"action_mean": p1 + 1, "frame_mean": p1 + 2},
                                 "p_mpjpe_mm": {"action_mean": p2 + 1},
                                 "h36m16": {"mpjpe_mm": {"action_mean": p1}, "p_mpjpe_mm": {"action_mean": p2}}}}}


def row(padding, p1: float, budget=None) -> dict:
    budget = budget or {"max_epochs": 10, "train_stride": 2, "gridconv": {"max_epochs": 3, "batch_size": 64}}
    return {"params": {"params.yaml": {"data": {"model": {"padding": padding}, "budget": budget}}},
            "metrics": {"metrics/gridconv_handcrafted-gt.json": metrics_file(p1, p1 / 2),
                        "metrics/knn-gt.json": metrics_file(99.0, 50.0)}}


EXP_SHOW = [
    {"rev": "workspace", "name": None, "data": row(["c", "r"], 150.04), "experiments": None},
    {"rev": "0123456789abcdef", "name": "main", "data": row(["c", "r"], 150.04), "experiments": [
        {"executor": None, "revs": [{"rev": "aaaa111", "name": "quick-pads", "data": row("z", 160.26)}]},
        {"executor": None, "revs": [{"rev": "bbbb222", "name": "broken", "data": None, "error": {"msg": "failed"}}]},
        {"executor": None, "revs": [{"rev": "cccc333", "name": None, "data": row("r", 140.0)}]},
        {"executor": {"state": "running"}, "revs": [{"rev": "dddd444", "name": "busy", "data": row("c", 150.04)}]},
        {"executor": {"state": "success"}, "revs": [{"rev": "eeee555", "name": "done", "data": row("c", 145.0)}]},
    ]},
]


def test_experiments_skip_the_workspace_failed_and_running_ones_and_name_unnamed_ones_by_rev():
    found = sweep.experiments(EXP_SHOW)
    assert [e.name for e in found] == ["main", "quick-pads", "cccc333", "done"]
    assert sweep.param_value(found[1].params, "model.padding") == "z"
    assert sweep.param_value(found[1].params, "model.missing") is None


def test_sweep_table_keeps_the_parameter_and_the_headline_errors_of_the_chosen_runs():
    table = sweep.sweep_table(sweep.experiments(EXP_SHOW), "model.padding", "gridconv")
    assert list(table.columns) == ["experiment", "model.padding", "gridconv_handcrafted-gt P1 h36m16",
                                   "gridconv_handcrafted-gt P2 h36m16"]
    assert table["model.padding"].tolist() == ["c, r", "z", "r", "c"]
    assert table["gridconv_handcrafted-gt P1 h36m16"].tolist() == [150.0, 160.3, 140.0, 145.0]
    assert table["gridconv_handcrafted-gt P2 h36m16"].tolist() == [75.0, 80.1, 70.0, 72.5]


def test_sweep_markdown_states_the_budget_the_runs_had():
    page = sweep.sweep_markdown(EXP_SHOW, "model.padding", "gridconv")
    assert "budget: max_epochs=3, train_stride=2, batch_size=64" in page
    assert "| quick-pads | z | 160.3 | 80.1 |" in page
    assert "knn" not in page
