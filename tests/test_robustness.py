"""lifting/robustness.py and stages/robustness.py: seeded perturbations of the test 2D with known
answers, the stage end to end on small trained runs, and the robustness params' checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lifting import metrics, robustness
from lifting.config import ParamsError
from lifting.data.schema import write_table
from lifting.data.split import Protocol, load_split
from lifting.errors import DataError
from lifting.params_check import check_params
from lifting.runner import RunSettings, load_method, train_method
from lifting.skeleton import H36M17

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
FLIP = H36M17.flip_permutation()
LEFT_RIGHT = sorted(H36M17.left + H36M17.right)
CENTRE = [j for j in range(17) if j not in LEFT_RIGHT]


def frames_of(lengths=(3000, 2000), widths=(1000, 500), seed=0) -> robustness.Clean2D:
    """Runs of ``lengths`` frames, each seen by its own camera of the given image width (px), with
    random screen-normalised 2D."""
    meta = pd.concat([pd.DataFrame({"subject": "S9", "action": "Walk", "sequence": "Walk 1", "camera": f"c{k}",
                                    "frame": np.arange(n)}) for k, n in enumerate(lengths)], ignore_index=True)
    width = np.concatenate([np.full(n, w, np.float64) for n, w in zip(lengths, widths)])
    inputs = np.random.default_rng(seed).uniform(-0.6, 0.6, size=(len(meta), 17, 2)).astype(np.float32)
    return robustness.Clean2D(inputs, meta, width, np.full((17, 2), 0.25), FLIP)


def subset(frames: robustness.Clean2D, rows: np.ndarray) -> robustness.Clean2D:
    return robustness.Clean2D(frames.inputs[rows], frames.meta.iloc[rows].reset_index(drop=True),
                                 frames.width_px[rows], frames.fill, frames.flip)


@pytest.fixture(scope="module")
def frames() -> robustness.Clean2D:
    return frames_of()


def test_missing_joints_come_in_occlusions_of_missing_frames_aligned_to_their_blocks(frames):
    out = robustness.perturb(frames, "missing", 0.2, seed=0, missing_frames=25)
    changed = (out != frames.inputs).any(axis=-1)
    assert changed.mean() == pytest.approx(0.2, abs=0.03)  # 200 blocks x 17 joints: a coarser share
    block = frames.meta["frame"].to_numpy() // 25
    for camera in frames.meta["camera"].unique():
        rows = np.flatnonzero((frames.meta["camera"] == camera).to_numpy())
        for joint in range(changed.shape[1]):
            per_block = pd.Series(changed[rows, joint]).groupby(block[rows]).agg(["min", "max"])
            # an occlusion never starts or ends inside a block (a block's frames are all missing or none is;
            # a filled frame may equal its original only by chance, which this data never has)
            assert (per_block["min"] == per_block["max"]).all()
    # the same blocks are missing at a higher level, and more besides
    more = (robustness.perturb(frames, "missing", 0.4, seed=0, missing_frames=25) != frames.inputs).any(axis=-1)
    assert (more >= changed).all() and more.mean() > changed.mean() + 0.1


@pytest.mark.parametrize("kind", robustness.KINDS)
def test_level_0_is_the_identity(frames, kind):
    assert np.array_equal(robustness.perturb(frames, kind, 0, seed=3), frames.inputs)


@pytest.mark.parametrize("sigma_px", [2.0, 10.0])
def test_jitters_empirical_sigma_is_the_level_in_pixels_through_each_cameras_width(frames, sigma_px):
    pixels = (robustness.perturb(frames, "jitter", sigma_px, seed=0) - frames.inputs) * frames.width_px[:, None, None] / 2
    for camera in ("c0", "c1"):  # 1000 and 500 px wide: the same sigma in pixels, twice the normalised one
        shift = pixels[(frames.meta["camera"] == camera).to_numpy()]
        assert shift.std() == pytest.approx(sigma_px, rel=0.01) and abs(shift.mean()) < 0.02 * sigma_px


def test_gross_errors_move_the_share_of_joints_into_the_persons_box_and_nest(frames):
    low, high = frames.inputs.min(axis=1, keepdims=True), frames.inputs.max(axis=1, keepdims=True)
    moved = {}
    for share in (0.1, 0.2):
        out = robustness.perturb(frames, "gross", share, seed=0)
        moved[share] = (out != frames.inputs).any(axis=-1)
        assert moved[share].mean() == pytest.approx(share, abs=0.005)
        assert ((out >= low - 1e-6) & (out <= high + 1e-6)).all()  # inside the frame's own box
    assert not (moved[0.1] & ~moved[0.2]).any()  # the joints moved at 10 % are moved at 20 % too
    # uniform in the box: a moved joint's place across the box has the mean 1/2 and variance 1/12 of U(0, 1)
    out = robustness.perturb(frames, "gross", 0.2, seed=0)
    place = ((out - low) / (high - low))[moved[0.2]]
    assert place.mean() == pytest.approx(0.5, abs=0.01) and place.var() == pytest.approx(1 / 12, abs=0.003)


def test_a_swap_exchanges_exactly_the_chosen_frames_left_and_right_keypoints(frames):
    out = robustness.perturb(frames, "swap", 0.25, seed=0)
    swapped = (out != frames.inputs).any(axis=(1, 2))
    assert swapped.mean() == pytest.approx(0.25, abs=0.015)
    assert np.array_equal(out[swapped], frames.inputs[swapped][:, FLIP])  # every L/R pair of those frames
    assert np.array_equal(out[~swapped], frames.inputs[~swapped])  # and nothing else
    assert np.array_equal(out[:, CENTRE], frames.inputs[:, CENTRE])
    assert (out[swapped][:, LEFT_RIGHT] != frames.inputs[swapped][:, LEFT_RIGHT]).all()


def test_missing_joints_are_interpolated_over_their_run_with_known_values():
    meta = pd.DataFrame({"subject": "S9", "sequence": "a", "camera": ["c1"] * 5 + ["c2"] * 3,
                         "frame": [0, 1, 2, 3, 4, 0, 1, 2]})
    inputs = np.zeros((8, 2, 2))
    inputs[:5, 0, 0] = [0.0, -1.0, -1.0, 3.0, -1.0]  # -1: the values of the missing frames, never used
    inputs[5:, 1] = [[1.0, 2.0], [5.0, 6.0], [9.0, 9.0]]
    missing = np.zeros((8, 2), bool)
    missing[[1, 2, 4], 0] = True  # run c1, joint 0: between frames 0 and 3, and after the last present frame
    missing[5:, 0] = True  # run c2, joint 0: missing in every frame
    missing[5, 1] = True  # run c2, joint 1: before its first present frame
    fill = np.array([[7.0, 8.0], [0.0, 0.0]])
    out = robustness.fill_missing(inputs, meta, missing, fill)
    assert out[:5, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 3.0]
    assert out[5:, 0].tolist() == [[7.0, 8.0]] * 3
    assert out[5:, 1].tolist() == [[5.0, 6.0], [5.0, 6.0], [9.0, 9.0]]
    assert np.array_equal(out[~missing], inputs[~missing])
    order = np.random.default_rng(0).permutation(8)  # the rows of a run in any order
    shuffled = robustness.fill_missing(inputs[order], meta.iloc[order].reset_index(drop=True), missing[order], fill)
    assert np.array_equal(shuffled, out[order])


def test_missing_joints_in_perturb_are_the_share_and_are_filled_from_their_neighbours(frames):
    out = robustness.perturb(frames, "missing", 0.2, seed=0)
    changed = (out != frames.inputs).any(axis=-1)
    assert changed.mean() == pytest.approx(0.2, abs=0.005)
    # run c0, joint 5: each changed frame lies on the line between the nearest present frames
    rows = np.flatnonzero((frames.meta["camera"] == "c0").to_numpy())
    gone = changed[rows, 5]
    present = np.flatnonzero(~gone)
    for t in np.flatnonzero(gone)[:50]:
        before, after = present[present < t], present[present > t]
        if len(before) and len(after):
            a, b = before[-1], after[0]
            expected = frames.inputs[rows[a], 5] + (t - a) / (b - a) * (frames.inputs[rows[b], 5] - frames.inputs[rows[a], 5])
            assert np.allclose(out[rows[t], 5], expected, atol=1e-6)


@pytest.mark.parametrize("kind", robustness.KINDS)
def test_the_same_seed_gives_the_same_perturbation_in_any_order_of_calls_and_rows(frames, kind):
    first = robustness.perturb(frames, kind, 0.1 if kind != "jitter" else 5.0, seed=7)
    for other in robustness.KINDS:  # another "method" asking in another order first
        robustness.perturb(frames, other, 0.3 if other != "jitter" else 10.0, seed=7)
    again = robustness.perturb(frames, kind, 0.1 if kind != "jitter" else 5.0, seed=7)
    assert np.array_equal(first, again)
    order = np.random.default_rng(1).permutation(len(frames.inputs))
    shuffled = robustness.perturb(subset(frames, order), kind, 0.1 if kind != "jitter" else 5.0, seed=7)
    assert np.array_equal(shuffled, first[order])  # each row keeps its own perturbation
    second_run = np.flatnonzero((frames.meta["camera"] == "c1").to_numpy())
    alone = robustness.perturb(subset(frames, second_run), kind, 0.1 if kind != "jitter" else 5.0, seed=7)
    assert np.array_equal(alone, first[second_run])  # a run's perturbation does not depend on the other runs
    assert not np.array_equal(robustness.perturb(frames, kind, 0.1 if kind != "jitter" else 5.0, seed=8), first)


@pytest.mark.parametrize("kind", ["jitter", "gross", "swap"])
def test_a_frames_perturbation_does_not_depend_on_how_far_its_run_is_given(frames, kind):
    """Drawn per run indexed by frame: the first 700 frames of a run get the numbers they get in the
    whole run (so a subsample or a shorter cut of a sequence sees the same corrupted frames)."""
    whole = robustness.perturb(frames, kind, 0.3 if kind != "jitter" else 5.0, seed=0)
    first = np.arange(700)
    assert np.array_equal(robustness.perturb(subset(frames, first), kind, 0.3 if kind != "jitter" else 5.0, seed=0),
                          whole[first])


def test_the_subsample_is_every_nth_frame_of_each_run_from_a_fixed_offset(frames):
    rows = robustness.subsample_rows(frames.meta, 40)
    for camera, n in (("c0", 3000), ("c1", 2000)):
        kept = frames.meta.iloc[rows].query("camera == @camera")["frame"].to_numpy()
        assert len(kept) == n // 40 and np.all(np.diff(kept) == 40) and 0 <= kept[0] < 40
    order = np.random.default_rng(2).permutation(len(frames.meta))
    again = robustness.subsample_rows(frames.meta.iloc[order].reset_index(drop=True), 40)
    assert np.array_equal(np.sort(order[again]), rows)  # the same frames whatever the row order


def test_level_labels_and_unknown_kinds():
    assert [robustness.level_label("jitter", v) for v in (0, 2, 20)] == ["0px", "2px", "20px"]
    assert [robustness.level_label("gross", v) for v in (0, 0.05, 0.4)] == ["0%", "5%", "40%"]
    with pytest.raises(ValueError, match="unknown perturbation 'blur'"):
        robustness.perturb(frames_of((10,), (1000,)), "blur", 1.0, seed=0)


# --- params ----------------------------------------------------------------------------------

def _with(**changes) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["robustness"].update(changes)
    return params


@pytest.mark.parametrize("changes, message", [
    ({"jitter_px": [0, 2, -5]}, "robustness.jitter_px: a level must be >= 0"),
    ({"gross_share": [0, 0.5, 1.5]}, r"robustness.gross_share: a share must lie in \[0, 1\]"),
    ({"missing_share": [0.1, 0.2]}, "robustness.missing_share must start with the level 0"),
    ({"swap_share": [0, 0.2, 0.1]}, "robustness.swap_share: the levels must increase"),
    ({"swap_share": [0]}, "robustness.swap_share must start with the level 0 .* at least one more"),
    ({"test_stride": 0}, "robustness.test_stride must be >= 1"),
    ({"missing_frames": 0}, "robustness.missing_frames must be >= 1"),
    ({"seed": -1}, "robustness.seed must be an integer >= 0"),
    ({"jitter_px": "5"}, "robustness.jitter_px: expected a list"),
])
def test_bad_robustness_params_are_refused_naming_the_key(changes, message):
    with pytest.raises(ParamsError, match=message):
        check_params(_with(**changes))


def test_an_unknown_robustness_key_names_the_closest_one():
    params = _with(test_strides=4)
    with pytest.raises(ParamsError, match="unknown key robustness.test_strides .did you mean robustness.test_stride"):
        check_params(params)


def test_the_default_levels_are_five_per_kind_from_0():
    check_params(PARAMS)
    for key in robustness.LEVEL_KEYS.values():
        assert len(PARAMS["robustness"][key]) == 5 and PARAMS["robustness"][key][0] == 0


# --- dvc.yaml --------------------------------------------------------------------------------

def test_every_scored_run_has_a_robustness_stage_and_the_report_reads_its_metrics():
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    evaluated = {name: stage for name, stage in pipeline.items() if stage["cmd"].startswith("python -m stages.evaluate ")}
    assert len(evaluated) >= 8
    for name, stage in evaluated.items():
        twin = pipeline[name.replace("evaluate_", "robustness_", 1)]
        assert twin["matrix"] == stage["matrix"] and twin["params"] == ["robustness"]
        run = stage["cmd"].split("--model data/checkpoints/")[1].split("/model.pt")[0]
        assert f"data/checkpoints/{run}" in twin["deps"] and "data/parquet/cameras.parquet" in twin["deps"]
        assert "data/aligned/inputs2d_${item.input2d}.parquet" in twin["deps"]
        assert twin["metrics"] == [{f"metrics/robustness/{run}.json": {"cache": False}}]
    assert "metrics" in pipeline["report"]["deps"]  # the folder: metrics/robustness/ too


# --- the stage end to end --------------------------------------------------------------------

TINY = RunSettings(seeds=(0, 1), threads=1, max_epochs=1, batch_size=64, train_stride=10, lr_scale=3.0,
                   decay="cosine", warmup=0.0, bf16_cpu=False, curve_points=0, curve_test_stride=50,
                   val_fraction=0.1, checkpoint="last")


@pytest.fixture(scope="module")
def workspace(aligned_s1_s9, embedded_tables, tmp_path_factory) -> Path:
    """Small trained runs on the embedded data (S1 trains, S9 tests): the kNN lookup and a
    two-seed VideoPose3D of 9 frames, with the cameras and params the stage reads."""
    from lifting.models import knn, videopose3d

    root = tmp_path_factory.mktemp("robustness")
    data = load_split(aligned_s1_s9, "gt", "h36m17", Protocol(train_stride=10))
    train_method("knn", knn.Config(), "gt", data,
                 RunSettings(**{**TINY.__dict__, "seeds": (0,)}), root / "knn-gt", root / "knn.csv", snapshot={},
                 progress=False)
    full = load_split(aligned_s1_s9, "gt", "h36m17", Protocol())
    train_method("videopose3d", videopose3d.Config(filter_widths=(3, 3), channels=16, dropout=0.0), "gt", full, TINY,
                 root / "vp3d-gt", root / "vp3d.csv", snapshot={}, progress=False)
    write_table(embedded_tables.cameras, root / "cameras.parquet", {"table": "cameras"})
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["robustness"]["test_stride"] = 25
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def run_stage(root: Path, aligned: Path, run: str, cameras: str = "cameras.parquet") -> dict:
    from stages import robustness as stage

    stage.main(["--params", str(root / "params.yaml"), "--model", str(root / run / "model.pt"), "--input2d", "gt",
                "--aligned", str(aligned), "--cameras", str(root / cameras),
                "--metrics", str(root / "metrics" / f"{run}.json")])
    return json.loads((root / "metrics" / f"{run}.json").read_text())


@pytest.fixture(scope="module")
def records(workspace, aligned_s1_s9) -> dict:
    """The stage's metrics for each small run."""
    return {run: run_stage(workspace, aligned_s1_s9, run) for run in ("knn-gt", "vp3d-gt")}


