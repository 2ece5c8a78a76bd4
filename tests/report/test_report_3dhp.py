"""The report's PCK/AUC columns and its MPI-INF-3DHP section (lifting/report/cross_dataset.py), from
metrics files shaped as the evaluate and evaluate_3dhp stages write them."""

from __future__ import annotations

import copy
import json

from lifting import report as R
from lifting.report.cross_dataset import SCENE_LABELS


def scored_3dhp(pck: float, auc: float, p1: float, seeds=(0,)) -> dict:
    """A metrics/3dhp record: the per-seed headline numbers equal, their std None with one seed, 0.5 with more."""
    std = None if len(seeds) == 1 else 0.5
    grouped = lambda value: {"all": value, "by_scene": {scene: value + i for i, scene in enumerate(SCENE_LABELS)},
                             "by_sequence": {}, "by_activity": {}, "by_joint": {}}  # noqa: E731
    return {"method": "x", "input2d": "gt", "metrics": {"pck150_pct": grouped(pck), "auc_pct": grouped(auc),
                                                         "mpjpe_mm": grouped(p1), "h36m16": {"mpjpe_mm": {"all": p1}},
                                                         "num_frames": 2929},
            "seeds": {"seeds": list(seeds), "mean": {"pck150": pck, "auc": auc, "p1": p1, "p1_h36m16": p1},
                      "std": {"pck150": std, "auc": std, "p1": std, "p1_h36m16": std}}}


def test_the_leaderboard_shows_pck_and_auc_beside_p1_with_their_seed_spread(runs):
    runs = copy.deepcopy(runs)
    record = runs["simple_baseline", "gt"]  # three seeds
    record["metrics"]["pck150_pct"] = {"action_mean": 91.234, "frame_mean": 90.0}
    record["metrics"]["auc_pct"] = {"action_mean": 55.55, "frame_mean": 50.0}
    record["seeds"]["std"].update({"pck150": 0.5, "auc": 0.25})
    shown = R.formatted_leaderboard(R.leaderboard(runs)).set_index(["method", "2D input"])
    assert shown.loc[("simple_baseline", "gt"), "PCK@150 %"] == "91.2 ± 0.5"
    assert shown.loc[("simple_baseline", "gt"), "AUC %"] == "55.5 ± 0.2"
    assert shown.loc[("knn", "gt"), "PCK@150 %"] == "–"  # a metrics file from before PCK existed
    assert "PCK@150 % and AUC %" in R.results_markdown(runs)


def test_the_3dhp_table_ranks_runs_by_pck_and_gives_each_scene(tmp_path):
    (tmp_path / "3dhp").mkdir()
    for (run, input2d), record in {("knn", "gt"): scored_3dhp(60.0, 30.0, 120.0),
                                   ("semgcn", "gt"): scored_3dhp(70.0, 35.0, 100.0, seeds=(0, 1)),
                                   ("semgcn", "noisy"): {"skipped": "not configured"}}.items():
        (tmp_path / "3dhp" / f"{run}-{input2d}.json").write_text(json.dumps(record))
    records = R.load_3dhp(tmp_path, [("knn", "gt"), ("semgcn", "gt"), ("semgcn", "noisy"), ("hgn", "gt")])
    assert list(records) == [("knn", "gt"), ("semgcn", "gt")]  # skipped and absent files give no row
    table = R.mpi3dhp_table(records)
    assert table["method"].tolist() == ["semgcn", "knn"]
    assert table.iloc[0][["PCK %", "AUC %", "PCK GS", "PCK no GS", "PCK outdoor", "P1 mm"]].tolist() == \
        ["70.0 ± 0.5", "35.0 ± 0.5", "70.0", "71.0", "72.0", "100.0 ± 0.5"]
    assert table.iloc[1]["PCK %"] == "60.0" and table.iloc[1]["frames"] == 2929


def test_without_3dhp_scores_the_report_says_how_to_get_them(runs):
    assert "data.mpi3dhp_dir" in R.mpi3dhp_html({})
    assert "## MPI-INF-3DHP" not in R.results_markdown(runs)
    with_3dhp = R.results_markdown(runs, mpi3dhp={("knn", "gt"): scored_3dhp(60.0, 30.0, 120.0)})
    assert "## MPI-INF-3DHP, zero-shot" in with_3dhp and "| knn | gt | 1 | 60.0 | 30.0 |" in with_3dhp
