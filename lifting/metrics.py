"""Pose-error metrics for 3D human pose lifting: pure numpy, poses in millimetres.

Protocols (methods.md §1.5); every function takes ``(N, J, 3)`` arrays of N frames, J joints, mm:

* **P1 / MPJPE**: Euclidean joint error after subtracting the root joint from BOTH poses. The root
  stays in the joint average (its error is then 0), as in VideoPose3D, RIE, GridConv and HGN.
* **P2 / P-MPJPE**: per-frame similarity Procrustes (rotation, translation, uniform scale;
  reflections excluded) of the prediction onto the ground truth, then the joint error.
* **P3 / N-MPJPE**: per-frame scale-only alignment ``s = <pred, gt> / <pred, pred>`` of the
  root-aligned prediction (VideoPose3D ``n_mpjpe``), then the joint error.
* **MPJVE**: joint error of the first time difference of the root-aligned poses, in mm/frame,
  taken only between consecutive rows of the same sequence (never across a sequence boundary).

Averages: ``action_mean`` is the unweighted mean over actions of the frame-weighted per-action
means (the papers' headline); ``frame_mean`` pools all frames (MMPose's headline). The raw
functions are exact; :func:`round_metrics` rounds a finished result dict, and nothing else does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lifting.geometry import similarity_procrustes


def _as_poses(poses, name: str) -> np.ndarray:
    """Return ``poses`` as float64 (N, J, 3), or raise ValueError on a bad shape or NaN/inf."""
    arr = np.asarray(poses, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, J, 3) in mm, got {arr.shape}")
    finite = np.isfinite(arr).all(axis=(1, 2))
    if not finite.all():
        raise ValueError(f"{name} has NaN or inf values in {int((~finite).sum())} frame(s), "
                         f"first at row {int(np.flatnonzero(~finite)[0])}")
    return arr


def _check_pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """Validate a prediction/ground-truth pair: both finite (N, J, 3) arrays of the same shape."""
    pred, gt = _as_poses(pred, "pred"), _as_poses(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt shapes differ: {pred.shape} vs {gt.shape}")
    return pred, gt


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, J, 3), (N, J, 3) -> (N, J) Euclidean distance per joint, same unit as the input."""
    return np.linalg.norm(a - b, axis=-1)


def root_align(poses, root: int = 0) -> np.ndarray:
    """Subtract the root joint from every joint.

    Args:
        poses: (..., J, 3) poses, mm.
        root: index of the root joint, 0 <= root < J (0 = pelvis in h36m17/h36m16).
    Returns:
        (..., J, 3) root-relative poses in mm; joint ``root`` becomes exactly 0.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if not 0 <= root < poses.shape[-2]:
        raise ValueError(f"root index {root} out of range for {poses.shape[-2]} joints")
    return poses - poses[..., root:root + 1, :]


def joint_errors_mpjpe(pred, gt, root: int = 0) -> np.ndarray:
    """P1 errors: (N, J, 3) pred, (N, J, 3) gt in mm -> (N, J) distances in mm, both root-aligned."""
    pred, gt = _check_pair(pred, gt)
    return _distance(root_align(pred, root), root_align(gt, root))


def joint_errors_p_mpjpe(pred, gt) -> np.ndarray:
    """P2 errors: (N, J, 3) pred, (N, J, 3) gt in mm -> (N, J) distances in mm after a per-frame
    similarity Procrustes of pred onto gt (rotation, translation, uniform scale, no reflection)."""
    pred, gt = _check_pair(pred, gt)
    return _distance(similarity_procrustes(pred, gt), gt)


def joint_errors_n_mpjpe(pred, gt, root: int = 0) -> np.ndarray:
    """P3 errors: (N, J, 3) pred, (N, J, 3) gt in mm -> (N, J) distances in mm.

    Both poses are root-aligned, then each predicted frame is scaled by
    ``s = <pred, gt> / <pred, pred>`` (sums over joints and coordinates; s = 1 for an all-zero
    prediction), the least-squares scale of VideoPose3D ``n_mpjpe``.
    """
    pred, gt = _check_pair(pred, gt)
    pred, gt = root_align(pred, root), root_align(gt, root)
    dot_pp = np.sum(pred * pred, axis=(1, 2), keepdims=True)
    dot_pg = np.sum(pred * gt, axis=(1, 2), keepdims=True)
    scale = np.divide(dot_pg, dot_pp, out=np.ones_like(dot_pp), where=dot_pp > 0)
    return _distance(scale * pred, gt)


def velocity_rows(sequence_ids) -> np.ndarray:
    """Rows that have a predecessor in the same sequence.

    Args:
        sequence_ids: (N,) labels (int or str); rows with equal labels form one sequence, which
            must be contiguous and in time order.
    Returns:
        (M,) int indices ``i`` such that rows ``i - 1`` and ``i`` are consecutive frames of one
        sequence (M = N minus the number of sequences).
    """
    ids = np.asarray(sequence_ids)
    if ids.ndim != 1:
        raise ValueError(f"sequence_ids must have shape (N,), got {ids.shape}")
    same = ids[1:] == ids[:-1]
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    if len(np.unique(ids[starts])) != len(starts):
        raise ValueError("sequence_ids are not contiguous: a sequence id occurs in two separate "
                         "runs of rows; sort rows by sequence, then by frame")
    return np.flatnonzero(same) + 1


def joint_errors_mpjve(pred, gt, sequence_ids, root: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint velocity errors, differencing only within each sequence.

    Args:
        pred, gt: (N, J, 3) poses in mm, rows in time order within each sequence.
        sequence_ids: (N,) sequence label of every row (see :func:`velocity_rows`).
        root: root joint index; both poses are root-aligned before differencing.
    Returns:
        errors: (M, J) ``|(p_i - p_{i-1}) - (g_i - g_{i-1})|`` in mm/frame.
        rows: (M,) the index ``i`` (the later frame) of each differenced pair.
    """
    pred, gt = _check_pair(pred, gt)
    if len(sequence_ids) != len(pred):
        raise ValueError(f"sequence_ids has {len(sequence_ids)} rows, poses have {len(pred)}")
    rows = velocity_rows(sequence_ids)
    pred, gt = root_align(pred, root), root_align(gt, root)
    return _distance(pred[rows] - pred[rows - 1], gt[rows] - gt[rows - 1]), rows


