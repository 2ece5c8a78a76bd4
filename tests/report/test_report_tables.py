"""The report's tables, labels and their text renderings (HTML, Markdown), from synthetic artefacts."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from report_fixtures import INPUTS2D, METHODS, small_record

from lifting import report as R
from lifting.errors import DataError
from lifting.skeleton import H36M17


def test_leaderboard_has_one_row_per_method_and_input_with_the_metrics_numbers(runs):
    board = R.leaderboard(runs)
    assert sorted(zip(board["method"], board["2D input"])) == sorted((m, i) for m in METHODS for i in INPUTS2D)
    for _, row in board.iterrows():
        record = runs[(row["method"], row["2D input"])]
        for key, short, _ in R.PROTOCOLS:
            assert row[f"{short} action-mean"] == record["metrics"][key]["action_mean"]
            assert row[f"{short} frame-mean"] == record["metrics"][key]["frame_mean"]
        assert row["params"] == record["parameters"] and row["train s"] == record["training"]["seconds"]
    # grouped by input (in params order), best P1 first within each input
    assert list(board["2D input"]) == ["gt"] * 3 + ["noisy"] * 3
    for _, group in board.groupby("2D input"):
        assert group["P1 action-mean"].is_monotonic_increasing
    assert board.loc[board["method"] == "semgcn", "joints"].unique().tolist() == [16]
    # the synthetic runs are tens of mm apart: distinct ranks
    assert board["rank"].tolist() == ["1", "2", "3"] * 2


def test_leaderboard_seeds_plateau_gap_and_convergence_from_the_artefacts(runs, logs, convergence):
    board = R.leaderboard(runs, logs, convergence).set_index(["method", "2D input"])
    baseline = board.loc[("simple_baseline", "gt")]
    assert baseline["seeds"] == 3 and baseline["P1 std"] == 0.5 and baseline["samples seen"] == 1000
    assert baseline["plateau P1"] == 52.5
    assert baseline["gap to plateau %"] == pytest.approx(100 * (baseline["P1 action-mean"] - 52.5) / 52.5)
    # 300 - 10 k (+ seed) per 100 samples: -0.1 mm/sample over the last 3 points (200 samples)
    assert baseline["last-fifth change mm"] == pytest.approx(-20.0)
    assert baseline["convergence"] == "still falling: -20.0 mm over the last fifth"
    semgcn = board.loc[("semgcn", "gt")]
    assert semgcn["seeds"] == 1 and pd.isna(semgcn["P1 std"]) and semgcn["plateau P1"] == 82.5
    assert semgcn["convergence"] == "levelled off: +0.0 mm over the last fifth"
    assert "paper's GT-2D model" in semgcn["notes"]
    # knn has no curve; semgcn on noisy is an old-style file: no seeds, no samples, no curve, no plateau
    assert board.loc[("knn", "gt"), "convergence"] == "–"
    old = board.loc[("semgcn", "noisy")]
    assert pd.isna(old["seeds"]) and pd.isna(old["samples seen"]) and old["convergence"] == "–"
    assert pd.isna(old["plateau P1"]) and pd.isna(old["gap to plateau %"])
    shown = R.formatted_leaderboard(R.leaderboard(runs, logs, convergence)).set_index(["method", "2D input"])
    mean = runs[("simple_baseline", "gt")]["metrics"]["mpjpe_mm"]["action_mean"]
    assert shown.loc[("simple_baseline", "gt"), "P1 action-mean"] == f"{mean:.1f} ± 0.5"
    assert shown.loc[("simple_baseline", "gt"), "samples seen"] == "1,000"
    assert shown.loc[("semgcn", "noisy"), "seeds"] == "–" and shown.loc[("semgcn", "noisy"), "plateau P1"] == "–"
    assert shown.loc[("semgcn", "noisy"), "gap to plateau"] == "–"
    assert "P1 std" not in shown.columns and "last-fifth change mm" not in shown.columns


def test_leaderboard_known_answers_for_ties_gap_and_mean_std():
    """A (50.0 ± 0.2) and B (50.3 ± 0.5) differ by less than B's spread: both "1="; C (one seed,
    60 mm) is beaten by both by more than 2 mm: "3". A trained to convergence reaches 40 mm."""
    runs = {("a", "gt"): small_record("a", p1=50.0, seeds=3, std=0.2),
            ("b", "gt"): small_record("b", p1=50.3, seeds=3, std=0.5),
            ("c", "gt"): small_record("c", p1=60.0, seeds=1, std=None)}
    convergence = {("a", "gt"): {"run": "a", "input2d": "gt", "recipes": [],
                                 "plateau": {"p1": 40.0, "converged": False}}}
    board = R.leaderboard(runs, convergence=convergence)
    assert board["method"].tolist() == ["a", "b", "c"] and board["rank"].tolist() == ["1=", "1=", "3"]
    assert board["gap to plateau %"].iloc[0] == pytest.approx(25.0)
    shown = R.formatted_leaderboard(board)
    assert shown["P1 action-mean"].tolist() == ["50.0 ± 0.2", "50.3 ± 0.5", "60.0"]
    assert shown["plateau P1"].tolist() == ["40.0 (not converged)", "–", "–"]
    assert shown["gap to plateau"].tolist() == ["+25.0 %", "–", "–"]
    assert shown["seeds"].tolist() == ["3", "3", "1"]
    page = R.leaderboard_html(runs, convergence=convergence)
    assert page.count('<tr class="best">') == 2  # both runs that share rank 1
    assert "a difference within the seeds&#x27; spread is not a ranking" in page


def test_a_plateau_of_another_configuration_is_not_shown():
    record = small_record("a", p1=50.0)
    record["protocol"]["configuration"] = "detected"
    convergence = {("a", "gt"): {"configuration": "gt", "plateau": {"p1": 40.0, "converged": True}}}
    row = R.leaderboard({("a", "gt"): record}, convergence=convergence).iloc[0]
    assert pd.isna(row["plateau P1"]) and "plateau measured for the gt configuration" in row["notes"]
    unnamed = {("a", "gt"): {"plateau": {"p1": 40.0, "converged": True}}}
    assert R.leaderboard({("a", "gt"): record}, convergence=unnamed).loc[0, "plateau P1"] == 40.0


def test_published_numbers_sit_beside_the_matching_method_and_input_kind(runs):
    board = R.leaderboard(runs).set_index(["method", "2D input"])
    assert board.loc[("semgcn", "gt"), "published P1"] == "42.14"
    assert board.loc[("semgcn", "gt"), "published P2"] == "33.53"
    assert board.loc[("simple_baseline", "gt"), "published P1"] == "44.40"
    assert pd.isna(board.loc[("semgcn", "noisy"), "published P1"])  # our synthetic detector matches no paper's
    assert pd.isna(board.loc[("knn", "gt"), "published P1"])
    assert R.published_for("modulated_gcn", "cpn_ft_h36m_dbb").p1 == "49.39"
    assert R.published_for("gridconv_learnable", "gt").variant == "D-GridConv, learnable SGT"
    assert R.published_for("gridconv_handcrafted", "gt").variant == "D-GridConv, handcrafted SGT"


def test_budget_label_marks_budget_limited_runs_only():
    assert R.budget_label(small_record()) == "budget-limited (≤3 epochs, 1/2 of training frames, batch 256)"
    assert R.budget_label(small_record(trained=False)) == "budget-limited (1/2 of training frames)"
    paper = small_record(budget={"max_epochs": None, "batch_size": None, "train_stride": 1})
    assert R.budget_label(paper) is None
    recipe = small_record(budget={"max_epochs": 4, "batch_size": 64, "train_stride": 2, "lr_scale": 3.0,
                                  "cosine": True})
    assert R.budget_label(recipe) == "budget-limited (≤4 epochs, 1/2 of training frames, batch 64, lr ×3, cosine lr)"
    linear = small_record(budget={"max_epochs": 4, "train_stride": 1, "decay": "linear", "warmup": 0.05,
                                  "bf16_cpu": True})
    assert R.budget_label(linear) == "budget-limited (≤4 epochs, linear lr, 5% warm-up, bf16 on the CPU)"
    kept = small_record(budget={"max_epochs": 4, "train_stride": 1, "decay": "paper", "warmup": 0.0})
    assert R.budget_label(kept) == "budget-limited (≤4 epochs)"
    subsampled = small_record(budget={"max_epochs": None, "batch_size": None, "train_stride": 4})
    assert R.budget_label(subsampled) == "paper schedule on 1/4 of training frames"
    notes = R.run_notes(small_record(checkpoint="best epoch ON THE TEST SET (as several papers do; optimistic)"))
    assert "budget-limited" in notes and "checkpoint selected on the test set" in notes


def test_banner_says_embedded_numbers_are_not_comparable_and_names_the_budget():
    paper = {"max_epochs": None, "batch_size": None, "train_stride": 1}
    embedded = R.banner({("semgcn", "gt"): small_record(), ("knn", "gt"): small_record("knn", budget=paper)})
    assert not embedded["comparable"] and embedded["budget_limited"]
    assert "NOT comparable with published Human3.6M" in embedded["lines"][0]
    assert any(line.startswith("Budget-limited: 1 of 2 runs were trained under a budget (each run's is in its notes")
               for line in embedded["lines"])
    h36m = R.banner({("semgcn", "gt"): small_record(source="h36m", budget=paper)})
    assert h36m["comparable"] and not h36m["budget_limited"] and len(h36m["lines"]) == 1
    assert "NOT comparable" not in R.banner_html({("semgcn", "gt"): small_record(source="h36m", budget=paper)})


def test_results_markdown_is_generated_from_the_artefacts(runs, logs, convergence):
    text = R.results_markdown(runs, logs, convergence)
    assert text.startswith("# Results") and "do not edit by hand" in text
    assert "NOT comparable with published Human3.6M" in text and "budget-limited (≤3 epochs" in text
    table_rows = [line for line in text.splitlines() if line.startswith("| ")]
    header = next(r for r in table_rows if r.startswith("| rank | method | 2D input |"))
    for column in ("seeds", "plateau P1", "gap to plateau", "samples seen", "convergence"):
        assert f"| {column} |" in header
    for (method, input2d), record in runs.items():
        row = next(r for r in table_rows if re.match(rf"\| \d=? \| {method} \| {input2d} \|", r))
        mean = record["metrics"]["mpjpe_mm"]["action_mean"]
        assert f"| {mean:.1f} |" in row or f"| {mean:.1f} ± 0.5 |" in row
    row = next(r for r in table_rows if "| simple_baseline | gt |" in r)
    assert "| still falling: -20.0 mm over the last fifth |" in row and "| 52.5 |" in row
    for rule in R.LEADERBOARD_RULES:
        assert f"- {rule}" in text
    assert "## Plateaus" in text and "| simple_baseline | gt | gt | 52.5 |" in text
    assert "## Published figures on Human3.6M" in text and "| semgcn | SemGCN | 1 | GT (16 joints) | 42.14 |" in text
    assert "gridconv" not in text  # published rows only for the methods in the run
    assert re.search(r"\d{4}-\d\d-\d\d", text) is None  # no timestamps: committed, diff-friendly


def test_results_markdown_without_logs_or_convergence_shows_dashes(runs):
    text = R.results_markdown(runs)
    assert "## Plateaus" not in text
    lines = text.splitlines()
    header = [c.strip() for c in next(r for r in lines if r.startswith("| rank |")).split("|")]
    row = [c.strip() for c in next(r for r in lines if "| simple_baseline | gt |" in r).split("|")]
    shown = dict(zip(header, row))
    assert (shown["plateau P1"], shown["gap to plateau"], shown["convergence"]) == ("–", "–", "–")
    assert shown["seeds"] == "3" and shown["samples seen"] == "1,000"  # from the metrics file alone


def test_write_results_md_writes_the_same_text(tmp_path, runs, logs, convergence):
    path = tmp_path / "reports" / "results.md"
    R.write_results_md(path, runs, logs, convergence)
    assert path.read_text(encoding="utf-8") == R.results_markdown(runs, logs, convergence)


def test_leaderboard_html_has_a_row_per_run_and_marks_the_best(runs, logs, convergence):
    page = R.leaderboard_html(runs, logs, convergence)
    body = page.split('<table class="lifting leaderboard">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert sorted((c[1], c[2]) for c in cells) == sorted((m, i) for m in METHODS for i in INPUTS2D)
    assert [c[0] for c in cells] == ["1", "2", "3"] * 2
    assert body.count('<tr class="best">') == len(INPUTS2D)
    assert "test set, logged only, never used for selection" in page


def test_wide_tables_scroll_sideways_inside_the_page(runs):
    """13 actions x 12 runs ran off a 1400-pixel page: every table sits in a box that scrolls."""
    wide = pd.DataFrame(np.full((13, 12), 123.4), index=[f"Action{i}" for i in range(13)],
                        columns=[f"run{i} / noisy" for i in range(12)]).rename_axis("action")
    for page in (R.number_table_html(wide, "action"), R.leaderboard_html(runs), R.published_html(METHODS)):
        box = re.search(r'<div class="lifting-scroll" style="([^"]*)">\s*<table', page)
        assert box and "overflow-x: auto" in box.group(1)
        assert page.count("<table") == page.count('<div class="lifting-scroll"')
    assert "div.lifting-scroll { overflow-x: auto;" in R.number_table_html(wide, "action")


def test_action_and_joint_tables(runs):
    actions = R.action_table(runs)
    assert list(actions.index) == ["Jump", "Walk", "action mean"]
    assert actions.loc["action mean", "semgcn / gt"] == runs[("semgcn", "gt")]["metrics"]["mpjpe_mm"]["action_mean"]
    joints = R.joint_table(runs)
    assert list(joints.index) == list(H36M17.names)
    assert np.isnan(joints.loc["Nose", "semgcn / gt"]) and joints.loc["Hip", "knn / gt"] == 0.0


def test_protocol_rows_list_per_run_differences(runs):
    rows = dict(R.protocol_rows(runs))
    assert rows["data_source"] == "embedded"
    assert "h36m17 (knn-gt" in rows["joint_set"] and "h36m16 (semgcn-gt, semgcn-noisy)" in rows["joint_set"]
    assert rows["seeds"].startswith("0 (knn-gt") and "0, 1, 2 (simple_baseline-gt, simple_baseline-noisy)" in rows[
        "seeds"]
    assert "null (semgcn-noisy)" in rows["configuration"]  # the old-style file has none


def test_plateau_table_names_the_recipe_and_its_cost(convergence):
    table = R.plateau_table(convergence).set_index("method")
    assert table.loc["simple_baseline", "recipe"] == "paper recipe (Adam 1e-3, batch 64)"
    assert table.loc["semgcn", "plateau P1"] == 82.5 and table.loc["semgcn", "core-seconds"] == 320.0
    shown = R.formatted_plateaus(R.plateau_table(convergence)).set_index("method")
    assert shown.loc["semgcn", "samples seen"] == "16,000" and shown.loc["semgcn", "converged"] == "yes"


def test_load_metrics_names_the_missing_file_and_the_stage(tmp_path):
    with pytest.raises(DataError, match=r"semgcn-gt\.json.*dvc repro evaluate_semgcn@gt"):
        R.load_metrics(tmp_path, [("semgcn", "gt")])


def test_report_options_defaults_and_unknown_keys():
    assert R.report_options(None) == R.REPORT_DEFAULTS
    assert R.report_options({"qualitative_frames": 1})["qualitative_frames"] == 1
    with pytest.raises(ValueError, match="unknown key"):
        R.report_options({"qualitative_frame": 1})



def test_results_markdown_shows_the_detected_sources_accuracy(runs, tmp_path):
    def split(mean, views):
        return {"keypoints": 17 * views, "mean_px": mean, "median_px": mean / 2,
                "pck": {"10px": 40.0, "20px": 70.0, "5px": 20.0}, "per_joint_px": {f"j{k}": mean for k in range(17)}}

    detector = {"test": {**split(28.04, 100), "swapped_pct": 12.34}, "train": split(21.0, 300),
                "parameters": 738113, "threads": 2,
                "training": {"epochs": 6, "train_views": 1200}, "crop": {"width": 48, "height": 64}}
    text = R.results_markdown(runs, detector=detector)
    assert "## The `detected` 2D source" in text and "738,113 parameters, trained 6 epochs on 1,200" in text
    assert ("| subjects | views | mean error (px) | median error (px) | PCK@5px (%) | PCK@10px (%) | PCK@20px (%) | "
            "left/right swapped (%) |") in text
    assert "| test | 100 | 28.0 | 14.0 | 20.0 | 40.0 | 70.0 | 12.3 |" in text
    assert "| train | 300 | 21.0 | 10.5 | 20.0 | 40.0 | 70.0 | – |" in text
    assert "## The `detected` 2D source" not in R.results_markdown(runs)
    (tmp_path / "detector.json").write_text('{"skipped": "no detected input"}')
    assert R.load_detector(tmp_path) is None and R.load_detector(tmp_path / "absent") is None


def test_context_runs_are_listed_with_and_without_the_image(tmp_path):
    """Context-Aware PoseFormer's recorded runs: one row each, the ablation named, other files refused."""
    for name, image_context, p1 in (("context_poseformer-detected", True, 120.0),
                                    ("context_poseformer_2d_only-detected", False, 131.5)):
        record = small_record("context_poseformer", "detected", seeds=1, p1=p1, samples_seen=40_000)
        record["config"] = {"image_context": image_context}
        if not image_context:  # a run named for itself (stages.train --name); its network is still CA-PF
            record.update(method="context_poseformer_2d_only", architecture="context_poseformer")
        (tmp_path / f"{name}.json").write_text(json.dumps(record))
    (tmp_path / "semgcn-detected.json").write_text(json.dumps(small_record("semgcn", "detected", seeds=1)))
    table = R.context_table(R.load_context_runs(tmp_path))
    assert table["network"].tolist() == ["with image context", "without the image (2D tokens only)"]
    assert table["P1"].tolist() == [120.0, 131.5] and table["samples seen"].tolist() == [40_000, 40_000]
    html_text = R.context_html(R.load_context_runs(tmp_path))
    assert "131.5" in html_text and "40,000" in html_text
    assert R.load_context_runs(tmp_path / "absent") == [] and R.load_context_runs(None) == []
    (tmp_path / "context_poseformer-gt.json").write_text(json.dumps(small_record("semgcn", "gt", seeds=1)))
    with pytest.raises(ValueError, match="not a Context-Aware PoseFormer metrics file"):
        R.load_context_runs(tmp_path)


def test_a_staged_runs_row_gives_the_whole_chain():
    record = small_record("rie", samples_seen=10_000)
    record["training"]["stages"] = {  # as the metrics file has them: names sorted
        "rie": {"epochs": 1, "samples_seen": 10_000, "train_seconds": 60.0, "curve_p1": 85.0},
        "rie_stage1": {"epochs": 2, "samples_seen": 80_000, "train_seconds": 600.0, "curve_p1": 98.9},
        "rie_stage2": {"epochs": 1, "samples_seen": 40_000, "train_seconds": 300.0, "curve_p1": 90.1}}
    notes = R.run_notes(record)
    assert ("trained in 3 stages (rie_stage1: 2 epochs, 80,000 samples, 10.0 min, curve P1 98.9 mm; rie_stage2: "
            "1 epochs, 40,000 samples, 5.0 min, curve P1 90.1 mm; rie: 1 epochs, 10,000 samples, 1.0 min, curve P1 "
            "85.0 mm; samples seen and training time are the chain's totals)") in notes
    row = R.leaderboard({("rie", "gt"): record}).iloc[0]
    assert row["samples seen"] == 130_000 and row["train s"] == 960.0
