"""Known answers for the leaderboard's rules: seeds, last-fifth slope and flag, shared ranks, gap."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from report_fixtures import log_rows, small_record

from lifting import report as R
from lifting.errors import DataError


def test_last_fifth_change_is_the_least_squares_slope_times_the_span():
    samples = np.arange(1, 11) * 1000.0
    # a straight line: -0.001 mm per sample; the last fifth of 10 points is 2, so the fit uses 3
    # points (8000..10000) spanning 2000 samples
    assert R.last_fifth_change(samples, 100.0 - 0.001 * samples) == pytest.approx(-2.0)
    # 20 points: the last fifth is 4 points (17000..20000), spanning 3000 samples
    long = np.arange(1, 21) * 1000.0
    assert R.last_fifth_change(long, 100.0 - 0.001 * long) == pytest.approx(-3.0)
    # only the last fifth counts: a steep start does not make a flat end fall
    bent = np.where(samples <= 7000, 300.0 - 0.02 * samples, 160.0)
    assert R.last_fifth_change(samples, bent) == pytest.approx(0.0)
    # least squares, not end points: 50, 53, 50 has slope 0
    assert R.last_fifth_change([1, 2, 3], [50.0, 53.0, 50.0]) == pytest.approx(0.0)
    # unsorted input and NaNs: (1000, 99), (3000, 97), (4000, 96) is -0.001 mm/sample over 3000 samples
    assert R.last_fifth_change([3000, 1000, 2000, 4000], [97.0, 99.0, np.nan, 96.0]) == pytest.approx(-3.0)
    # too few points, or no span, give None
    assert R.last_fifth_change([1000, 2000], [60.0, 50.0]) is None
    assert R.last_fifth_change([1000, 1000, 1000], [60.0, 50.0, 40.0]) is None


def test_curve_change_fits_seed_by_seed_and_averages():
    falling2 = [100.0 - 1.0 * k for k in range(1, 11)]  # -1 mm per 1000 samples: -2 over the last 3 points
    falling4 = [100.0 - 2.0 * k for k in range(1, 11)]  # -4
    log = log_rows("m", "gt", {0: falling2, 1: falling4})
    assert R.curve_change(log) == pytest.approx(-3.0)
    # same evaluation points: the mean of the seeds' changes is the change of their mean curve
    mean_curve = log_rows("m", "gt", {0: [(a + b) / 2 for a, b in zip(falling2, falling4)]})
    assert R.curve_change(mean_curve) == pytest.approx(-3.0)
    old = pd.DataFrame({"method": ["m"], "input2d": ["gt"], "epoch": [1.0], "train_loss": [0.5]})
    assert R.curve_change(old) is None and R.curve_change(log.iloc[:0]) is None


def test_convergence_flag_threshold_is_the_larger_of_1_mm_and_2_percent_of_p1():
    assert R.convergence_flag(-2.0, 60.0) == "still falling: -2.0 mm over the last fifth"  # threshold 1.2
    assert R.convergence_flag(-1.0, 60.0) == "levelled off: -1.0 mm over the last fifth"
    assert R.convergence_flag(-2.0, 100.0) == "levelled off: -2.0 mm over the last fifth"  # threshold 2.0
    assert R.convergence_flag(-2.1, 100.0) == "still falling: -2.1 mm over the last fifth"
    assert R.convergence_flag(-1.1, 30.0) == "still falling: -1.1 mm over the last fifth"  # 2 % is 0.6: 1 mm
    assert R.convergence_flag(1.5, 60.0) == "rising: +1.5 mm over the last fifth"
    assert R.convergence_flag(None, 60.0) == "–" and R.convergence_flag(float("nan"), 60.0) == "–"
    assert "max(1 mm, 2% of P1)" in R.CONVERGENCE_RULE


def test_shared_ranks_within_the_seeds_spread():
    single = [R.rank_spread(None)] * 4  # one seed each: 2 mm
    assert R.shared_ranks([50.0, 51.5, 55.0, 55.5], single) == ["1=", "1=", "3=", "3="]
    assert R.shared_ranks([50.0, 50.5], [0.2, 0.3]) == ["1", "2"]  # 0.5 mm apart, spreads 0.3 at most
    assert R.shared_ranks([50.0, 50.5], [0.2, 0.6]) == ["1=", "1="]  # the larger spread decides
    # not transitive: B ties with A and with C, but A beats C by more than both spreads
    assert R.shared_ranks([50.0, 51.0, 51.5], [0.1, 2.0, 0.1]) == ["1=", "1=", "2"]
    assert R.shared_ranks([50.0, float("nan"), 60.0], single[:3]) == ["1", "–", "2"]
    assert R.rank_spread(0.4) == 0.4 and R.rank_spread(float("nan")) == 2.0


def test_gap_to_the_plateau_in_percent():
    assert R.gap_percent(55.0, 50.0) == pytest.approx(10.0)
    assert R.gap_percent(45.0, 50.0) == pytest.approx(-10.0)
    assert R.gap_percent(55.0, None) is None and R.gap_percent(None, 50.0) is None and R.gap_percent(5.0, 0.0) is None


def test_mean_std_formatting_and_seed_stats():
    assert R.format_mean_std(52.345, 0.41) == "52.3 ± 0.4"
    assert R.format_mean_std(52.3, None) == "52.3" and R.format_mean_std(None, 0.4) == "–"
    stats = R.seed_stats(small_record(p1=50.0, seeds=3, std=0.25))
    assert stats == {"seeds": 3, "p1": 50.0, "p1_std": 0.25, "p2": 35.0, "p2_std": 0.25, "p3": 45.0, "p3_std": 0.25,
                     "p1_h36m16": 50.0, "p1_h36m16_std": 0.25}
    one = R.seed_stats(small_record(p1=50.0, seeds=1, std=None))
    assert one["seeds"] == 1 and one["p1_std"] is None
    old = R.seed_stats(small_record(p1=50.0))
    assert old["seeds"] is None and old["p1"] == 50.0 and old["p1_std"] is None


def test_old_style_training_logs_read_with_empty_new_columns(tmp_path):
    with open(tmp_path / "m-gt.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "train_loss", "val_mpjpe_mm", "lr", "seconds", "samples_per_s"])
        writer.writerows([[1, 0.5, 200.0, 0.001, 4.0, 800.0], [2, 0.25, 150.0, 0.001, 4.0, 800.0]])
    logs = R.load_train_logs(tmp_path, [("m", "gt")])
    assert list(logs.columns) == R.LOG_COLUMNS and len(logs) == 2
    assert logs["val_mpjpe_mm"].tolist() == [200.0, 150.0]
    assert logs[["seed", "step", "samples_seen", "core_seconds", "test_p1_mm"]].isna().all().all()
    board = R.leaderboard({("m", "gt"): small_record("m", p1=120.0)}, logs)
    assert board.loc[0, "convergence"] == "–" and pd.isna(board.loc[0, "seeds"])


def test_training_logs_of_every_seed_and_no_rows_for_lookups(logs):
    assert set(logs["method"]) == {"simple_baseline", "semgcn"}
    # simple_baseline: 3 seeds x 10 points x 2 inputs; semgcn: 10 new-style points on gt, 3 old epochs on noisy
    assert len(logs) == 60 + 10 + 3
    assert logs["test_p1_mm"].dtype.kind == "f" and logs["val_mpjpe_mm"].dtype.kind == "f"
    baseline = logs[(logs["method"] == "simple_baseline") & (logs["input2d"] == "gt")]
    assert sorted(baseline["seed"].unique()) == [0.0, 1.0, 2.0] and baseline["samples_seen"].max() == 1000.0
    assert baseline["val_mpjpe_mm"].isna().all()  # no validation split


def test_convergence_records_may_be_absent_but_not_malformed(tmp_path, convergence):
    assert set(convergence) == {("simple_baseline", "gt"), ("semgcn", "gt")}
    assert R.load_convergence(tmp_path / "nowhere", [("m", "gt")]) == {}
    assert R.load_convergence(None, [("m", "gt")]) == {}
    (tmp_path / "m-gt.json").write_text(json.dumps({"run": "other", "input2d": "gt", "recipes": []}))
    with pytest.raises(DataError, match=r"m-gt\.json: holds run 'other'"):
        R.load_convergence(tmp_path, [("m", "gt")])
    (tmp_path / "m-gt.json").write_text("{")
    with pytest.raises(DataError, match=r"m-gt\.json: not valid JSON"):
        R.load_convergence(tmp_path, [("m", "gt")])


def test_experiments_plateaus_are_found_beside_the_runs_and_earlier_stages_are_not(tmp_path, convergence):
    record = next(iter(convergence.values()))
    for run, input2d in [("semgcn", "gt"), ("videopose3d", "gt"), ("rie_stage1", "gt"), ("rie", "gt"),
                         ("gridconv_handcrafted", "noisy")]:
        (tmp_path / f"{run}-{input2d}.json").write_text(json.dumps({**record, "run": run, "input2d": input2d}))
    grid = [("semgcn", "gt"), ("rie", "gt")]
    experiments = R.experiment_grid(tmp_path, grid)
    assert experiments == [("gridconv_handcrafted", "noisy"), ("videopose3d", "gt")]
    assert R.experiment_grid(tmp_path / "nowhere", grid) == []
    loaded = R.load_convergence(tmp_path, grid + experiments)
    table = R.plateau_table(loaded, pipeline_runs=grid)
    assert list(table["method"]) == ["semgcn", "rie", "gridconv_handcrafted (experiment)", "videopose3d (experiment)"]
    assert list(R.plateau_table(loaded)["method"]) == ["semgcn", "rie", "gridconv_handcrafted", "videopose3d"]