def mpjve(pred, gt, sequence_ids, root: int = 0) -> float:
    """MPJVE: (N, J, 3) pred, gt in mm and (N,) sequence ids -> mean velocity error in mm/frame."""
    errors, _ = joint_errors_mpjve(pred, gt, sequence_ids, root)
    if errors.size == 0:
        raise ValueError("no sequence has two consecutive frames: MPJVE is undefined")
    return float(errors.mean())


def summarize(errors: np.ndarray, actions: np.ndarray, joint_names: Sequence[str]) -> dict:
    """Average (M, J) joint errors (mm) labelled by (M,) actions into the headline statistics.

    Returns:
        ``{"action_mean", "by_action": {action: mean}, "by_joint": {joint: mean}, "frame_mean"}``,
        unrounded floats in the unit of ``errors``. ``by_joint`` pools all rows, like
        ``frame_mean``; ``action_mean`` is the unweighted mean of ``by_action``.
    """
    sums = ErrorSums(joint_names)
    sums.add(errors, actions)
    return sums.summary()


class ErrorSums:
    """Running per-label sums of (M, J) joint errors, summarised as :func:`summarize` does: rows
    can be added in parts (e.g. a test set streamed in chunks) and memory holds (labels, J) sums."""

    def __init__(self, joint_names: Sequence[str]):
        self.joint_names = list(joint_names)
        self._sums: dict[str, np.ndarray] = {}
        self._rows: dict[str, int] = {}

    def add(self, errors: np.ndarray, labels) -> None:
        """Add (M, J) errors with their (M,) labels (actions)."""
        errors = np.asarray(errors, dtype=np.float64)
        labels = np.asarray(labels).astype(str)
        if errors.ndim != 2 or errors.shape[1] != len(self.joint_names) or labels.shape != errors.shape[:1]:
            raise ValueError(f"expected (M, {len(self.joint_names)}) errors and (M,) labels, "
                             f"got {errors.shape} and {labels.shape}")
        for label in np.unique(labels):
            rows = errors[labels == label]
            self._sums[label] = self._sums.get(label, 0.0) + rows.sum(axis=0)
            self._rows[label] = self._rows.get(label, 0) + len(rows)

    def labels(self) -> list[str]:
        """The labels added so far, sorted."""
        return sorted(self._rows)

    def summary(self) -> dict:
        """``{"action_mean", "by_action", "by_joint", "frame_mean"}`` of everything added."""
        if not self._rows:
            raise ValueError("no errors were added")
        joints = len(self.joint_names)
        by_action = {label: float(self._sums[label].sum() / (self._rows[label] * joints)) for label in sorted(self._rows)}
        total = sum(self._sums.values())
        rows = sum(self._rows.values())
        return {
            "action_mean": float(np.mean(list(by_action.values()))),
            "by_action": by_action,
            "by_joint": dict(sorted(zip(self.joint_names, (total / rows).tolist()))),
            "frame_mean": float(total.sum() / (rows * joints)),
        }


