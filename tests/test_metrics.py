"""Known-answer tests for lifting.metrics (P1, P2, P3, MPJVE and their aggregation)."""

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from lifting import metrics
from lifting.skeleton import H36M17

J = 17


def random_poses(n, seed=0):
    """(n, 17, 3) non-planar poses in mm, spread of a few hundred mm."""
    return np.random.default_rng(seed).normal(scale=300.0, size=(n, J, 3))


def all_metric_errors(pred, gt):
    return {
        "mpjpe": metrics.joint_errors_mpjpe(pred, gt),
        "p_mpjpe": metrics.joint_errors_p_mpjpe(pred, gt),
        "n_mpjpe": metrics.joint_errors_n_mpjpe(pred, gt),
    }


def reference_procrustes(pred, gt, allow_reflection=False):
    """Independent per-frame similarity Procrustes: scipy rotation/orthogonal fit + closed-form scale."""
    aligned = np.empty_like(pred)
    for i, (p, g) in enumerate(zip(pred, gt)):
        p0, g0 = p - p.mean(axis=0), g - g.mean(axis=0)
        if allow_reflection:
            matrix = orthogonal_procrustes(p0, g0)[0]  # p0 @ matrix ~ g0, det may be -1
        else:
            matrix = Rotation.align_vectors(g0, p0)[0].as_matrix().T  # proper rotation
        rotated = p0 @ matrix
        scale = np.sum(rotated * g0) / np.sum(p0 * p0)
        aligned[i] = scale * rotated + g.mean(axis=0)
    return aligned


# --- root alignment and P1 ------------------------------------------------------------------


def test_root_align_zeroes_the_root_and_keeps_offsets():
    poses = random_poses(3)
    aligned = metrics.root_align(poses, root=2)
    np.testing.assert_array_equal(aligned[:, 2], 0.0)
    np.testing.assert_allclose(aligned[:, 5] - aligned[:, 7], poses[:, 5] - poses[:, 7], atol=1e-9)
    with pytest.raises(ValueError, match="root index"):
        metrics.root_align(poses, root=J)


def test_identical_poses_give_zero_for_every_metric():
    poses = random_poses(5)
    for name, errors in all_metric_errors(poses, poses.copy()).items():
        np.testing.assert_allclose(errors, 0.0, atol=1e-9, err_msg=name)
    assert metrics.mpjve(poses, poses, np.zeros(5)) == 0.0


def test_constant_offset_of_all_joints_is_removed_by_root_alignment():
    gt = random_poses(4)
    pred = gt + np.array([120.0, -45.0, 300.0])
    np.testing.assert_allclose(metrics.joint_errors_mpjpe(pred, gt), 0.0, atol=1e-9)


def test_offset_of_one_joint_gives_norm_over_joint_count():
    gt = random_poses(4)
    pred = gt.copy()
    pred[:, 13] += np.array([3.0, 4.0, 12.0])  # |d| = 13 mm on LWrist only
    errors = metrics.joint_errors_mpjpe(pred, gt)
    expected = np.zeros((4, J))
    expected[:, 13] = 13.0
    np.testing.assert_allclose(errors, expected, atol=1e-9)
    assert errors.mean() == pytest.approx(13.0 / 17.0, abs=1e-12)


def test_equal_norm_offsets_on_every_non_root_joint_give_norm_d():
    gt = random_poses(6, seed=1)
    directions = np.random.default_rng(2).normal(size=(6, J, 3))
    offsets = 25.0 * directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    offsets[:, 0] = 0.0  # the root keeps its position
    result = metrics.evaluate(gt + offsets, gt, ["Walking"] * 6, joint_names=H36M17.names, decimals=None)
    by_joint = result["mpjpe_mm"]["by_joint"]
    assert by_joint["Hip"] == pytest.approx(0.0, abs=1e-12)
    for name in H36M17.names[1:]:
        assert by_joint[name] == pytest.approx(25.0, abs=1e-9), name
    # 16 joints at 25 mm, the root at 0: 16 * 25 / 17.
    assert result["mpjpe_mm"]["frame_mean"] == pytest.approx(400.0 / 17.0, abs=1e-9)


# --- P2 ---------------------------------------------------------------------------------------