def _p1(predicted: list[np.ndarray], targets: np.ndarray, actions: np.ndarray) -> float:
    return round(float(np.mean([metrics.summarize(metrics.joint_errors_mpjpe(p, targets), actions,
                                                  H36M17.names)["action_mean"] for p in predicted])), 2)


@pytest.mark.parametrize("run", ["knn-gt", "vp3d-gt"])
def test_the_stage_scores_every_kind_and_level_with_the_known_answers(workspace, aligned_s1_s9, records, run):
    record = records[run]
    levels = {kind: PARAMS["robustness"][key] for kind, key in robustness.LEVEL_KEYS.items()}
    assert record["protocol"]["levels"] == levels and record["protocol"]["test_frame_stride"] == 25
    assert {kind: set(scores) for kind, scores in record["metrics"].items()} == \
        {kind: {robustness.level_label(kind, v) for v in values} for kind, values in levels.items()}
    clean = {kind: scores[robustness.level_label(kind, 0)] for kind, scores in record["metrics"].items()}
    assert all(scores == clean["jitter"] for scores in clean.values())  # level 0 is one prediction
    # the known answers: predict the perturbed whole runs with every seed, keep the scored rows
    data = load_split(aligned_s1_s9, "gt", "h36m17", Protocol())
    saved, predictors = load_method(workspace / run / "model.pt")
    widths = robustness.image_widths(workspace / "cameras.parquet", data.test_meta)
    frames = robustness.Clean2D(data.test_inputs, data.test_meta, widths, data.input_mean, FLIP)
    rows = robustness.subsample_rows(data.test_meta, 25)
    assert record["protocol"]["test_frames"] == len(rows) and record["protocol"]["seeds"] == list(saved.record.seeds)
    targets, actions = data.test_targets[rows], data.test_meta["action"].to_numpy()[rows]
    for kind, level in (("jitter", 0), ("jitter", 20), ("missing", 0.4), ("swap", 0.4)):
        perturbed = robustness.perturb(frames, kind, level, PARAMS["robustness"]["seed"],
                                       PARAMS["robustness"]["missing_frames"])
        whole = [p(perturbed, data.test_meta)[rows] for p in predictors]  # a temporal model: whole runs
        assert record["metrics"][kind][robustness.level_label(kind, level)]["p1_mm"] == \
            pytest.approx(_p1(whole, targets, actions), abs=0.011)
    top = {kind: scores[robustness.level_label(kind, levels[kind][-1])]["p1_mm"]
           for kind, scores in record["metrics"].items()}
    assert top["jitter"] > clean["jitter"]["p1_mm"] and top["gross"] > clean["gross"]["p1_mm"]
    speed = json.loads((workspace / "metrics" / "speed" / f"{run}.json").read_text())
    assert speed["seconds"] > 0 and "seconds" not in record


