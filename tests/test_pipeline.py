"""End to end: the DVC pipeline runs in a temporary copy of the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from repo_copy import copy_repository, only_runs, run, set_params

from tests.data.mpi3dhp_fixture import write_test_set

#: A budget that trains each method for one short epoch (two seeds): the pipeline, not the numbers, is under test.
TINY_BUDGET = {"budget.max_epochs": 1, "budget.train_stride": 25, "budget.knn.train_stride": 25,
               "budget.simple_baseline.max_epochs": 1, "budget.modulated_gcn.detected.max_epochs": 1,
               "budget.semgcn.max_epochs": 1, "budget.modulated_gcn.max_epochs": 1, "budget.gridconv.max_epochs": 1,
               "budget.hgn.max_epochs": 1, "budget.hgn.train_stride": 25,
               "budget.max_seeds": 2, "train.curve_points": 2, "gridconv_sgt": ["handcrafted", "learnable"],
               # the temporal methods too, as small networks: VideoPose3D on both inputs, RIE's three stages
               **only_runs(knn=["gt", "noisy"], simple_baseline=["gt", "noisy"], semgcn=["gt", "noisy"],
                      modulated_gcn=["gt", "noisy"], hgn=["gt", "noisy"], gridconv=["gt", "noisy"],
                      videopose3d=["gt", "noisy"], rie=["gt"]),
               "model.videopose3d.channels": 16, "model.videopose3d.filter_widths": [3, 3],
               "model.rie.channels": 8, "model.rie.latent": 8, "model.rie.fc_hidden": 16,
               "model.rie.filter_widths": [3, 3], "budget.videopose3d.train_stride": 25,
               "budget.rie_stage1.train_stride": 25, "budget.rie_stage2.train_stride": 25,
               "budget.rie.train_stride": 25,
               # HGN's every-50th-frame test protocol keeps scoring cheap (the temporal methods then
               # predict whole runs and keep the protocol's rows), and so does the robustness stages' stride
               "eval.test_every50": True, "robustness.test_stride": 400}


#: The image chain at a tiny size: 32 x 32 crops, a 4-wide detector for one epoch over every 50th
#: training frame, and a one-block Context-Aware PoseFormer on every 25th frame.
TINY_IMAGES = {"data.inputs2d": ["gt", "detected"], "render.width": 32,
               "render.height": 32, "render.body": "person", "detector.width": 4, "detector.stem_width": 8,
               "detector.epochs": 1, "detector.train_stride": 50, "budget.context_poseformer.train_stride": 25,
               "model.context_poseformer.width": 32, "model.context_poseformer.level_blocks": 1,
               "model.context_poseformer.joint_blocks": 1}


@pytest.fixture(scope="module")
def pipeline_copy(tmp_path_factory) -> Path:
    """A copy whose 2D inputs are gt and noisy: the image stages skip (tested on their own below)."""
    root = copy_repository(tmp_path_factory.mktemp("repo"))
    defaults = yaml.safe_load((root / "params.yaml").read_text())["runs"]
    noisy = {method: ["noisy" if i == "detected" else i for i in inputs] for method, inputs in defaults.items()}
    set_params(root, **{"data.inputs2d": ["gt", "noisy"]}, **only_runs(**noisy))  # the default runs, noisy for detected
    return root


@pytest.mark.slow
def test_dvc_repro_builds_the_data_stages_then_is_a_no_op(pipeline_copy):
    root = pipeline_copy
    run(["dvc", "repro", "fetch", "normalize", "align"], root)
    for path in ("data/raw/embedded/manifest.json", "data/parquet/poses3d.parquet", "data/parquet/poses2d.parquet",
                 "data/parquet/cameras.parquet", "data/aligned/targets.parquet", "data/aligned/inputs2d_gt.parquet",
                 "data/aligned/inputs2d_noisy.parquet", "data/aligned/stats.json"):
        assert (root / path).is_file(), path
    again = run(["dvc", "repro", "fetch", "normalize", "align"], root)
    assert "didn't change, skipping" in again.stdout and "Running stage" not in again.stdout


@pytest.mark.slow
def test_an_invalid_value_stops_a_targeted_repro_and_a_valid_change_reruns_nothing_else(pipeline_copy):
    """The check_params gate: the MLP's own budget overrides budget.batch_size, so its training stage
    never reads it; a targeted repro still stops at the check, before anything runs or is locked."""
    root = pipeline_copy
    params = root / "params.yaml"
    original = params.read_text()
    lock_before = (root / "dvc.lock").read_text()
    try:
        set_params(root, **{"budget.batch_size": -5})
        env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        failed = subprocess.run(["dvc", "repro", "train_simple_baseline@gt"], cwd=root, env=env,
                                capture_output=True, text=True)
        assert failed.returncode != 0
        assert "error: budget.batch_size must be >= 1 or null (the paper's), got -5" in failed.stderr
        assert "stage: 'train_simple_baseline@gt'" not in failed.stdout and "Running stage 'fetch'" not in failed.stdout
        assert not (root / "data/checkpoints").exists()
        params.write_text(original)
        set_params(root, **{"report.qualitative_frames": 4})  # only the report reads it
        again = run(["dvc", "repro", "fetch", "normalize", "align"], root)
        assert "Running stage 'check_params'" in again.stdout
        assert "Running stage 'fetch'" not in again.stdout and "Running stage 'align'" not in again.stdout
    finally:
        params.write_text(original)
    for lock in ((root / "dvc.lock").read_text(), lock_before):  # the data stages only, never a method's run
        assert not [name for name in yaml.safe_load(lock)["stages"]
                    if name.startswith(("train_", "evaluate_")) and name != "train_detector"]


@pytest.mark.slow
def test_a_failing_stage_reports_one_clear_error_and_leaves_no_output(pipeline_copy):
    root = pipeline_copy
    params = root / "params.yaml"
    original = params.read_text()
    try:
        params.write_text(original.replace("source: embedded", "source: h36m").replace(
            "h36m_dir: data/h36m", "h36m_dir: no/such/folder").replace("download: true", "download: false"))
        env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        failed = subprocess.run(["python", "-m", "stages.fetch", "--out", "data/raw_try"], cwd=root, env=env,
                                capture_output=True, text=True)
        assert failed.returncode == 1
        assert "no/such/folder" in failed.stderr and "Fix:" in failed.stderr
        assert "Traceback" not in failed.stderr
        assert not (root / "data/raw_try").exists()
    finally:
        params.write_text(original)


@pytest.mark.slow
def test_tiny_budget_trains_and_scores_every_method_and_diff_shows_only_the_changed_one(pipeline_copy):
    root = pipeline_copy
    write_test_set(root.parent / "mpi_inf_3dhp")  # a fixture MPI-INF-3DHP test set: every run is scored on it too
    set_params(root, **TINY_BUDGET, **{"data.mpi3dhp_dir": str(root.parent / "mpi_inf_3dhp")})
    run(["dvc", "repro"], root)
    methods = ["knn", "simple_baseline", "semgcn", "modulated_gcn", "hgn", "gridconv_handcrafted", "gridconv_learnable"]
    for method in methods:
        for input2d in ("gt", "noisy"):
            result = json.loads((root / f"metrics/{method}-{input2d}.json").read_text())
            assert result["method"] == method and result["input2d"] == input2d
            p1 = result["metrics"]["mpjpe_mm"]["action_mean"]
            assert 20.0 < p1 < 1000.0, (method, input2d, p1)
            assert result["protocol"]["comparable_with_published_h36m"] is False
            assert (root / f"data/predictions/{method}-{input2d}.parquet").is_file()
            assert result["protocol"]["configuration"] == ("gt" if input2d == "gt" else "detected")
            assert result["protocol"]["train_frames"] == result["training"]["samples"]
            if method != "knn":  # one process, the schedule's whole batch
                assert result["protocol"]["world_size"] == 1
                assert result["protocol"]["global_batch"] == result["training"]["schedule"]["batch_size"]
    # The paper's configuration per input kind: Modulated GCN's CPN model and GridConv's (c, z) on detections.
    runs = {(m, i): json.loads((root / f"metrics/{m}-{i}.json").read_text()) for m in methods for i in ("gt", "noisy")}
    assert runs["modulated_gcn", "gt"]["parameters"] == 287_923
    assert runs["modulated_gcn", "noisy"]["parameters"] == 2_731_840
    assert runs["modulated_gcn", "noisy"]["protocol"]["flip_test"] is True
    assert runs["simple_baseline", "gt"]["parameters"] == 4_291_632
    assert 1_040_527 < runs["hgn", "gt"]["parameters"] < 1_040_527 + 20_000  # plus one edge weight per graph entry
    assert runs["gridconv_learnable", "gt"]["config"]["padding"] == ["c", "r"]
    assert runs["gridconv_learnable", "noisy"]["config"]["padding"] == ["c", "z"]
    # Two seeds: the headline is their mean, and each seed's own number is kept.
    seeds = runs["semgcn", "gt"]["seeds"]
    assert seeds["seeds"] == [0, 1] and len(seeds["per_seed"]["p1"]) == 2 and seeds["std"]["p1"] is not None
    assert runs["semgcn", "gt"]["metrics"]["mpjpe_mm"]["action_mean"] == pytest.approx(sum(seeds["per_seed"]["p1"]) / 2,
                                                                                     abs=0.02)
    assert seeds["per_seed"]["p1"][0] != seeds["per_seed"]["p1"][1]
    # No validation split under `checkpoint: last`: every training frame (here every 25th) is trained on.
    assert runs["knn", "gt"]["training"]["samples"] == runs["semgcn", "gt"]["training"]["samples"] == \
        runs["gridconv_learnable", "noisy"]["training"]["samples"]
    # The temporal runs: both flips in the protocol, the protocol's rows of whole-run predictions, RIE
    # through its stages (MPJVE on whole runs: tests/test_runner_temporal.py).
    for run_name, input2d in (("videopose3d", "gt"), ("videopose3d", "noisy"), ("rie", "gt")):
        result = json.loads((root / f"metrics/{run_name}-{input2d}.json").read_text())
        assert result["protocol"]["train_flip"] is True and result["protocol"]["flip_test"] is True
        assert result["protocol"]["test_frame_stride"] == 50 and 20.0 < result["seeds"]["mean"]["p1"] < 1000.0
        assert "mpjve" not in result["seeds"]["mean"]  # every 50th frame: no velocities to compare
    assert json.loads((root / "metrics/rie-gt.json").read_text())["config"]["stage"] == 3
    for run_name in (*methods, "videopose3d", "rie"):  # zero-shot on the fixture's 35 valid frames
        scored = json.loads((root / f"metrics/3dhp/{run_name}-gt.json").read_text())["metrics"]
        assert scored["num_frames"] == 35 and set(scored["pck150_pct"]["by_scene"]) == {"green_screen",
                                                                                        "no_green_screen", "outdoor"}
        assert 0.0 <= scored["auc_pct"]["all"] <= scored["pck150_pct"]["all"] <= 100.0 and scored["mpjpe_mm"]["all"] > 0
    # Every scored run's robustness stage: the four kinds at every level, level 0 one prediction.
    for run_name, input2d in [(m, i) for m in methods for i in ("gt", "noisy")] + [("videopose3d", "gt"), ("rie", "gt")]:
        robust = json.loads((root / f"metrics/robustness/{run_name}-{input2d}.json").read_text())
        assert set(robust["metrics"]) == {"jitter", "gross", "swap", "missing"}
        assert robust["protocol"]["test_frame_stride"] == 400 and robust["metrics"]["jitter"]["0px"] == \
            robust["metrics"]["missing"]["0%"]
        assert 20.0 < robust["metrics"]["gross"]["0%"]["p1_mm"] < 1000.0
    assert (root / "data/checkpoints/rie_stage1-gt/model.pt").is_file()
    assert (root / "data/checkpoints/rie_stage2-gt/model.pt").is_file()
    shown = run(["dvc", "metrics", "show"], root).stdout
    assert all(f"metrics/{m}-gt.json" in shown for m in methods)
    html = (root / "reports/comparison.html").read_text()
    assert all(m in html for m in methods) and html.count("<img") >= 5

    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "baseline"], root)
    set_params(root, **{"model.semgcn.hidden": 64})
    reran = run(["dvc", "repro"], root).stdout
    assert "Running stage 'train_semgcn@gt'" in reran and "Running stage 'train_knn@gt'" not in reran
    diff = run(["dvc", "metrics", "diff", "--json"], root).stdout
    changed_files = set(json.loads(diff))
    assert changed_files and all("semgcn" in name for name in changed_files), changed_files


@pytest.mark.slow
def test_the_image_chain_gives_the_detected_source_and_context_aware_poseformer(pipeline_copy):
    """render -> train_detector -> detect2d -> align -> the methods on `detected`, and CA-PF."""
    root = pipeline_copy
    set_params(root, **{**TINY_BUDGET, **TINY_IMAGES, **only_runs(knn=["gt", "detected"], simple_baseline=["gt", "detected"],
                                                             context_poseformer=["detected"])})
    run(["dvc", "repro"], root)
    summary = json.loads((root / "data/images/summary.json").read_text())
    detector = json.loads((root / "metrics/detector.json").read_text())
    assert summary["views"] == detector["test"]["keypoints"] // 17 + detector["train"]["keypoints"] // 17
    assert 0.0 < detector["test"]["mean_px"] < 500.0 and set(detector["test"]["pck"]) == {"5px", "10px", "20px"}
    for method in ("knn", "simple_baseline", "context_poseformer"):
        result = json.loads((root / f"metrics/{method}-detected.json").read_text())
        assert result["input2d"] == "detected" and 20.0 < result["metrics"]["mpjpe_mm"]["action_mean"] < 1000.0
    robust = json.loads((root / "metrics/robustness/context_poseformer-detected.json").read_text())
    assert set(robust["metrics"]) == {"jitter", "gross", "swap", "missing"} and robust["protocol"]["test_frames"] > 0
    capf = json.loads((root / "metrics/context_poseformer-detected.json").read_text())
    assert capf["protocol"]["flip_test"] is True and capf["config"]["backbone_width"] == 4
    assert "not the paper's" in capf["protocol"]["configuration_label"]