def test_rotated_scaled_shifted_copy_has_zero_p_mpjpe_but_positive_mpjpe():
    gt = random_poses(8, seed=3)
    rotations = Rotation.random(8, random_state=4).as_matrix()
    pred = 1.3 * np.einsum("nij,nkj->nki", rotations, gt) + np.array([50.0, -20.0, 4000.0])
    np.testing.assert_allclose(metrics.joint_errors_p_mpjpe(pred, gt), 0.0, atol=1e-6)
    assert metrics.joint_errors_mpjpe(pred, gt).mean() > 100.0


def test_mirrored_copy_is_not_aligned_by_p_mpjpe():
    gt = random_poses(8, seed=5)
    pred = gt * np.array([-1.0, 1.0, 1.0])
    ours = metrics.joint_errors_p_mpjpe(pred, gt).mean(axis=1)
    # An orthogonal fit that may reflect would make it vanish, so the sign(det) fix is what matters.
    with_reflection = np.linalg.norm(reference_procrustes(pred, gt, allow_reflection=True) - gt, axis=-1)
    np.testing.assert_allclose(with_reflection, 0.0, atol=1e-6)
    assert np.all(ours > 50.0)


def test_p_mpjpe_matches_an_independent_scipy_procrustes():
    gt = random_poses(50, seed=6)
    noise = np.random.default_rng(7).normal(scale=40.0, size=gt.shape)
    rotations = Rotation.random(50, random_state=8).as_matrix()
    pred = 0.8 * np.einsum("nij,nkj->nki", rotations, gt + noise) + 123.0
    expected = np.linalg.norm(reference_procrustes(pred, gt) - gt, axis=-1)
    np.testing.assert_allclose(metrics.joint_errors_p_mpjpe(pred, gt), expected, atol=1e-6)
    assert expected.mean() > 10.0  # the noise survives alignment: a non-trivial comparison


# --- P3 ---------------------------------------------------------------------------------------


def test_scaled_copy_about_the_root_has_zero_n_mpjpe():
    gt = random_poses(5, seed=9)
    root = gt[:, :1]
    pred = root + 1.1 * (gt - root) + np.array([10.0, 20.0, 30.0])
    np.testing.assert_allclose(metrics.joint_errors_n_mpjpe(pred, gt), 0.0, atol=1e-9)
    # P1 is exactly |s - 1| times the distance of each joint from the root.
    expected_p1 = 0.1 * np.linalg.norm(gt - root, axis=-1)
    np.testing.assert_allclose(metrics.joint_errors_mpjpe(pred, gt), expected_p1, atol=1e-9)
    assert expected_p1.mean() > 20.0


def test_n_mpjpe_uses_the_least_squares_scale():
    gt = np.zeros((1, 3, 3))
    gt[0, 1] = [100.0, 0.0, 0.0]
    gt[0, 2] = [0.0, 100.0, 0.0]
    pred = gt.copy()
    pred[0, 2] = [0.0, 0.0, 100.0]  # <pred, gt> = 1e4, <pred, pred> = 2e4 -> s = 0.5
    expected = np.array([[0.0, 50.0, np.hypot(100.0, 50.0)]])
    np.testing.assert_allclose(metrics.joint_errors_n_mpjpe(pred, gt), expected, atol=1e-9)


# --- MPJVE --------------------------------------------------------------------------------------


def moving_sequence(num_frames, seed=10):
    """(T, 17, 3) gt whose joints each move at their own constant velocity (mm/frame)."""
    rng = np.random.default_rng(seed)
    start, velocity = rng.normal(scale=300.0, size=(J, 3)), rng.normal(scale=10.0, size=(J, 3))
    return start + np.arange(num_frames)[:, None, None] * velocity


def test_constant_velocity_with_constant_error_has_zero_mpjve():
    gt = moving_sequence(10)
    pred = gt + np.random.default_rng(11).normal(scale=30.0, size=(J, 3))
    assert metrics.mpjve(pred, gt, np.zeros(10)) == pytest.approx(0.0, abs=1e-9)
    assert metrics.joint_errors_mpjpe(pred, gt).mean() > 10.0


def test_jitter_on_one_joint_gives_known_mpjve():
    gt = moving_sequence(7)
    pred = gt.copy()
    signs = (-1.0) ** np.arange(7)
    pred[:, 16] += signs[:, None] * np.array([0.0, 3.0, 4.0])  # +-a, |a| = 5 mm
    errors, rows = metrics.joint_errors_mpjve(pred, gt, np.zeros(7))
    np.testing.assert_array_equal(rows, np.arange(1, 7))
    expected = np.zeros((6, J))
    expected[:, 16] = 10.0  # each step swings by 2|a|
    np.testing.assert_allclose(errors, expected, atol=1e-9)
    assert metrics.mpjve(pred, gt, np.zeros(7)) == pytest.approx(10.0 / 17.0, abs=1e-12)


