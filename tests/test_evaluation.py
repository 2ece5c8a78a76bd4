"""lifting/evaluation.py: the seeds' scores, and the common 16 joints every run is ranked on."""

import numpy as np
import pandas as pd
import pytest

from lifting.data.split import LiftingData
from lifting.evaluation import score_seeds
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
