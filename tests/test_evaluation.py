"""lifting/evaluation.py: the seeds' scores, and the common 16 joints every run is ranked on."""

import numpy as np
import pandas as pd
import pytest

from lifting.data.split import LiftingData
from lifting.evaluation import SeedScores, score_seeds, summarize_seed_scores
from lifting.skeleton import COMMON_JOINTS, H36M16, H36M17


def scored_data(joint_set, frames: int = 6) -> LiftingData:
    rng = np.random.default_rng(0)
    joints = joint_set.num_joints
    targets = rng.normal(scale=200.0, size=(frames, joints, 3)).astype(np.float32)
    targets[:, 0] = 0.0  # root-relative
    meta = pd.DataFrame({"subject": "S9", "action": ["Walk"] * 3 + ["Jump"] * 3, "sequence": ["a"] * 3 + ["b"] * 3,
                         "camera": "1", "frame": [0, 1, 2, 0, 1, 2]})
    empty = np.zeros((0, joints, 2), np.float32)
    return LiftingData(empty, np.zeros((0, joints, 3), np.float32), np.zeros((frames, joints, 2), np.float32), targets,
                       meta.iloc[:0], meta, np.zeros((joints, 2)), np.ones((joints, 2)), np.zeros((joints, 3)),
                       np.ones((joints, 3)), joint_set.name)


def test_a_17_joint_run_is_also_scored_on_the_16_joints_without_the_nose():
    data = scored_data(H36M17)
    offset = np.zeros_like(data.test_targets)
    offset[:, 1:, 0] = 10.0  # every joint but the root 10 mm off ...
    offset[:, H36M17.index("Nose"), 0] = 100.0  # ... and the nose 100 mm
    seeds = [data.test_targets + offset, data.test_targets + 2 * offset]
    scores, summary = score_seeds(seeds, data, [0, 1])
    native = (0 + 15 * 10 + 100) / 17, (0 + 15 * 20 + 200) / 17
    common = 15 * 10 / 16, 15 * 20 / 16
    assert scores["mpjpe_mm"]["action_mean"] == pytest.approx(np.mean(native), abs=0.01)
    assert scores[COMMON_JOINTS.name]["mpjpe_mm"]["action_mean"] == pytest.approx(np.mean(common), abs=0.01)
    assert summary["per_seed"]["p1_h36m16"] == pytest.approx(list(common), abs=0.01)
    assert summary["std"]["p1_h36m16"] == pytest.approx(np.std(common, ddof=1), abs=0.01)


def test_a_16_joint_runs_common_score_is_its_own():
    data = scored_data(H36M16)
    predicted = data.test_targets + np.random.default_rng(1).normal(scale=20.0, size=data.test_targets.shape)
    scores, _ = score_seeds([predicted.astype(np.float32)], data, [0])
    for key in ("mpjpe_mm", "p_mpjpe_mm"):
        assert scores[COMMON_JOINTS.name][key] == {part: scores[key][part] for part in ("action_mean", "frame_mean")}


@pytest.mark.parametrize("joint_set", [H36M17, H36M16])
def test_pck_and_auc_are_scored_on_the_14_joints_of_mpi_inf_3dhp(joint_set):
    data = scored_data(joint_set)
    offset = np.zeros_like(data.test_targets)
    offset[:3, joint_set.index("LWrist"), 2] = 200.0  # "Walk": one of 14 joints wrong in every frame
    offset[:, joint_set.index("Spine"), 2] = 500.0  # not one of the 14: changes neither
    if joint_set is H36M17:
        offset[:, H36M17.index("Nose"), 2] = 500.0
    scores, summary = score_seeds([data.test_targets + offset], data, [0])
    pck = scores["pck150_pct"]
    assert len(pck["by_joint"]) == 14 and "Hip" not in pck["by_joint"] and "Spine" not in pck["by_joint"]
    assert pck["by_action"] == {"Jump": 100.0, "Walk": pytest.approx(100 * 13 / 14, abs=0.01)}
    assert pck["frame_mean"] == pytest.approx(100 * (1 - 3 / (6 * 14)), abs=0.01)
    # AUC: 13 exact joints below 30 of the 31 thresholds, the wrist (200 mm) below none
    assert scores["auc_pct"]["by_action"]["Walk"] == pytest.approx(100 * 13 * 30 / (14 * 31), abs=0.01)
    assert scores["auc_pct"]["by_action"]["Jump"] == pytest.approx(100 * 30 / 31, abs=0.01)
    assert summary["per_seed"]["pck150"] == [pytest.approx(pck["action_mean"], abs=0.01)]


def test_scores_added_in_parts_of_whole_runs_equal_one_pass():
    data = scored_data(H36M17)
    predicted = data.test_targets + np.random.default_rng(2).normal(scale=30.0, size=data.test_targets.shape)
    whole, _ = score_seeds([predicted], data, [0])
    parts = SeedScores(H36M17.name)
    for rows in (slice(0, 3), slice(3, 6)):  # the two runs
        parts.add(predicted[rows], data.test_targets[rows], data.test_meta.iloc[rows])
    streamed, _ = summarize_seed_scores([parts.result()], [0])
    assert "mpjve_mm_per_frame" in whole and streamed == whole
