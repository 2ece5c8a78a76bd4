"""HGN's body-surface markers from the 17 joints alone: the canonical body of sources without rotations.

On the embedded data the markers are posed by the mocap's own joint rotations
(:func:`lifting.data.surface.markers.pose_markers`). Human3.6M (without user-supplied SMPL fits) gives
joint positions only, so here each link's frame is estimated from the joints: origin at its
joint, first axis along its bone, second axis from a reference direction, then a constant
per-link rotation maps that estimate onto the link's own frame (found once on a calibration pose
of the DeepMimic body, with bent knees and elbows, where the estimate is exact)::

    link               bone                    reference (second axis)
    root (pelvis)      Hip -> Spine            RHip -> LHip
    chest              Spine -> Thorax         RShoulder -> LShoulder
    neck (head)        Thorax -> Head          Thorax -> Nose
    hip (thigh)        Hip -> Knee             knee hinge: thigh x shin (straight leg: RHip -> LHip)
    knee (shin)        Knee -> Foot            the same hinge axis
    ankle (foot)       the shin's frame        (the ankle's rotation is not observable)
    shoulder (arm)     Shoulder -> Elbow       elbow hinge: arm x forearm (straight arm: LShoulder -> RShoulder)
    elbow (forearm)    Elbow -> Wrist          the same hinge axis
    wrist (hand)       the forearm's frame     (the wrist is fixed on the DeepMimic body)

The knees and elbows of the DeepMimic body are hinges, so a bent limb's plane gives its twist
exactly; as a limb straightens (bend below :data:`STRAIGHT_SIN`) the reference blends into the
side direction. Each link's surface is scaled like its segment (:data:`lifting.data.surface.body.LINK_SEGMENT`),
by the ratio of the frame's bone length to the body's, as the embedded subjects' segments are.
On the embedded data (where the exact markers are known) the estimate is off by the feet's
unobserved rotation and straight limbs' twist: ``tests/data/surface/test_markers_from_joints.py`` pins
the mean error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lifting.data import deepmimic
from lifting.data.schema import POSES3D_KEYS, poses_from_frame
from lifting.data.surface.body import LINK_SEGMENT
from lifting.data.surface.graph import SurfaceGraph
from lifting.data.surface.markers import POSED_BY_JOINTS, SurfaceHierarchy, surface_hierarchy
from lifting.skeleton import H36M17

#: Sine of the knee/elbow bend below which the hinge axis blends into the side direction.
STRAIGHT_SIN = 0.25
#: The calibration pose's knee and elbow angles (radians): bent, within the hinges' ranges.
CALIBRATION_ANGLES = {"knee": -1.0, "elbow": 1.0}

_J = {name: H36M17.index(name) for name in H36M17.names}

#: Each link's joint (its origin) in h36m17.
LINK_JOINT = {"root": "Hip", "chest": "Spine", "neck": "Thorax",
              "right_hip": "RHip", "right_knee": "RKnee", "right_ankle": "RFoot",
              "left_hip": "LHip", "left_knee": "LKnee", "left_ankle": "LFoot",
              "right_shoulder": "RShoulder", "right_elbow": "RElbow", "right_wrist": "RWrist",
              "left_shoulder": "LShoulder", "left_elbow": "LElbow", "left_wrist": "LWrist"}

#: The segment lengths the body's joints give: segment -> (from joint, to joint, the body's length in m).
SEGMENT_BONES = {
    "pelvis": ("RHip", "LHip", 2 * deepmimic.HUMANOID["right_hip"].offset[2]),
    "spine": ("Hip", "Spine", deepmimic.HUMANOID["chest"].offset[1]),
    "head": ("Thorax", "Head", deepmimic.HEAD_OFFSET[1]),
    "thigh": ("RHip", "RKnee", -deepmimic.HUMANOID["right_knee"].offset[1]),
    "shin": ("RKnee", "RFoot", -deepmimic.HUMANOID["right_ankle"].offset[1]),
    "upper_arm": ("RShoulder", "RElbow", -deepmimic.HUMANOID["right_elbow"].offset[1]),
    "forearm": ("RElbow", "RWrist", -deepmimic.HUMANOID["right_wrist"].offset[1]),
}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _frame(bone: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(T, 3, 3) orthonormal frames, columns: the bone, the reference made orthogonal, their cross."""
    e1 = _unit(bone)
    e2 = _unit(reference - np.sum(reference * e1, axis=-1, keepdims=True) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


def _hinge_reference(upper: np.ndarray, lower: np.ndarray, side: np.ndarray) -> np.ndarray:
    """(T, 3) the hinge axis of a bent limb, blending into ``side`` as the limb straightens."""
    axis = np.cross(_unit(upper), _unit(lower))
    weight = np.clip(np.linalg.norm(axis, axis=-1, keepdims=True) / STRAIGHT_SIN, 0.0, 1.0)
    return weight * _unit(axis) + (1.0 - weight) * _unit(side)


def estimated_frames(joints: np.ndarray) -> dict[str, np.ndarray]:
    """Each link's estimated frame ((T, 3, 3), before the calibration) from (T, 17, 3) h36m17 joints."""
    p = {name: joints[:, k] for name, k in _J.items()}
    hips, shoulders = p["LHip"] - p["RHip"], p["RShoulder"] - p["LShoulder"]
    frames = {"root": _frame(p["Spine"] - p["Hip"], hips),
              "chest": _frame(p["Thorax"] - p["Spine"], -shoulders),
              "neck": _frame(p["Head"] - p["Thorax"], p["Nose"] - p["Thorax"])}
    for side, s in (("right", "R"), ("left", "L")):
        thigh, shin = p[f"{s}Knee"] - p[f"{s}Hip"], p[f"{s}Foot"] - p[f"{s}Knee"]
        knee_axis = _hinge_reference(thigh, shin, hips)
        frames[f"{side}_hip"] = _frame(thigh, knee_axis)
        frames[f"{side}_knee"] = frames[f"{side}_ankle"] = _frame(shin, knee_axis)
        arm, forearm = p[f"{s}Elbow"] - p[f"{s}Shoulder"], p[f"{s}Wrist"] - p[f"{s}Elbow"]
        elbow_axis = _hinge_reference(arm, forearm, shoulders)
        frames[f"{side}_shoulder"] = _frame(arm, elbow_axis)
        frames[f"{side}_elbow"] = frames[f"{side}_wrist"] = _frame(forearm, elbow_axis)
    return frames


def calibration() -> dict[str, np.ndarray]:
    """Per link, the (3, 3) rotation from its estimated frame to its own, on the calibration pose."""
    identity = np.array([[0.0, 0.0, 0.0, 1.0]])
    angles = {name: np.array([CALIBRATION_ANGLES["knee" if "knee" in name else "elbow"]])
              for name, joint in deepmimic.HUMANOID.items() if joint.kind == deepmimic.REVOLUTE}
    clip = deepmimic.Clip("calibration", np.zeros(1), np.zeros((1, 3)),
                          {name: identity for name in ["root", *deepmimic.HUMANOID]}, angles)
    scale = {segment: 1.0 for segment in deepmimic.SEGMENTS}
    _, true_frames = deepmimic.link_frames(clip, scale)
    estimate = estimated_frames(deepmimic.forward_kinematics(clip, scale))
    return {link: estimate[link][0].T @ true_frames[link].as_matrix()[0] for link in LINK_JOINT}


def segment_scales(joints: np.ndarray) -> dict[str, np.ndarray]:
    """(T,) length factor of each segment of :data:`SEGMENT_BONES` against the DeepMimic body."""
    return {segment: np.linalg.norm(joints[:, _J[b]] - joints[:, _J[a]], axis=-1) / length
            for segment, (a, b, length) in SEGMENT_BONES.items()}


def markers_from_joints(hierarchy: SurfaceHierarchy, joints_m: np.ndarray,
                        links_calibration: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(T, M, 3) marker positions (metres) from (T, 17, 3) h36m17 joint positions in metres, in
    the joints' frame (any orientation: the frames come from the joints)."""
    joints = np.asarray(joints_m, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (H36M17.num_joints, 3):
        raise ValueError(f"expected (T, 17, 3) h36m17 joints, got {joints.shape}")
    correction = links_calibration if links_calibration is not None else calibration()
    frames = estimated_frames(joints)
    scales = segment_scales(joints)
    markers = np.zeros((len(joints), hierarchy.num_markers, 3))
    for k, link in enumerate(hierarchy.links):
        link = str(link)
        rotation = frames[link] @ correction[link]  # (T, 3, 3)
        segment = LINK_SEGMENT.get(link)
        factor = scales[segment] if segment else np.ones(len(joints))
        origin = joints[:, _J[LINK_JOINT[link]]]
        markers += hierarchy.share[None, :, k, None] * origin[:, None, :]
        markers += np.einsum("tij,mj->tmi", rotation, hierarchy.local[:, k]) * factor[:, None, None]
    return markers



def markers_table(poses3d: pd.DataFrame) -> tuple[pd.DataFrame, SurfaceGraph]:
    """The canonical body's markers for every row of a poses3d table (world mm, the store's
    layout: POSES3D_KEYS + marker columns, float32), and their graph; one sequence at a time."""
    hierarchy = surface_hierarchy()
    correction = calibration()
    columns = hierarchy.marker_columns()
    parts = []
    for _, rows in poses3d.groupby(["subject", "sequence"], sort=False):
        joints_m = poses_from_frame(rows, H36M17, "xyz").astype(np.float64) / 1000.0
        on_surface = (markers_from_joints(hierarchy, joints_m, correction) * 1000.0).astype(np.float32)
        parts.append(pd.concat([rows[list(POSES3D_KEYS)].reset_index(drop=True),
                                pd.DataFrame(on_surface.reshape(len(rows), -1), columns=columns)], axis=1))
    return pd.concat(parts, ignore_index=True), hierarchy.graph(POSED_BY_JOINTS)