def test_the_stage_is_deterministic_and_scores_the_same_frames_for_every_method(workspace, aligned_s1_s9, records):
    assert run_stage(workspace, aligned_s1_s9, "knn-gt") == records["knn-gt"]
    assert records["vp3d-gt"]["protocol"]["test_frames"] == records["knn-gt"]["protocol"]["test_frames"]
    assert records["vp3d-gt"]["protocol"]["temporal"] and not records["knn-gt"]["protocol"]["temporal"]
    assert records["vp3d-gt"]["metrics"] != records["knn-gt"]["metrics"]


def test_a_camera_missing_from_the_store_is_one_clear_error_and_nothing_is_written(workspace, aligned_s1_s9,
                                                                                  embedded_tables):
    cameras = embedded_tables.cameras
    write_table(cameras[cameras["subject"] != "S9"], workspace / "no-s9.parquet", {"table": "cameras"})
    target = workspace / "metrics" / "absent.json"
    from stages import robustness as stage

    with pytest.raises(DataError, match=r"no-s9.parquet: no camera \d+ of subject S9 .*Fix: re-run `dvc repro"):
        stage.main(["--params", str(workspace / "params.yaml"), "--model", str(workspace / "knn-gt" / "model.pt"),
                    "--input2d", "gt", "--aligned", str(aligned_s1_s9), "--cameras", str(workspace / "no-s9.parquet"),
                    "--metrics", str(target)])
    assert not target.exists() and not (workspace / "metrics" / "speed" / "absent.json").exists()