def _labels(values, n: int, name: str) -> np.ndarray:
    """(N,) labels as a str array, or ValueError if the length is not ``n``."""
    arr = np.asarray(values).astype(str)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    return arr


def _joint_names(joint_names: Sequence[str] | None, num_joints: int) -> list[str]:
    """Given names checked for length and uniqueness, or zero-padded indices "00", "01", ..."""
    if joint_names is None:
        return [f"{j:02d}" for j in range(num_joints)]
    names = [str(name) for name in joint_names]
    if len(names) != num_joints or len(set(names)) != num_joints:
        raise ValueError(f"joint_names must be {num_joints} unique names, got {names}")
    return names


def round_metrics(result, decimals: int = 2):
    """Round every float in a (nested) metrics dict to ``decimals``; ints and keys are kept."""
    if isinstance(result, dict):
        return {key: round_metrics(value, decimals) for key, value in result.items()}
    if isinstance(result, (bool, int, np.integer)):
        return int(result)
    return round(float(result), decimals)


def evaluate(pred, gt, actions, sequence_ids=None, joint_names: Sequence[str] | None = None,
             root: int = 0, decimals: int | None = 2) -> dict:
    """All metrics, averaged per action, per frame and per joint.

    Args:
        pred, gt: (N, J, 3) poses in mm, N >= 1.
        actions: (N,) action label of every row.
        sequence_ids: optional (N,) sequence label of every row (contiguous, time-ordered, one
            action per sequence); given, MPJVE is added under ``mpjve_mm_per_frame``.
        joint_names: J names for ``by_joint`` (e.g. ``H36M17.names``); default "00", "01", ...
        root: root joint index for P1, P3 and MPJVE.
        decimals: rounding applied at the very end by :func:`round_metrics`; None keeps raw floats.
    Returns:
        A dict with sorted keys: ``mpjpe_mm``, ``n_mpjpe_mm``, ``p_mpjpe_mm`` (and
        ``mpjve_mm_per_frame``), each as returned by :func:`summarize`, plus ``num_actions`` and
        ``num_frames``.
    """
    pred, gt = _check_pair(pred, gt)
    evaluation = Evaluation(_joint_names(joint_names, pred.shape[1]), root)
    evaluation.add(pred, gt, actions, sequence_ids)
    return evaluation.result(decimals)


class Evaluation:
    """:func:`evaluate` over rows given in parts, holding per-action sums only (memory flat in the
    number of rows). MPJVE is reported when every part came with sequence ids; a part must then
    hold whole sequences (differences are taken within a part)."""

    PROTOCOLS = {"mpjpe_mm": joint_errors_mpjpe, "n_mpjpe_mm": joint_errors_n_mpjpe,
                 "p_mpjpe_mm": lambda pred, gt, root: joint_errors_p_mpjpe(pred, gt)}

    def __init__(self, joint_names: Sequence[str], root: int = 0):
        self.joint_names, self.root = list(joint_names), root
        self._sums = {name: ErrorSums(self.joint_names) for name in (*self.PROTOCOLS, "mpjve_mm_per_frame")}
        self._frames, self._parts_without_sequences = 0, 0
        self._actions: set[str] = set()

    def add(self, pred, gt, actions, sequence_ids=None) -> None:
        """Add (n, J, 3) ``pred`` and ``gt`` (mm) with their (n,) actions and, for MPJVE, sequence ids."""
        pred, gt = _check_pair(pred, gt)
        if pred.shape[1] != len(self.joint_names):
            raise ValueError(f"poses have {pred.shape[1]} joints, joint_names {len(self.joint_names)}")
        actions = _labels(actions, len(pred), "actions")
        for name, errors in self.PROTOCOLS.items():
            self._sums[name].add(errors(pred, gt, self.root), actions)
        if sequence_ids is None:
            self._parts_without_sequences += 1
        else:
            errors, rows = joint_errors_mpjve(pred, gt, sequence_ids, self.root)
            if np.any(actions[rows] != actions[rows - 1]):
                raise ValueError("a sequence spans more than one action; give each its own sequence id")
            self._sums["mpjve_mm_per_frame"].add(errors, actions[rows])
        self._frames += len(pred)
        self._actions.update(actions.tolist())

    def result(self, decimals: int | None = 2) -> dict:
        """What :func:`evaluate` returns for all the rows added."""
        if self._frames == 0:
            raise ValueError("cannot evaluate zero frames")
        result = {name: self._sums[name].summary() for name in self.PROTOCOLS}
        result.update(num_actions=len(self._actions), num_frames=self._frames)
        if self._parts_without_sequences == 0:
            velocity = self._sums["mpjve_mm_per_frame"]
            missing = sorted(self._actions - set(velocity.labels()))
            if missing:
                raise ValueError(f"no two consecutive frames of one sequence for actions {missing}: "
                                 "MPJVE is undefined there")
            result["mpjve_mm_per_frame"] = velocity.summary()
        result = dict(sorted(result.items()))
        return result if decimals is None else round_metrics(result, decimals)