def test_mpjve_never_differences_across_a_sequence_boundary():
    gt = np.concatenate([moving_sequence(3, seed=12), moving_sequence(4, seed=13)])
    pred = gt.copy()
    pred[:3, 5] += np.array([40.0, 0.0, 0.0])  # constant error in sequence "a"
    pred[3:, 5] += np.array([0.0, -70.0, 0.0])  # a different constant error in "b"
    ids = np.array(["a"] * 3 + ["b"] * 4)
    errors, rows = metrics.joint_errors_mpjve(pred, gt, ids)
    np.testing.assert_array_equal(rows, [1, 2, 4, 5, 6])
    np.testing.assert_allclose(errors, 0.0, atol=1e-9)
    # Differencing across the boundary (one sequence) would see the jump of |(-40, -70, 0)|.
    assert metrics.mpjve(pred, gt, np.zeros(7)) == pytest.approx(np.hypot(40, 70) / 6 / J, abs=1e-9)


def test_mpjve_rejects_non_contiguous_sequences_and_lone_frames():
    gt = moving_sequence(4)
    with pytest.raises(ValueError, match="not contiguous"):
        metrics.mpjve(gt, gt, [1, 2, 1, 1])
    with pytest.raises(ValueError, match="MPJVE is undefined"):
        metrics.mpjve(gt, gt, [1, 2, 3, 4])
    with pytest.raises(ValueError, match="sequence_ids has 3 rows"):
        metrics.mpjve(gt, gt, [1, 1, 1])


# --- aggregation --------------------------------------------------------------------------------


def two_action_example():
    """Two joints (root + one); Walking: 1 frame with a 12 mm error, Eating: 3 frames with 4 mm."""
    gt = np.zeros((4, 2, 3))
    gt[:, 1] = [0.0, 0.0, 500.0]
    pred = gt.copy()
    pred[:, 1, 0] = [4.0, 12.0, 4.0, 4.0]
    actions = ["Eating", "Walking", "Eating", "Eating"]
    return pred, gt, actions


def test_action_mean_and_frame_mean_differ_by_hand():
    pred, gt, actions = two_action_example()
    result = metrics.evaluate(pred, gt, actions, joint_names=["Root", "Tip"], decimals=None)
    mpjpe = result["mpjpe_mm"]
    # Per-frame means (root error 0): Walking 12/2 = 6, Eating 4/2 = 2.
    assert mpjpe["by_action"] == pytest.approx({"Eating": 2.0, "Walking": 6.0}, abs=1e-12)
    assert mpjpe["action_mean"] == pytest.approx((6.0 + 2.0) / 2, abs=1e-12)  # 4.0
    assert mpjpe["frame_mean"] == pytest.approx((6.0 + 3 * 2.0) / 4, abs=1e-12)  # 3.0
    assert mpjpe["by_joint"] == pytest.approx({"Root": 0.0, "Tip": (12.0 + 3 * 4.0) / 4}, abs=1e-12)
    # Two points are always matched exactly by a similarity transform.
    assert result["p_mpjpe_mm"]["frame_mean"] == pytest.approx(0.0, abs=1e-9)
    assert result["num_frames"] == 4
    assert result["num_actions"] == 2


