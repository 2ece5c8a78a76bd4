"""lifting/cross_dataset.py and stages/evaluate_3dhp.py: MPI-INF-3DHP's PCK, AUC and P1 per scene group,
with known answers, on the fixture test set of tests/data/mpi3dhp_fixture.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lifting.cross_dataset import load_test_set, score
from lifting.data.split import LiftingData
from lifting.models import knn
from lifting.runner import RunSettings, train_method
from lifting.skeleton import H36M17
from stages import evaluate_3dhp, normalize_3dhp
from tests.data.mpi3dhp_fixture import write_test_set

AUC_EXACT = 100 * 30 / 31  # an exact joint is below 30 of the 31 thresholds (not 0 mm)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mpi3dhp")
    write_test_set(root / "set")
    (root / "params.yaml").write_text(f"data: {{mpi3dhp_dir: {root / 'set'}, source: embedded}}\n")
    normalize_3dhp.main(["--params", str(root / "params.yaml"), "--out", str(root / "store")])
    return root


def test_pck_auc_and_p1_per_scene_group_sequence_and_joint_known_answer(store):
    test = load_test_set(store / "store", "h36m17")
    truth = test.targets[test.valid]
    sequence = test.meta["sequence"].to_numpy()[test.valid]
    wrong = truth.copy()
    wrong[sequence == "TS1", H36M17.index("LWrist"), 0] += 200.0  # one of the 14 joints, TS1 only
    wrong[:, H36M17.index("Spine"), 0] += 500.0  # not one of the 14: PCK and AUC ignore it
    scores, seeds = score([truth, wrong], test, [0, 1])
    ts1, ts2, n = (sequence == "TS1").sum(), (sequence == "TS2").sum(), len(sequence)
    pck_wrong = {"green_screen": 100 * (1 - ts1 / ((ts1 + ts2) * 14)), "no_green_screen": 100.0, "outdoor": 100.0}
    pck, auc = scores["pck150_pct"], scores["auc_pct"]
    assert scores["num_frames"] == n == 35
    assert seeds["per_seed"]["pck150"] == [100.0, pytest.approx(100 * (1 - ts1 / (n * 14)), abs=0.01)]
    for scene, value in pck_wrong.items():  # the mean over the two seeds, frame-weighted within the group
        assert pck["by_scene"][scene] == pytest.approx((100.0 + value) / 2, abs=0.01)
    assert pck["by_sequence"]["TS1"] == pytest.approx((100 + 100 * 13 / 14) / 2, abs=0.01)
    assert pck["by_joint"]["LWrist"] == pytest.approx((100 + 100 * (1 - ts1 / n)) / 2, abs=0.01)
    assert len(pck["by_joint"]) == 14 and "Spine" not in pck["by_joint"]
    assert auc["by_sequence"]["TS3"] == pytest.approx(AUC_EXACT, abs=0.01)
    assert auc["all"] == pytest.approx((AUC_EXACT + AUC_EXACT * (1 - ts1 / (n * 14))) / 2, abs=0.01)
    assert scores["mpjpe_mm"]["all"] == pytest.approx((200 * ts1 + 500 * n) / (n * 17) / 2, abs=0.01)
    assert scores["h36m16"]["mpjpe_mm"]["all"] == pytest.approx((200 * ts1 + 500 * n) / (n * 16) / 2, abs=0.01)
    assert set(pck["by_activity"]) <= {"Standing/Walking", "Exercising", "Sitting", "Reaching/Crouching",
                                       "On The Floor", "Sports", "Miscellaneous"}


def _lookup_of_the_test_set(store, out):
    """A nearest-neighbour run whose library is the test set itself (k = 1): it predicts the truth."""
    test = load_test_set(store / "store", "h36m17")
    joints = test.inputs.shape[1]
    data = LiftingData(test.inputs, test.targets, test.inputs[:1], test.targets[:1], test.meta, test.meta.iloc[:1],
                       np.zeros((joints, 2)), np.ones((joints, 2)), np.zeros((joints, 3)), np.ones((joints, 3)),
                       "h36m17")
    settings = RunSettings(seeds=(0,), threads=1, max_epochs=None, batch_size=None, train_stride=1, lr_scale=1.0,
                           decay="paper", warmup=0.0, bf16_cpu=False, curve_points=0, curve_test_stride=1,
                           val_fraction=0.1, checkpoint="last")
    train_method("knn", knn.Config(k=1, weights="uniform"), "gt", data, settings, out, out / "log.csv", snapshot={},
                 progress=False)
    return out / "model.pt"


def test_the_stage_scores_a_run_that_predicts_the_truth_at_pck_100(store, tmp_path):
    model = _lookup_of_the_test_set(store, tmp_path / "knn-gt")
    metrics = tmp_path / "metrics" / "3dhp" / "knn-gt.json"
    evaluate_3dhp.main(["--params", str(store / "params.yaml"), "--model", str(model), "--input2d", "gt",
                        "--store", str(store / "store"), "--metrics", str(metrics)])
    record = json.loads(metrics.read_text())
    assert record["method"] == "knn" and record["input2d"] == "gt"
    assert record["metrics"]["pck150_pct"]["by_scene"] == {"green_screen": 100.0, "no_green_screen": 100.0,
                                                           "outdoor": 100.0}
    assert record["metrics"]["auc_pct"]["all"] == pytest.approx(AUC_EXACT, abs=0.01)
    assert record["metrics"]["mpjpe_mm"]["all"] == 0.0 and record["metrics"]["num_frames"] == 35
    assert record["protocol"]["frames"].endswith("35 of 41") and record["protocol"]["trained_on"] == "embedded (gt 2D)"


def test_without_the_test_set_the_stage_writes_a_skipped_record_and_loads_nothing(tmp_path):
    (tmp_path / "params.yaml").write_text("data: {mpi3dhp_dir: null, source: embedded}\n")
    normalize_3dhp.main(["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "store")])
    metrics = tmp_path / "knn-gt.json"
    evaluate_3dhp.main(["--params", str(tmp_path / "params.yaml"), "--model", str(tmp_path / "absent.pt"),
                        "--input2d", "gt", "--store", str(tmp_path / "store"), "--metrics", str(metrics)])
    assert list(json.loads(metrics.read_text())) == ["skipped"]