#: Thresholds (image pixels) of the 2D detector's PCK.
PCK2D_THRESHOLDS_PX = (5.0, 10.0, 20.0)


def keypoints_2d_summary(pred_px, gt_px, joint_names: Sequence[str], thresholds=PCK2D_THRESHOLDS_PX,
                         mirror: Sequence[int] | None = None) -> dict:
    """A 2D detector's accuracy on (N, J, 2) pixel keypoints: mean and median error (px), the
    share of keypoints within each threshold (PCK, %), and the mean error per joint. With
    ``mirror`` (the joint set's left/right permutation, :meth:`lifting.skeleton.JointSet.flip_permutation`)
    also ``swapped_pct``: the share of left and right keypoints that lie closer to their twin's
    ground truth than to their own (left/right swaps, %)."""
    pred, gt = np.asarray(pred_px, dtype=np.float64), np.asarray(gt_px, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"expected two (N, J, 2) arrays of the same shape, got {pred.shape} and {gt.shape}")
    errors = np.linalg.norm(pred - gt, axis=-1)
    summary = {"keypoints": int(errors.size), "mean_px": float(errors.mean()), "median_px": float(np.median(errors)),
               "pck": {f"{t:g}px": float(100.0 * (errors <= t).mean()) for t in thresholds},
               "per_joint_px": dict(zip(joint_names, errors.mean(axis=0).tolist()))}
    if mirror is not None:
        mirror = np.asarray(mirror)
        sided = mirror != np.arange(len(mirror))
        to_twin = np.linalg.norm(pred[:, sided] - gt[:, mirror[sided]], axis=-1)
        summary["swapped_pct"] = float(100.0 * (to_twin < errors[:, sided]).mean())
    return summary


#: PCK's threshold and AUC's thresholds (mm): MPI-INF-3DHP's official ``mpii_compute_3d_pck.m``
#: (``pck_thresh = 150``, ``thresh = 0:5:150``). A joint is correct when its error is strictly below.
PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = tuple(float(t) for t in range(0, 151, 5))


def joint_pck(errors, threshold_mm: float = PCK_THRESHOLD_MM) -> np.ndarray:
    """(M, J) joint errors (mm) -> (M, J) 100 where the error is strictly below ``threshold_mm``, else 0.

    Averaged by :func:`summarize`, these give PCK in percent over any grouping of rows and joints.
    """
    return np.where(np.asarray(errors, dtype=np.float64) < threshold_mm, 100.0, 0.0)


def joint_auc(errors, thresholds_mm=AUC_THRESHOLDS_MM) -> np.ndarray:
    """(M, J) joint errors (mm) -> (M, J) the share (%) of ``thresholds_mm`` each error is strictly below.

    The mean of these over rows and joints equals the mean over the thresholds of PCK at each (both
    means are linear), so :func:`summarize` gives the area under the PCK curve (AUC, %) of any grouping.
    """
    errors = np.asarray(errors, dtype=np.float64)
    thresholds = np.asarray(thresholds_mm, dtype=np.float64)
    return 100.0 * (errors[..., None] < thresholds).mean(axis=-1)


def pck_auc(errors, labels, joint_names: Sequence[str]) -> dict:
    """PCK@150 mm and AUC (0-150 mm) of (M, J) joint errors (mm) labelled by (M,) ``labels``:
    ``{"pck150_pct": ..., "auc_pct": ...}``, each as :func:`summarize` returns it (percent)."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[0] == 0:
        raise ValueError(f"errors must have shape (M, J) with M >= 1, got {errors.shape}")
    sums = PckAucSums(_joint_names(joint_names, errors.shape[1]))
    sums.add(errors, _labels(labels, len(errors), "labels"))
    return sums.summary()


class PckAucSums:
    """:func:`pck_auc` over rows given in parts, holding per-label sums only."""

    def __init__(self, joint_names: Sequence[str]):
        self._sums = {"auc_pct": ErrorSums(joint_names), "pck150_pct": ErrorSums(joint_names)}

    def add(self, errors: np.ndarray, labels) -> None:
        """Add (M, J) joint errors (mm) with their (M,) labels."""
        self._sums["auc_pct"].add(joint_auc(errors), labels)
        self._sums["pck150_pct"].add(joint_pck(errors), labels)

    def summary(self) -> dict:
        """``{"auc_pct": ..., "pck150_pct": ...}`` of everything added, each as :func:`summarize` returns it."""
        return {name: sums.summary() for name, sums in self._sums.items()}
