"""The comparison report: tables, labels and figures from synthetic artefacts, and the rendered notebook."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lifting import metrics as lifting_metrics
from lifting import plots_template
from lifting import report as R
from lifting.data.h36m_cameras import h36m_cameras
from lifting.data.schema import cameras_to_frame, poses_to_frame, write_table
from lifting.errors import DataError
from lifting.io import write_json
from lifting.skeleton import H36M16, H36M17

METHODS = ["knn", "simple_baseline", "semgcn"]
INPUTS2D = ["gt", "noisy"]
JOINT_SETS = {"knn": H36M17, "simple_baseline": H36M17, "semgcn": H36M16}
NOISE_MM = {"knn": 40.0, "simple_baseline": 60.0, "semgcn": 90.0}
BUDGET = {"batch_size": 256, "max_epochs": 3, "train_stride": 2}


# ------------------------------------------------------------------------------------------------
# Synthetic artefacts, shaped like the evaluate/train/align stages' outputs


def synthetic_keys() -> pd.DataFrame:
    """Test rows (S9, S11) plus a few training rows: 2 actions x 2 cameras x 6 frames each."""
    rows = []
    for subject, split in (("S1", "train"), ("S9", "test"), ("S11", "test")):
        for action, sequence in (("Walk", "walk 1"), ("Jump", "jump 1")):
            for camera in ("54138969", "55011271"):
                for frame in range(6):
                    rows.append((subject, action, camera, sequence, frame, split))
    return pd.DataFrame(rows, columns=["subject", "action", "camera", "sequence", "frame", "split"])


def make_record(method, input2d, predicted, truth, actions, joint_set, budget=BUDGET, source="embedded",
                checkpoint="last epoch", selected=3):
    trained = method != "knn"
    return {
        "method": method,
        "input2d": input2d,
        "protocol": {"data_source": source, "test_subjects": ["S9", "S11"], "excluded_sequences": [],
                     "test_frame_stride": 1, "train_frame_stride": budget["train_stride"],
                     "joint_set": joint_set.name, "root": "both poses root-aligned (joint 0)", "flip_test": False,
                     "checkpoint": checkpoint, "budget": budget, "comparable_with_published_h36m": source == "h36m"},
        "metrics": lifting_metrics.evaluate(predicted, truth, actions, joint_names=joint_set.names),
        "parameters": {"knn": 0, "simple_baseline": 4_290_000, "semgcn": 270_000}.get(method, 1000),
        "training": {"seconds": 12.5 if trained else 0.01, "epochs": 3 if trained else 0,
                     "selected_epoch": selected if trained else 0, "samples": 100,
                     "samples_per_s": 800.0 if trained else None,
                     "schedule": {"epochs": 3, "batch_size": 256} if trained else None},
        "inference_samples_per_s": 5000.0,
    }


def write_artefacts(root: Path, methods=METHODS, inputs2d=INPUTS2D) -> dict[str, Path]:
    """Write metrics, training logs, predictions, aligned targets/inputs and cameras under ``root``."""
    rng = np.random.default_rng(0)
    keys = synthetic_keys()
    n = len(keys)
    truth17 = rng.normal(scale=250.0, size=(n, 17, 3)).astype(np.float32)
    truth17[:, 0] = 0.0
    common = {"joint_set": "h36m17", "data_source": "embedded"}
    aligned = root / "data/aligned"
    targets = pd.concat([keys, poses_to_frame(truth17, H36M17, "xyz")], axis=1)
    write_table(targets, aligned / "targets.parquet",
                {**common, "table": "targets", "units": "mm", "frame": "camera, root-relative"})
    for source in inputs2d:
        uv = rng.uniform(-0.4, 0.4, size=(n, 17, 2)).astype(np.float32)
        frame = pd.concat([keys[["subject", "sequence", "camera", "frame"]], poses_to_frame(uv, H36M17, "uv")], axis=1)
        write_table(frame, aligned / f"inputs2d_{source}.parquet",
                    {**common, "table": "inputs2d", "units": "screen-normalised", "frame": "image", "source2d": source})
    cameras = cameras_to_frame({s: h36m_cameras(s) for s in ("S1", "S9", "S11")})
    write_table(cameras, root / "data/parquet/cameras.parquet",
                {"table": "cameras", "units": "px, mm", "frame": "camera->world", "data_source": "embedded"})
    test = (keys["split"] == "test").to_numpy()
    test_keys = keys.loc[test, R.KEYS].reset_index(drop=True)
    for method in methods:
        joint_set = JOINT_SETS.get(method, H36M17)
        keep = [H36M17.index(name) for name in joint_set.names]
        truth = truth17[test][:, keep]
        for k, input2d in enumerate(inputs2d):
            noise = rng.normal(scale=NOISE_MM.get(method, 50.0) * (1 + 0.2 * k), size=truth.shape)
            predicted = (truth + noise).astype(np.float32)
            frame = pd.concat([test_keys, poses_to_frame(predicted, joint_set, "xyz")], axis=1)
            write_table(frame, root / f"data/predictions/{method}-{input2d}.parquet",
                        {"table": "predictions", "joint_set": joint_set.name, "units": "mm",
                         "frame": "camera, root-relative", "method": method, "source2d": input2d})
            write_json(make_record(method, input2d, predicted, truth, test_keys["action"].to_numpy(), joint_set),
                       root / f"metrics/{method}-{input2d}.json")
            log = root / f"metrics/train/{method}-{input2d}.csv"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["epoch", "train_loss", "val_mpjpe_mm", "lr", "seconds", "samples_per_s"])
                if method != "knn":
                    for epoch in range(1, 4):
                        writer.writerow([epoch, 1.0 / epoch, 300.0 / epoch, 0.001, 4.0, 800.0])
    return {"metrics": root / "metrics", "train_logs": root / "metrics/train", "predictions": root / "data/predictions",
            "aligned": aligned, "cameras": root / "data/parquet/cameras.parquet"}


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> dict[str, Path]:
    return write_artefacts(tmp_path_factory.mktemp("artefacts"))


@pytest.fixture(scope="module")
def runs(artefacts) -> dict:
    return R.load_metrics(artefacts["metrics"], METHODS, INPUTS2D)


def small_record(method="semgcn", input2d="gt", budget=None, source="embedded", checkpoint="last epoch",
                 trained=True) -> dict:
    """A hand-written metrics record with round numbers."""
    budget = budget if budget is not None else dict(BUDGET)
    block = {"action_mean": 50.0, "frame_mean": 48.0, "by_action": {"Walk": 40.0, "Jump": 60.0},
             "by_joint": {"Hip": 0.0, "Head": 70.0}}
    return {"method": method, "input2d": input2d,
            "protocol": {"data_source": source, "joint_set": "h36m16", "budget": budget, "checkpoint": checkpoint,
                         "flip_test": False, "comparable_with_published_h36m": source == "h36m"},
            "metrics": {"mpjpe_mm": block, "p_mpjpe_mm": {**block, "action_mean": 35.0},
                        "n_mpjpe_mm": {**block, "action_mean": 45.0}, "num_frames": 10, "num_actions": 2},
            "parameters": 270000,
            "training": {"seconds": 10.0, "epochs": 3, "selected_epoch": 3, "samples": 10, "samples_per_s": 3.0,
                         "schedule": {"epochs": 3} if trained else None},
            "inference_samples_per_s": 100.0}


# ------------------------------------------------------------------------------------------------
# Tables and labels


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


def test_published_table_holds_only_rows_with_numbers_and_filters_by_method():
    everything = R.published_table()
    assert len(everything) == len(R.published_rows()) and everything["P1 (mm)"].notna().all()
    assert all(float(p) > 0 for p in everything["P1 (mm)"])
    ours = R.published_table(["semgcn", "knn"])
    assert set(ours["method"]) == {"semgcn"} and len(ours) == 3
    assert "published, Human3.6M" == R.PUBLISHED_LABEL


def test_budget_label_marks_budget_limited_runs_only():
    assert R.budget_label(small_record()) == "budget-limited (≤3 epochs, 1/2 of training frames, batch 256)"
    assert R.budget_label(small_record(trained=False)) == "budget-limited (1/2 of training frames)"
    paper = small_record(budget={"max_epochs": None, "batch_size": None, "train_stride": 1})
    assert R.budget_label(paper) is None
    recipe = small_record(budget={"max_epochs": 4, "batch_size": 64, "train_stride": 2, "lr_scale": 3.0,
                                  "cosine": True})
    assert R.budget_label(recipe) == "budget-limited (≤4 epochs, 1/2 of training frames, batch 64, lr ×3, cosine lr)"
    subsampled = small_record(budget={"max_epochs": None, "batch_size": None, "train_stride": 4})
    assert R.budget_label(subsampled) == "paper schedule on 1/4 of training frames"
    notes = R.run_notes(small_record(checkpoint="best epoch ON THE TEST SET (as several papers do; optimistic)"))
    assert "budget-limited" in notes and "checkpoint selected on the test set" in notes


def test_banner_says_embedded_numbers_are_not_comparable_and_names_the_budget():
    embedded = R.banner({("semgcn", "gt"): small_record()})
    assert not embedded["comparable"] and embedded["budget_limited"]
    assert "NOT comparable with published Human3.6M" in embedded["lines"][0]
    assert any(line.startswith("Budget-limited") for line in embedded["lines"])
    paper = {"max_epochs": None, "batch_size": None, "train_stride": 1}
    h36m = R.banner({("semgcn", "gt"): small_record(source="h36m", budget=paper)})
    assert h36m["comparable"] and not h36m["budget_limited"] and len(h36m["lines"]) == 1
    assert "NOT comparable" not in R.banner_html({("semgcn", "gt"): small_record(source="h36m", budget=paper)})


def test_results_markdown_is_generated_from_the_metrics(runs):
    text = R.results_markdown(runs)
    assert text.startswith("# Results") and "do not edit by hand" in text
    assert "NOT comparable with published Human3.6M" in text and "budget-limited (≤3 epochs" in text
    table_rows = [line for line in text.splitlines() if line.startswith("| ")]
    for (method, input2d), record in runs.items():
        row = next(r for r in table_rows if r.startswith(f"| {method} | {input2d} |"))
        assert f"| {record['metrics']['mpjpe_mm']['action_mean']:.1f} |" in row
    assert "## Published figures on Human3.6M" in text and "| semgcn | SemGCN | 1 | GT (16 joints) | 42.14 |" in text
    assert "gridconv" not in text  # published rows only for the methods in the run
    assert re.search(r"\d{4}-\d\d-\d\d", text) is None  # no timestamps: committed, diff-friendly


def test_write_results_md_writes_the_same_text(tmp_path, runs):
    path = tmp_path / "reports" / "results.md"
    R.write_results_md(path, runs)
    assert path.read_text(encoding="utf-8") == R.results_markdown(runs)


def test_leaderboard_html_has_a_row_per_run_and_marks_the_best(runs):
    page = R.leaderboard_html(runs)
    body = page.split('<table class="lifting leaderboard">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert sorted((c[0], c[1]) for c in cells) == sorted((m, i) for m in METHODS for i in INPUTS2D)
    assert body.count('<tr class="best">') == len(INPUTS2D)


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


def test_load_metrics_names_the_missing_file_and_the_stage(tmp_path):
    with pytest.raises(DataError, match=r"semgcn-gt\.json.*dvc repro evaluate@semgcn-gt"):
        R.load_metrics(tmp_path, ["semgcn"], ["gt"])


def test_report_options_defaults_and_unknown_keys():
    assert R.report_options(None) == R.REPORT_DEFAULTS
    assert R.report_options({"qualitative_frames": 1})["qualitative_frames"] == 1
    with pytest.raises(ValueError, match="unknown key"):
        R.report_options({"qualitative_frame": 1})


def test_training_logs_skip_methods_without_epochs(artefacts):
    logs = R.load_train_logs(artefacts["train_logs"], METHODS, INPUTS2D)
    assert set(logs["method"]) == {"simple_baseline", "semgcn"} and len(logs) == 2 * 2 * 3
    assert logs["val_mpjpe_mm"].dtype.kind == "f"


# ------------------------------------------------------------------------------------------------
# Predictions, figures


def test_per_frame_errors_reproduce_the_metrics_frame_mean(artefacts, runs):
    predictions = R.load_predictions(artefacts["predictions"], METHODS, INPUTS2D)
    assert predictions[("semgcn", "gt")][1] is H36M16
    errors = R.per_frame_errors(predictions, R.load_targets(artefacts["aligned"]))
    assert len(errors) == len(METHODS) * len(INPUTS2D) * 48
    check = R.check_against_metrics(errors, runs)
    assert check["agree"].all(), check


def test_qualitative_frames_are_deterministic_and_from_different_actions(artefacts):
    predictions = R.load_predictions(artefacts["predictions"], METHODS, INPUTS2D)
    keys = R.common_test_keys(predictions)
    picked = R.select_qualitative_frames(keys, 2)
    assert list(picked["action"]) == ["Jump", "Walk"] and list(picked["frame"]) == [3, 3]
    assert picked.equals(R.select_qualitative_frames(keys.sample(frac=1.0, random_state=1), 2))
    assert R.select_qualitative_frames(keys, 0).empty


def test_figures_render_headless_to_png(artefacts, runs):
    png = b"\x89PNG\r\n\x1a\n"
    predictions = R.load_predictions(artefacts["predictions"], METHODS, INPUTS2D)
    targets = R.load_targets(artefacts["aligned"])
    errors = R.per_frame_errors(predictions, targets)
    logs = R.load_train_logs(artefacts["train_logs"], METHODS, INPUTS2D)
    key = R.select_qualitative_frames(R.common_test_keys(predictions), 1).iloc[0]
    inputs = {s: R.load_inputs2d(artefacts["aligned"], s) for s in INPUTS2D}
    figures = [
        R.plot_action_heatmap(R.action_table(runs)),
        R.plot_joint_errors(runs),
        R.plot_error_distributions(errors, METHODS, INPUTS2D),
        R.plot_training_curves(logs, METHODS, INPUTS2D),
        R.plot_qualitative(key, predictions, targets, inputs, R.load_cameras(artefacts["cameras"]), METHODS, INPUTS2D),
    ]
    for figure in figures:
        assert R.figure_png(figure).startswith(png)
    qualitative = figures[-1]
    assert len(qualitative.axes) == len(INPUTS2D) * (2 + len(METHODS))
    three_d = [ax for ax in qualitative.axes if ax.name == "3d"]
    assert len(three_d) == len(INPUTS2D) * (1 + len(METHODS))
    assert all(np.allclose(ax.get_box_aspect(), ax.get_box_aspect()[0]) for ax in three_d)


# ------------------------------------------------------------------------------------------------
# The notebook, end to end (papermill + nbconvert through the stage)


def test_report_stage_renders_the_notebook_to_html(tmp_path, artefacts):
    from stages import report as stage

    params = {"data": {"source": "embedded", "inputs2d": INPUTS2D}, "methods": METHODS,
              "budget": BUDGET, "report": {"qualitative_frames": 2}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    html_path, results = tmp_path / "reports" / "comparison.html", tmp_path / "reports" / "results.md"
    notebook = Path(__file__).resolve().parents[1] / "reports" / "comparison.ipynb"
    stage.main(["--params", str(tmp_path / "params.yaml"), "--notebook", str(notebook), "--html", str(html_path),
                "--results-md", str(results), "--metrics", str(artefacts["metrics"]),
                "--train-logs", str(artefacts["train_logs"]), "--predictions", str(artefacts["predictions"]),
                "--aligned", str(artefacts["aligned"]), "--cameras", str(artefacts["cameras"])])
    page = html_path.read_text(encoding="utf-8")
    board = page.split('<table class="lifting leaderboard">', 1)[1].split("</table>", 1)[0]
    for method in METHODS:
        for input2d in INPUTS2D:
            row = rf"<td class=\"text\">{method}</td>\s*<td class=\"text\">{input2d}</td>"
            assert re.search(row, board), (method, input2d)
    images = re.findall(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"', page)
    # heat map, per-joint bars, distributions, training curves, 2 qualitative frames
    assert len(images) == 6 and page.count("<img") == 6
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "NOT comparable with published Human3.6M" in page and "budget-limited" in page
    assert "def " not in page and "import " not in page  # code cells hidden
    assert re.search(r"<script[^>]+src=", page) is None  # no CDN scripts: opens offline
    assert "Traceback" not in page and "Error" not in page.split("</style>")[-1]
    assert results.read_text(encoding="utf-8").startswith("# Results")


def test_report_stage_fails_with_one_clear_error_when_a_metrics_file_is_missing(tmp_path, artefacts):
    from stages import report as stage

    params = {"data": {"inputs2d": ["gt"]}, "methods": ["semgcn", "gridconv"]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    html_path = tmp_path / "reports" / "comparison.html"
    notebook = Path(__file__).resolve().parents[1] / "reports" / "comparison.ipynb"
    with pytest.raises(DataError, match=r"gridconv-gt\.json: metrics file not found.*dvc repro evaluate@gridconv-gt"):
        stage.main(["--params", str(tmp_path / "params.yaml"), "--notebook", str(notebook), "--html", str(html_path),
                    "--results-md", str(tmp_path / "results.md"), "--metrics", str(artefacts["metrics"])])
    assert not html_path.exists() and not (tmp_path / "results.md").exists()


# ------------------------------------------------------------------------------------------------
# The offline `dvc plots` template


def test_plots_template_inlines_the_bundle_and_keeps_only_dvc_markers():
    bundle = 'window.vegaEmbed = function () {}; var s = "</script><!-- x";'
    page = plots_template.build_template(bundle, {"vega": "6"})
    assert "{plot_divs}" in page and "{refresh_tag}" in page and "{scripts}" not in page
    assert "</script><!--" not in page and "<\\/script>" in page
    assert page.count("</script>") == 1
    with pytest.raises(ValueError, match="placeholder"):
        plots_template.build_template("var x = '{plot_divs}';")


def test_plots_template_from_vl_convert_has_no_external_script(tmp_path):
    pytest.importorskip("vl_convert")
    path = plots_template.write_template(tmp_path / "plots_template.html")
    page = path.read_text(encoding="utf-8")
    assert "{plot_divs}" in page and "vegaEmbed" in page
    assert re.search(r"<script[^>]+src\s*=", page) is None and "cdn.jsdelivr" not in page
    assert re.search(r"<script[^>]*>", page).group(0) == '<script type="text/javascript">'


def test_dvc_renders_plots_into_the_offline_template(tmp_path):
    pytest.importorskip("vl_convert")
    from dvc_render import render_html
    from dvc_render.vega import VegaRenderer

    template = plots_template.write_template(tmp_path / "plots_template.html")
    datapoints = [{"epoch": "1", "val_mpjpe_mm": "300"}, {"epoch": "2", "val_mpjpe_mm": "200"}]
    renderer = VegaRenderer(datapoints, "curve.csv", x="epoch", y="val_mpjpe_mm")
    out = render_html([renderer], tmp_path / "index.html", html_template=template)
    page = Path(out).read_text(encoding="utf-8")
    assert "vegaEmbed('#" in page and "jsdelivr" not in page and re.search(r"<script[^>]+src\s*=", page) is None
    assert json.dumps("val_mpjpe_mm") in page