def test_evaluate_layout_is_sorted_rounded_and_includes_mpjve():
    gt = np.zeros((5, 2, 3))
    gt[:, 1] = [0.0, 0.0, 500.0]
    pred = gt.copy()
    pred[:, 1, 0] += [4.0, 4.0, 12.0, 12.0, 16.0]
    actions = ["Eating", "Eating", "Walking", "Walking", "Walking"]
    result = metrics.evaluate(pred, gt, actions, sequence_ids=[0, 0, 1, 1, 1])
    assert list(result) == ["mpjpe_mm", "mpjve_mm_per_frame", "n_mpjpe_mm", "num_actions",
                            "num_frames", "p_mpjpe_mm"]
    for key in ("mpjpe_mm", "mpjve_mm_per_frame", "n_mpjpe_mm", "p_mpjpe_mm"):
        assert list(result[key]) == ["action_mean", "by_action", "by_joint", "frame_mean"]
    # Row means: Eating 2, 2; Walking 6, 6, 8. Action mean (2 + 20/3) / 2 = 4.333...
    assert result["mpjpe_mm"] == {"action_mean": 4.33, "by_action": {"Eating": 2.0, "Walking": 6.67},
                                  "by_joint": {"00": 0.0, "01": 9.6}, "frame_mean": 4.8}
    # Pairs (1), (3), (4): velocity errors 0, 0, 4 on joint 01, so row means 0, 0, 2.
    assert result["mpjve_mm_per_frame"] == {"action_mean": 0.5, "by_action": {"Eating": 0.0, "Walking": 1.0},
                                            "by_joint": {"00": 0.0, "01": 1.33}, "frame_mean": 0.67}
    assert (result["num_actions"], result["num_frames"]) == (2, 5)


def test_evaluate_mpjve_needs_a_pair_for_every_action():
    pred, gt, actions = two_action_example()
    with pytest.raises(ValueError, match=r"actions \['Walking'\]"):
        metrics.evaluate(pred, gt, actions, sequence_ids=[0, 1, 2, 2])
    with pytest.raises(ValueError, match="more than one action"):
        metrics.evaluate(pred, gt, actions, sequence_ids=[0, 0, 1, 1])


def test_round_metrics_only_rounds_floats():
    raw = {"b": {"x": 1.23456, "y": 2.0 / 3.0}, "a": 7, "c": np.float64(0.004)}
    assert metrics.round_metrics(raw) == {"b": {"x": 1.23, "y": 0.67}, "a": 7, "c": 0.0}


# --- input validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [metrics.joint_errors_mpjpe, metrics.joint_errors_p_mpjpe,
                                metrics.joint_errors_n_mpjpe])
