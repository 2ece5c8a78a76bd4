"""The report's robustness section (lifting/report/robustness.py) from hand-written robustness records:
tables, the ranking the curves imply, the figures, results.md and the notebook."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest
from report_fixtures import INPUTS2D, METHODS
from test_report_notebook import stage_arguments

from lifting import report as R
from lifting.errors import DataError
from lifting.io import write_json
from lifting.report.figures import figure_png
from lifting.robustness import KINDS, level_label

LEVELS = {"jitter": [0, 2, 5, 10, 20], "gross": [0, 0.05, 0.1, 0.2, 0.4], "swap": [0, 0.05, 0.1, 0.2, 0.4],
          "missing": [0, 0.05, 0.1, 0.2, 0.4]}
#: The P1 increase (mm) at the top level of each kind: on gt, ranks per kind
#: jitter knn 2, simple_baseline 3, semgcn 1; gross 2, 1, 3; swap 1, 2, 3; missing 2, 3, 1
#: -> mean ranks knn 1.75, semgcn 2, simple_baseline 2.25.
INCREASE = {("knn", "gt"): (10.0, 50.0, 30.0, 1.0), ("simple_baseline", "gt"): (20.0, 40.0, 35.0, 2.0),
            ("semgcn", "gt"): (5.0, 60.0, 40.0, 0.5)}
BASE = {"knn": 100.0, "simple_baseline": 80.0, "semgcn": 75.0}


def record(run: str, input2d: str, increase: tuple[float, ...], base: float) -> dict:
    """A robustness record shaped like the stage's: P1 rises linearly in the level's index to
    ``base + increase`` at the top level; P2 is 0.8 x P1."""
    metrics = {kind: {level_label(kind, level): {"p1_mm": base + top * k / 4, "p2_mm": 0.8 * (base + top * k / 4)}
                      for k, level in enumerate(LEVELS[kind])}
               for kind, top in zip(KINDS, increase)}
    return {"method": run, "architecture": run, "input2d": input2d,
            "protocol": {"test_frame_stride": 40, "test_frames": 393, "perturbed_frames": 15952,
                         "perturbation_seed": 0, "seeds": [0], "joint_set": "h36m17", "flip_test": False,
                         "temporal": False, "levels": LEVELS, "kinds": {}, "metric": "P1"},
            "metrics": metrics}


def write_records(metrics_dir: Path, pairs) -> None:
    for run, input2d in pairs:
        increase = INCREASE.get((run, input2d), (12.0, 45.0, 33.0, 3.0))
        write_json(record(run, input2d, increase, BASE[run] + 30.0 * (input2d != "gt")),
                   metrics_dir / "robustness" / f"{run}-{input2d}.json")
        write_json({"seconds": 4.5, "samples_per_s": 1500.0}, metrics_dir / "robustness" / "speed" / f"{run}-{input2d}.json")


@pytest.fixture()
def records(tmp_path) -> dict:
    write_records(tmp_path, R.run_grid(METHODS, INPUTS2D))
    return R.load_robustness(tmp_path, R.run_grid(METHODS, INPUTS2D))


def test_records_are_loaded_in_grid_order_with_their_speed_and_absent_ones_skipped(tmp_path):
    grid = R.run_grid(METHODS, INPUTS2D)
    write_records(tmp_path, [grid[2], grid[0]])
    loaded = R.load_robustness(tmp_path, grid)
    assert list(loaded) == [grid[0], grid[2]] and loaded[grid[0]]["seconds"] == 4.5
    (tmp_path / "robustness" / f"{grid[0][0]}-{grid[0][1]}.json").write_text("{not json")
    with pytest.raises(DataError, match=r"knn-gt\.json: not valid JSON"):
        R.load_robustness(tmp_path, grid)
    write_json({"metrics": {"jitter": {}}, "protocol": {"levels": LEVELS}},
               tmp_path / "robustness" / f"{grid[0][0]}-{grid[0][1]}.json")
    with pytest.raises(DataError, match="a robustness record needs metrics and protocol levels"):
        R.load_robustness(tmp_path, grid)


def test_each_kinds_table_gives_p1_per_level_and_the_increase(records):
    table = R.robustness_table(records, "gross")
    assert list(table.columns) == ["method", "2D input", "0%", "5%", "10%", "20%", "40%", "increase (mm)"]
    row = table[(table["method"] == "simple_baseline") & (table["2D input"] == "gt")].iloc[0]
    assert row[["0%", "5%", "10%", "20%", "40%"]].tolist() == [80.0, 90.0, 100.0, 110.0, 120.0]
    assert row["increase (mm)"] == 40.0
    assert [title for _, title, _ in R.kind_tables(records)] == [
        "Gaussian jitter (px)", "gross errors (share of joints)", "left/right swaps (share of frames)",
        "missing joints (share of joints)"]


def test_the_ranking_is_the_mean_rank_of_the_increases_over_the_kinds(records):
    increases = R.degradation(records).set_index(["method", "2D input"])
    assert increases.loc[("semgcn", "gt")].tolist() == [5.0, 60.0, 40.0, 0.5]
    gt, noisy = R.ranking_sentences(records)
    assert gt.startswith("On gt 2D, knn degrades least.")
    assert "knn (1.75), semgcn (2), simple_baseline (2.25)" in gt
    assert "Gaussian jitter: semgcn +5.0 < knn +10.0 < simple_baseline +20.0" in gt
    assert "missing joints: semgcn +0.5 < knn +1.0 < simple_baseline +2.0" in gt
    assert noisy.startswith("On noisy 2D, knn degrades least.")  # all equal: ties keep the grid's order
    assert "knn (1), simple_baseline (1), semgcn (1)" in noisy


def test_results_markdown_has_the_robustness_section_from_the_records(records, runs):
    text = R.results_markdown(runs, robustness=records)
    section = text.split("## Robustness to worse 2D", 1)[1].split("## Published figures", 1)[0]
    assert "every 40th frame of each run is scored (393 frames)" in section
    for title in ("Gaussian jitter (px)", "gross errors (share of joints)", "left/right swaps (share of frames)",
                  "missing joints (share of joints)"):
        assert f"### {title}: P1 (mm) by level" in section
    assert "| simple_baseline | gt | 80.0 | 90.0 | 100.0 | 110.0 | 120.0 | 40.0 |" in section
    assert "- On gt 2D, knn degrades least." in section
    full = runs[("knn", "gt")]["metrics"]["mpjpe_mm"]["action_mean"]
    assert f"| knn | gt | 393 | 100.0 | {full:.1f} | {100.0 - full:.1f} |" in section
    assert "## Robustness" not in R.results_markdown(runs)  # without records, no section


def test_one_figure_per_kind_one_line_per_method_one_panel_per_input(records):
    figure = R.plot_robustness(records, "jitter")
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes] == ["Gaussian jitter, 2D input: gt", "Gaussian jitter, 2D input: noisy"]
    lines = {line.get_label(): line for line in axes[0].get_lines()}
    assert list(lines) == METHODS
    assert lines["semgcn"].get_xdata().tolist() == [0, 2, 5, 10, 20]
    assert lines["semgcn"].get_ydata().tolist() == [75.0, 76.25, 77.5, 78.75, 80.0]
    swaps = R.plot_robustness(records, "swap").get_axes()[0]
    assert swaps.get_lines()[0].get_xdata().tolist() == [0, 5, 10, 20, 40] and "%" in swaps.get_xlabel()
    assert figure_png(figure).startswith(b"\x89PNG")


def test_the_notebook_shows_a_figure_per_kind_the_tables_and_the_ranking(tmp_path, artefacts):
    from stages import report as stage

    metrics = tmp_path / "metrics"
    shutil.copytree(artefacts["metrics"], metrics)
    grid = R.run_grid(METHODS, INPUTS2D)
    write_records(metrics, grid)
    params = {"data": {"source": "embedded", "inputs2d": INPUTS2D}, "runs": {m: INPUTS2D for m in METHODS},
              "report": {"qualitative_frames": 0}}
    stage.main(stage_arguments(tmp_path, {**artefacts, "metrics": metrics}, params))
    page = (tmp_path / "reports" / "comparison.html").read_text(encoding="utf-8")
    section = page.split("Robustness to worse 2D", 1)[1].split("Training curves", 1)[0]
    images = re.findall(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"', section)
    assert len(images) == len(KINDS) and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "On gt 2D, knn degrades least." in section and "The scored subsample against the whole test set" in section
    assert "No robustness record" not in section
    results = (tmp_path / "results.md").read_text(encoding="utf-8")
    runs = R.load_metrics(metrics, grid)
    assert results == R.results_markdown(runs, R.load_train_logs(artefacts["train_logs"], grid),
                                         R.load_convergence(artefacts["convergence"], grid), R.load_detector(metrics),
                                         R.load_3dhp(metrics, grid), robustness=R.load_robustness(metrics, grid))
    assert "## Robustness to worse 2D" in results
