"""Joint sets, their kinematic trees and the converters between them.

A pose array has shape ``(..., J, D)``; ``J`` is the joint count of its joint set and ``D`` is
2 (pixels or normalised screen units) or 3 (millimetres unless a name says otherwise).

Joint sets:

* ``h36m17``: the 17-joint Human3.6M layout of VideoPose3D, MMPose and every target method
  (methods.md §1.1), root = index 0 (pelvis).
* ``h36m16``: ``h36m17`` without joint 9 (Neck/Nose), as used by the Martinez/SemGCN/
  Modulated-GCN GT lineage (the Stacked-Hourglass detector has no nose).
* ``coco17``: the COCO keypoints of 2D detectors (no pelvis, spine or thorax).
* ``h36m32``: the raw 32-joint Human3.6M mocap skeleton (only used to read raw files).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JointSet:
    """A named joint layout: names, parent of each joint (-1 for the root) and mirror pairs."""

    name: str
    names: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) pairs, one per non-root joint."""
        return tuple((child, parent) for child, parent in enumerate(self.parents) if parent >= 0)

    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps every left joint with its right twin: ``pose[..., perm, :]``."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm

    def index(self, joint_name: str) -> int:
        return self.names.index(joint_name)


H36M17 = JointSet(
    name="h36m17",
    names=("Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax",
           "Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist"),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
)

H36M16 = JointSet(
    name="h36m16",
    names=tuple(n for n in H36M17.names if n != "Nose"),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14),
    left=(4, 5, 6, 10, 11, 12),
    right=(1, 2, 3, 13, 14, 15),
)

#: The joints every method predicts (SemGCN and Modulated GCN predict 16, the rest 17: the nose
#: is the difference). Runs are ranked on these (``metrics["h36m16"]`` of every metrics file),
#: beside each run's score on its own joints: dropping the nose moves a 17-joint P1 by -0.65 to
#: +0.72 mm, enough to swap two runs.
COMMON_JOINTS = H36M16

COCO17 = JointSet(
    name="coco17",
    names=("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
           "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
           "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"),
    # A tree rooted at the nose, for drawing: face, shoulders from the nose, limbs from those.
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    left=(1, 3, 5, 7, 9, 11, 13, 15),
    right=(2, 4, 6, 8, 10, 12, 14, 16),
)

#: The 17 of the 32 raw Human3.6M mocap joints that move independently, in h36m17 order.
H36M32_TO_H36M17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

JOINT_SETS: dict[str, JointSet] = {js.name: js for js in (H36M17, H36M16, COCO17)}


def get_joint_set(name: str) -> JointSet:
    """Look a joint set up by name; an unknown name lists the known ones."""
    try:
        return JOINT_SETS[name]
    except KeyError:
        raise ValueError(f"unknown joint set {name!r}; known: {sorted(JOINT_SETS)}") from None


def _check_joints(poses: np.ndarray, expected: int, what: str) -> None:
    if poses.shape[-2] != expected:
        raise ValueError(f"{what} expects {expected} joints on axis -2, got shape {poses.shape}")


def h36m32_to_h36m17(poses: np.ndarray) -> np.ndarray:
    """(..., 32, D) raw mocap joints -> (..., 17, D) h36m17."""
    _check_joints(poses, 32, "h36m32_to_h36m17")
    return poses[..., list(H36M32_TO_H36M17), :]


def h36m17_to_h36m16(poses: np.ndarray) -> np.ndarray:
    """(..., 17, D) -> (..., 16, D): drop joint 9 (Neck/Nose)."""
    _check_joints(poses, 17, "h36m17_to_h36m16")
    keep = [i for i in range(17) if i != H36M17.index("Nose")]
    return poses[..., keep, :]


def h36m16_to_h36m17(poses: np.ndarray) -> np.ndarray:
    """(..., 16, D) -> (..., 17, D): re-insert Nose as the Thorax-Head midpoint.

    The nose is not observed in 16-joint data, so this is an estimate; use it only to draw or to
    feed a 17-joint model, never to score the nose.
    """
    _check_joints(poses, 16, "h36m16_to_h36m17")
    thorax, head = poses[..., 8, :], poses[..., 9, :]
    nose = 0.5 * (thorax + head)
    return np.concatenate([poses[..., :9, :], nose[..., None, :], poses[..., 9:, :]], axis=-2)


def coco17_to_h36m17(poses: np.ndarray) -> np.ndarray:
    """(..., 17, D) COCO keypoints -> (..., 17, D) h36m17.

    As MMPose maps them (methods.md §12): pelvis = hip midpoint, thorax = shoulder midpoint,
    spine = pelvis-thorax midpoint, nose = COCO nose, head = eye midpoint (COCO has no head-top
    keypoint). COCO's hips sit higher on the body than Human3.6M's hip joints.
    """
    _check_joints(poses, 17, "coco17_to_h36m17")
    c = {name: poses[..., i, :] for i, name in enumerate(COCO17.names)}
    pelvis = 0.5 * (c["left_hip"] + c["right_hip"])
    thorax = 0.5 * (c["left_shoulder"] + c["right_shoulder"])
    joints = [
        pelvis, c["right_hip"], c["right_knee"], c["right_ankle"],
        c["left_hip"], c["left_knee"], c["left_ankle"],
        0.5 * (pelvis + thorax), thorax, c["nose"], 0.5 * (c["left_eye"] + c["right_eye"]),
        c["left_shoulder"], c["left_elbow"], c["left_wrist"],
        c["right_shoulder"], c["right_elbow"], c["right_wrist"],
    ]
    return np.stack(joints, axis=-2)


def bone_lengths(poses: np.ndarray, joint_set: JointSet = H36M17) -> np.ndarray:
    """(..., J, 3) -> (..., J-1): length of every (child, parent) bone, same unit as the input."""
    _check_joints(poses, joint_set.num_joints, "bone_lengths")
    child, parent = (list(ix) for ix in zip(*joint_set.bones))
    return np.linalg.norm(poses[..., child, :] - poses[..., parent, :], axis=-1)