def test_a_predictor_given_rows_predicts_those_rows_with_their_image_context():
    """Context-Aware PoseFormer's path: the scored rows take their own crops."""
    import torch
    from torch import nn

    from lifting.models.base import Lifter
    from lifting.runner import _predictor
    from test_train_context import CODEC, contexts

    class DepthFromBrightness(Lifter):
        """Joint j at depth j x the crop's mean brightness (metres): only the image sets the pose."""

        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, inputs, context):
            depth = self.scale * context.images.float().mean((1, 2, 3))[:, None] / 255.0 * torch.arange(17.0)
            return torch.stack([torch.zeros_like(depth), torch.zeros_like(depth), depth], dim=-1)

    predictor = _predictor(DepthFromBrightness(), {"scale": torch.tensor(1.5)}, CODEC, True, torch.device("cpu"))
    context, brightness = contexts(40)
    inputs = np.random.default_rng(0).uniform(-0.5, 0.5, size=(40, 17, 2)).astype(np.float32)
    rows = np.array([3, 17, 31, 38])
    whole = predictor(inputs, context=context)
    assert np.allclose(predictor(inputs, context=context, rows=rows), whole[rows], atol=1e-3)
    # the flip test averages joint j with its mirror twin: the head (10, no twin) is at 1.5 m x 10 x brightness
    assert np.allclose(whole[rows, 10, 2], 15000.0 * brightness[rows].numpy(), rtol=1e-4)