def test_bad_inputs_raise_value_error(fn):
    gt = random_poses(3)
    with pytest.raises(ValueError, match="shapes differ"):
        fn(gt[:, :16], gt)
    with pytest.raises(ValueError, match=r"shape \(N, J, 3\)"):
        fn(gt[..., :2], gt[..., :2])
    bad = gt.copy()
    bad[1, 4, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf values in 1 frame"):
        fn(bad, gt)


def test_evaluate_rejects_bad_labels():
    gt = random_poses(3)
    with pytest.raises(ValueError, match="actions must have shape"):
        metrics.evaluate(gt, gt, ["Walking"] * 2)
    with pytest.raises(ValueError, match="unique names"):
        metrics.evaluate(gt, gt, ["Walking"] * 3, joint_names=["a"] * J)


def test_keypoints_2d_summary_known_answer():
    """Errors 3, 4, 5 and 12 px (3-4-5 and 5-12-13 triangles): mean 6, PCK at 5/10/20 px 75/75/100 %."""
    gt = np.zeros((2, 2, 2))
    pred = np.array([[[3.0, 0.0], [0.0, 4.0]], [[3.0, 4.0], [12.0, 0.0]]])
    summary = metrics.keypoints_2d_summary(pred, gt, ["a", "b"])
    assert summary["mean_px"] == pytest.approx(6.0) and summary["median_px"] == pytest.approx(4.5)
    assert summary["pck"] == pytest.approx({"5px": 75.0, "10px": 75.0, "20px": 100.0})
    assert summary["per_joint_px"] == pytest.approx({"a": 4.0, "b": 8.0})


def test_keypoints_2d_summary_counts_left_right_swaps():
    """A centre joint and a left/right pair 10 px apart, three frames: exact; the pair swapped (2
    swaps); both on the left joint (the right one swapped): 3 of the 6 sided keypoints."""
    gt = np.tile(np.array([[0.0, 0.0], [-5.0, 0.0], [5.0, 0.0]]), (3, 1, 1))
    pred = gt.copy()
    pred[1, [1, 2]] = gt[1, [2, 1]]
    pred[2, 2] = gt[2, 1]
    summary = metrics.keypoints_2d_summary(pred, gt, ["c", "l", "r"], mirror=[0, 2, 1])
    assert summary["swapped_pct"] == pytest.approx(100.0 * 3 / 6)
    assert "swapped_pct" not in metrics.keypoints_2d_summary(pred, gt, ["c", "l", "r"])


# --- PCK and AUC (MPI-INF-3DHP's mpii_compute_3d_pck.m) ----------------------------------------


def test_pck_counts_errors_strictly_below_150_mm():
    errors = np.array([[0.0, 149.9, 150.0, 400.0]])
    assert metrics.joint_pck(errors).tolist() == [[100.0, 100.0, 0.0, 0.0]]


def test_auc_is_the_share_of_the_31_thresholds_an_error_is_below():
    # thresholds 0, 5, ..., 150: an error of 0 is below 30 of them (not 0), 7 below 29 (10..150),
    # 149.9 below one (150), 150 below none
    errors = np.array([[0.0, 7.0, 149.9, 150.0]])
    assert len(metrics.AUC_THRESHOLDS_MM) == 31
    assert metrics.joint_auc(errors)[0] == pytest.approx(np.array([30, 29, 1, 0]) / 31 * 100)


def test_pck_auc_equal_the_official_per_threshold_curve_and_group_by_label():
    errors = np.random.default_rng(3).uniform(0.0, 250.0, size=(50, 14))
    labels = np.array(["a"] * 10 + ["b"] * 40)
    scored = metrics.pck_auc(errors, labels, [f"j{i}" for i in range(14)])
    curve = [100.0 * (errors < t).mean() for t in range(0, 151, 5)]  # the MATLAB loop over thresholds
    assert scored["auc_pct"]["frame_mean"] == pytest.approx(np.mean(curve))
    assert scored["pck150_pct"]["frame_mean"] == pytest.approx(100.0 * (errors < 150).mean())
    by_label = {label: 100.0 * (errors[labels == label] < 150).mean() for label in ("a", "b")}
    assert scored["pck150_pct"]["by_action"] == pytest.approx(by_label)
    assert scored["pck150_pct"]["action_mean"] == pytest.approx(np.mean(list(by_label.values())))
    assert scored["pck150_pct"]["by_joint"]["j0"] == pytest.approx(100.0 * (errors[:, 0] < 150).mean())


def _assert_nested_close(actual, expected):
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            _assert_nested_close(actual[key], expected[key])
    else:
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_an_evaluation_added_in_parts_of_whole_sequences_equals_one_pass():
    rng = np.random.default_rng(3)
    gt = random_poses(90, seed=4)
    pred = gt + rng.normal(scale=30.0, size=gt.shape)
    actions = np.repeat(["Walking", "Eating", "Walking", "Sitting"], [20, 25, 30, 15])
    sequences = np.repeat([0, 1, 2, 3], [20, 25, 30, 15])
    whole = metrics.evaluate(pred, gt, actions, sequence_ids=sequences, joint_names=H36M17.names, decimals=None)
    parts = metrics.Evaluation(H36M17.names)
    for rows in (slice(0, 45), slice(45, 75), slice(75, 90)):  # whole sequences per part
        parts.add(pred[rows], gt[rows], actions[rows], sequence_ids=sequences[rows])
    _assert_nested_close(parts.result(decimals=None), whole)
    # one part without sequence ids: no MPJVE, the rest unchanged
    without = metrics.Evaluation(H36M17.names)
    without.add(pred[:45], gt[:45], actions[:45], sequence_ids=sequences[:45])
    without.add(pred[45:], gt[45:], actions[45:])
    result = without.result(decimals=None)
    assert "mpjve_mm_per_frame" not in result
    _assert_nested_close(result["p_mpjpe_mm"], whole["p_mpjpe_mm"])


def test_error_sums_are_the_per_action_and_per_joint_means():
    sums = metrics.ErrorSums(["a", "b"])
    sums.add(np.array([[1.0, 3.0], [5.0, 7.0]]), ["Walk", "Sit"])
    sums.add(np.array([[2.0, 2.0]]), ["Walk"])
    # Walk rows: (1, 3), (2, 2) -> 2; Sit: (5, 7) -> 6; joints: a (1+5+2)/3, b (3+7+2)/3
    assert sums.summary() == {"action_mean": 4.0, "by_action": {"Sit": 6.0, "Walk": 2.0},
                              "by_joint": {"a": pytest.approx(8 / 3), "b": 4.0}, "frame_mean": pytest.approx(20 / 6)}
    with pytest.raises(ValueError, match=r"expected \(M, 2\) errors"):
        sums.add(np.zeros((2, 3)), ["Walk", "Walk"])
    with pytest.raises(ValueError, match="no errors"):
        metrics.ErrorSums(["a"]).summary()
