"""Per-frame errors, qualitative frames and the report's figures (headless, from synthetic artefacts)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle
from report_fixtures import INPUTS2D, METHODS, small_record

from lifting import report as R
from lifting.skeleton import H36M16

PNG = b"\x89PNG\r\n\x1a\n"


def test_per_frame_errors_reproduce_the_metrics_frame_mean(artefacts, runs):
    predictions = R.load_predictions(artefacts["predictions"], R.run_grid(METHODS, INPUTS2D))
    assert predictions[("semgcn", "gt")][1] is H36M16
    errors = R.per_frame_errors(predictions, R.load_targets(artefacts["aligned"]))
    assert len(errors) == len(METHODS) * len(INPUTS2D) * 48
    check = R.check_against_metrics(errors, runs).set_index("run")
    assert check["agree"].astype(bool).all(), check
    single = check[check["seeds"] == 1]
    assert len(single) == 4 and (single["compared"] == "P1 frame-mean").all()
    # a run of 3 seeds stores their mean; its predictions are the first seed's: compared on that seed
    assert check.loc["simple_baseline / gt", "compared"] == "P1 action-mean of seed 0"
    assert check.loc["simple_baseline / gt", "metrics file"] == pytest.approx(
        runs[("simple_baseline", "gt")]["seeds"]["per_seed"]["p1"][0])
    spoiled = {key: dict(record) for key, record in runs.items()}
    spoiled[("simple_baseline", "gt")]["seeds"] = {"seeds": [0, 1], "per_seed": {"p1": [1.0, 2.0]}}
    assert not R.check_against_metrics(errors, spoiled).set_index("run").loc["simple_baseline / gt", "agree"]


def test_qualitative_frames_are_deterministic_and_from_different_actions(artefacts):
    predictions = R.load_predictions(artefacts["predictions"], R.run_grid(METHODS, INPUTS2D))
    keys = R.common_test_keys(predictions)
    picked = R.select_qualitative_frames(keys, 2)
    assert list(picked["action"]) == ["Jump", "Walk"] and list(picked["frame"]) == [3, 3]
    assert picked.equals(R.select_qualitative_frames(keys.sample(frac=1.0, random_state=1), 2))
    assert R.select_qualitative_frames(keys, 0).empty


def test_figures_render_headless_to_png(artefacts, runs, logs, convergence):
    predictions = R.load_predictions(artefacts["predictions"], R.run_grid(METHODS, INPUTS2D))
    targets = R.load_targets(artefacts["aligned"])
    errors = R.per_frame_errors(predictions, targets)
    key = R.select_qualitative_frames(R.common_test_keys(predictions), 1).iloc[0]
    inputs = {s: R.load_inputs2d(artefacts["aligned"], s) for s in INPUTS2D}
    figures = [
        R.plot_action_heatmap(R.action_table(runs)),
        R.plot_joint_errors(runs),
        R.plot_error_distributions(errors, METHODS, INPUTS2D),
        R.plot_training_curves(logs, METHODS, INPUTS2D),
        R.plot_compute(convergence, runs, INPUTS2D),
        R.plot_qualitative(key, predictions, targets, inputs, R.load_cameras(artefacts["cameras"]), METHODS, INPUTS2D),
    ]
    for figure in figures:
        assert R.figure_png(figure).startswith(PNG)
    qualitative = figures[-1]
    assert len(qualitative.axes) == len(INPUTS2D) * (2 + len(METHODS))
    three_d = [ax for ax in qualitative.axes if ax.name == "3d"]
    assert len(three_d) == len(INPUTS2D) * (1 + len(METHODS))
    assert all(np.allclose(ax.get_box_aspect(), ax.get_box_aspect()[0]) for ax in three_d)


def test_no_joint_bar_is_clipped_or_hidden_by_the_legend():
    """On gt, bars above 200 mm were hidden: a 350 mm bar must lie wholly inside its axes."""
    tall = small_record("semgcn", p1=120.0)
    tall["metrics"]["mpjpe_mm"]["by_joint"] = {"Hip": 0.0, "Head": 350.0, "LWrist": 210.0}
    runs = {("semgcn", "gt"): tall, ("knn", "gt"): small_record("knn", p1=60.0)}
    figure = R.plot_joint_errors(runs)
    figure.canvas.draw()
    (ax,) = figure.axes
    bottom, top = ax.get_ylim()
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() > 0]
    assert max(bar.get_height() for bar in bars) == 350.0
    assert all(bottom <= bar.get_y() and bar.get_y() + bar.get_height() <= top for bar in bars)
    assert top < 400.0  # the limit comes from the data, not a fixed value
    # the legend is the figure's, above the panel: no bar can sit behind it
    assert ax.get_legend() is None and len(figure.legends) == 1
    legend_box = figure.legends[0].get_window_extent()
    assert legend_box.y0 >= ax.get_window_extent().y1 - 1


def test_training_curves_plot_the_logged_test_curve_against_samples_seen(logs):
    figure = R.plot_training_curves(logs, METHODS, INPUTS2D)
    gt_curve, gt_loss, noisy_curve, _ = figure.axes
    assert "test-set curve, logged only (never used for selection)" in gt_curve.get_title()
    assert gt_curve.get_xlabel() == "samples seen" and gt_loss.get_xlabel() == "samples seen"
    # simple_baseline: 3 thin seed lines + their mean; semgcn: 1 seed line + its mean
    lines = gt_curve.get_lines()
    assert len(lines) == 3 + 1 + 1 + 1
    mean = next(line for line in lines if line.get_label() == "simple_baseline")
    assert list(mean.get_xdata()) == [100.0 * k for k in range(1, 11)]
    assert list(mean.get_ydata()) == [300.0 - 10.0 * k + 1.0 for k in range(1, 11)]  # mean of seeds 0, 1, 2
    # the noisy row holds an old-style log (no samples seen): it falls back to epochs
    assert noisy_curve.get_xlabel() == "epoch"
    assert "semgcn (validation)" in [line.get_label() for line in noisy_curve.get_lines()]


def test_compute_figure_has_one_line_per_run_and_the_pipeline_points(runs, convergence):
    figure = R.plot_compute(convergence, runs, INPUTS2D)
    # convergence records exist on gt only; the noisy row still shows the pipeline's own points
    samples_ax, seconds_ax, noisy_samples, _ = figure.axes
    for ax, key in ((samples_ax, "samples_seen"), (seconds_ax, "core_seconds")):
        assert ax.get_xscale() == "log"
        lines = ax.get_lines()
        assert sorted(line.get_label() for line in lines) == ["semgcn", "simple_baseline"]
        curve = next(line for line in lines if line.get_label() == "simple_baseline")
        recipe = convergence[("simple_baseline", "gt")]["recipes"][0]["curve"]
        assert list(curve.get_xdata()) == [point[key] for point in recipe]
        assert list(curve.get_ydata()) == [point["p1"] for point in recipe]
        points = [c for c in ax.collections if isinstance(c, PathCollection)]
        # 2 plateau stars + 2 pipeline runs (knn has samples_seen 0: no point on a log axis)
        assert len(points) == 2 + 2
    markers = [c.get_offsets()[0].tolist() for c in samples_ax.collections]
    p1 = runs[("simple_baseline", "gt")]["metrics"]["mpjpe_mm"]["action_mean"]
    assert [1000.0, p1] in markers and [16000.0, 52.5] in markers
    assert noisy_samples.get_lines() == [] and len(noisy_samples.collections) == 1  # old-style semgcn: none


def test_compute_figure_without_any_record_says_so():
    figure = R.plot_compute({}, {("m", "gt"): small_record("m")}, ["gt"])
    assert figure.axes[0].texts[0].get_text() == "no convergence curves or compute records"
    assert R.figure_png(figure).startswith(PNG)
