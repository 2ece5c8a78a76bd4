"""A trained run scored zero-shot on MPI-INF-3DHP's test set: the papers' cross-dataset protocol.

The ``normalize_3dhp`` stage writes the user's test set into a canonical store (``data/mpi3dhp``,
:mod:`lifting.data.mpi3dhp`), or, with ``data.mpi3dhp_dir: null``, a folder saying it was skipped.
:func:`load_test_set` turns the store into a run's inputs and targets; :func:`score` scores the
predictions as the official ``mpii_compute_3d_pck.m`` does: poses root-relative at the pelvis,
``univ_annot3``, valid frames only; PCK@150 mm and AUC over 0:5:150 mm on the 14 joints
(:func:`lifting.evaluation.pck_joints`); per scene group (frame-weighted over its sequences), per
sequence, per activity and over all valid frames; plus P1 on the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lifting import metrics
from lifting.data.mpi3dhp import SOURCE
from lifting.data.schema import cameras_from_frame, poses_from_frame
from lifting.data.store import read_store
from lifting.errors import DataError
from lifting.evaluation import PCK_RULE, pck_joints, summarize_seeds
from lifting.geometry import normalize_screen_coordinates
from lifting.skeleton import COMMON_JOINTS, H36M17, get_joint_set

#: The scene groups of the test set's README: each scored over its sequences' valid frames together.
SCENES = {"green_screen": ("TS1", "TS2"), "no_green_screen": ("TS3", "TS4"), "outdoor": ("TS5", "TS6")}
#: The keys of every run's meta, in the aligned data's order (a temporal method's runs need them).
META = ["subject", "action", "sequence", "camera", "frame"]


@dataclass
class TestSet:
    """Every frame of the six sequences (a temporal method predicts whole sequences), in one joint set.

    Attributes:
        inputs: (N, J, 2) float32 ground-truth 2D (``annot2``), screen-normalised with its image size.
        targets: (N, J, 3) float32 ``univ_annot3``, root-relative at the pelvis, camera frame, mm.
        meta: (N,) rows: subject (= sequence), action (the activity), sequence, camera, frame.
        valid: (N,) bool, the scored frames (``valid_frame``).
        joint_set: the joint set's name.
    """

    inputs: np.ndarray
    targets: np.ndarray
    meta: pd.DataFrame
    valid: np.ndarray
    joint_set: str


def load_test_set(store_dir: str | Path, joint_set: str) -> TestSet:
    """The store written by the ``normalize_3dhp`` stage, in ``joint_set`` (h36m17, or h36m16 without the nose)."""
    store_dir = Path(store_dir)
    tables = read_store(store_dir, SOURCE)
    poses3d, poses2d = tables.poses3d, tables.poses2d[tables.poses2d["source"] == "gt"]
    keys = ["subject", "sequence", "frame"]
    if not poses3d[keys].reset_index(drop=True).equals(poses2d[keys].reset_index(drop=True)):
        raise DataError(store_dir / "poses2d.parquet", "rows do not match poses3d.parquet", "re-run "
                        "`dvc repro normalize_3dhp`")
    pixels = poses_from_frame(poses2d, H36M17, "uv").astype(np.float64)
    inputs = np.empty_like(pixels)
    for (subject, camera_id), camera in cameras_from_frame(tables.cameras).items():
        rows = ((poses2d["subject"] == subject) & (poses2d["camera"] == camera_id)).to_numpy()
        inputs[rows] = normalize_screen_coordinates(pixels[rows], camera.width, camera.height)
    world = poses_from_frame(poses3d, H36M17, "xyz")
    targets = world - world[:, :1]
    keep = [H36M17.index(name) for name in get_joint_set(joint_set).names]
    meta = poses3d[["subject", "action", "sequence"]].assign(camera=poses2d["camera"].to_numpy(),
                                                             frame=poses3d["frame"].to_numpy())[META]
    return TestSet(inputs[:, keep].astype(np.float32), targets[:, keep].astype(np.float32),
                   meta.reset_index(drop=True), poses3d["valid"].to_numpy(bool), joint_set)


def _grouped(values: np.ndarray, labels: dict[str, np.ndarray], names: list[str]) -> dict:
    """(M, J) per-joint values -> ``{"all", "by_<grouping>": {label: mean}, ..., "by_joint"}``: means over
    the rows and joints (frame-weighted within each label)."""
    result = {"all": float(values.mean())}
    for grouping, rows in labels.items():
        result[f"by_{grouping}"] = metrics.summarize(values, rows, names)["by_action"]
    result["by_joint"] = dict(sorted(zip(names, values.mean(axis=0).tolist())))
    return result


def score(predictions_mm: list[np.ndarray], test: TestSet, seeds) -> tuple[dict, dict]:
    """Score each seed's (n, J, 3) predictions of the valid frames (root-relative mm, the test set's
    joint set): (the mean over seeds of every metric, the seed summary of :func:`lifting.evaluation.summarize_seeds`).

    The metrics: ``pck150_pct`` and ``auc_pct`` (%, on :func:`lifting.evaluation.pck_joints`) and
    ``mpjpe_mm`` (P1 on the run's joints), each as ``{"all", "by_scene", "by_sequence", "by_activity",
    "by_joint"}``, P1 ``all`` on the joints every method predicts under ``COMMON_JOINTS.name``, and
    ``num_frames``.
    """
    meta = test.meta[test.valid]
    sequence = meta["sequence"].to_numpy()
    scene_of = {s: scene for scene, sequences in SCENES.items() for s in sequences}
    labels = {"scene": np.array([scene_of[s] for s in sequence]), "sequence": sequence,
              "activity": meta["action"].to_numpy()}
    names = list(get_joint_set(test.joint_set).names)
    pck = pck_joints(test.joint_set)
    common = [names.index(name) for name in COMMON_JOINTS.names]
    targets = test.targets[test.valid]
    results = []
    for predicted in predictions_mm:
        errors = metrics.joint_errors_mpjpe(predicted, targets)
        results.append({
            "auc_pct": _grouped(metrics.joint_auc(errors[:, pck]), labels, [names[i] for i in pck]),
            "pck150_pct": _grouped(metrics.joint_pck(errors[:, pck]), labels, [names[i] for i in pck]),
            "mpjpe_mm": _grouped(errors, labels, names),
            COMMON_JOINTS.name: {"mpjpe_mm": {"all": float(errors[:, common].mean())}},
            "num_frames": len(targets)})
    per_seed = {"pck150": [r["pck150_pct"]["all"] for r in results], "auc": [r["auc_pct"]["all"] for r in results],
                "p1": [r["mpjpe_mm"]["all"] for r in results],
                f"p1_{COMMON_JOINTS.name}": [r[COMMON_JOINTS.name]["mpjpe_mm"]["all"] for r in results]}
    return summarize_seeds(results, per_seed, seeds)


def protocol(test: TestSet, trained_on: str, input2d: str, saved) -> dict:
    """The cross-dataset protocol of a metrics file (``saved``: the run's :class:`~lifting.run_file.RunFile`)."""
    record = saved.record
    return {
        "test_set": "MPI-INF-3DHP test set (TS1-TS6), zero-shot: the run never saw it",
        "trained_on": f"{trained_on} ({input2d} 2D)",
        "test_2d": "3DHP's ground-truth 2D (annot2), screen-normalised with each sequence's image size",
        "target_3d": "univ_annot3 (scaled to Human3.6M's universal skeleton), camera frame, root-relative at the "
                     "pelvis; 3DHP's joints as h36m17 (neck as Thorax, head top as Head, head centre in the Nose slot)",
        "frames": f"valid frames only (valid_frame = 1): {int(test.valid.sum())} of {len(test.valid)}",
        "scenes": {scene: list(sequences) for scene, sequences in SCENES.items()},
        "pck_auc": PCK_RULE,
        "p1": f"MPJPE on the run's joints ({test.joint_set}) and on {COMMON_JOINTS.name}, same frames",
        "joint_set": test.joint_set,
        "flip_test": saved.input_spec["flip_test"],
        "configuration_label": saved.configuration,
        "seeds": record.seeds,
        "checkpoint": record.checkpoint,
        "budget": record.budget,
    }
