"""The canonical body: HGN's markers estimated from the 17 joints (Human3.6M without SMPL fits)."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from lifting.data import deepmimic
from lifting.data.embedded import subject_performance
from lifting.data.schema import poses_to_frame
from lifting.data.surface.markers import POSED_BY_JOINTS, pose_markers, surface_hierarchy
from lifting.data.surface.markers_from_joints import (LINK_JOINT, calibration, estimated_frames, markers_from_joints,
                                              markers_table)
from lifting.skeleton import H36M17


@pytest.fixture(scope="module")
def hierarchy():
    return surface_hierarchy()


def performed(clip_name: str, subject: str):
    """A subject's performance of a DeepMimic clip: its joints (T, 17, 3) m and exact markers."""
    clip = deepmimic.read_clip(deepmimic.motion_dir() / deepmimic.CLIP_FILES[clip_name], clip_name)
    clip, body, _ = subject_performance(clip, subject)
    return clip, body


def test_the_calibration_makes_the_estimate_exact_on_a_bent_pose():
    """On any pose with bent knees and elbows the link frames follow from the joints exactly."""
    rng = np.random.default_rng(0)
    rotations = {name: Rotation.random(1, random_state=rng).as_quat()
                 for name in ["root", "chest", "neck"]}
    rotations.update({name: Rotation.from_rotvec(rng.uniform(-0.6, 0.6, (1, 3))).as_quat()
                      for name, joint in deepmimic.HUMANOID.items()
                      if joint.kind == deepmimic.SPHERICAL and name not in rotations})
    angles = {name: np.array([-1.3 if "knee" in name else 0.7]) for name, joint in deepmimic.HUMANOID.items()
              if joint.kind == deepmimic.REVOLUTE}
    clip = deepmimic.Clip("random", np.zeros(1), np.zeros((1, 3)), rotations, angles)
    scale = {segment: 1.0 for segment in deepmimic.SEGMENTS}
    _, true_frames = deepmimic.link_frames(clip, scale)
    estimate = estimated_frames(deepmimic.forward_kinematics(clip, scale))
    correction = calibration()
    # every link but the feet, which take the shin's frame (the ankles were rotated at random)
    for link in LINK_JOINT:
        if link.endswith("ankle"):
            continue
        assert np.allclose(estimate[link][0] @ correction[link], true_frames[link].as_matrix()[0], atol=1e-9), link


@pytest.mark.parametrize("clip_name, subject", [("walk", "S1"), ("cartwheel", "S9"), ("dance_a", "S11")])
def test_markers_from_joints_match_the_mocap_markers(hierarchy, clip_name, subject):
    """On the embedded data, where the rotations give the exact markers, the joints alone come
    within a few mm on average (the feet's rotation and straight limbs' twist are not observable)."""
    clip, body = performed(clip_name, subject)
    exact = pose_markers(hierarchy, clip, body)
    estimate = markers_from_joints(hierarchy, deepmimic.forward_kinematics(clip, body))
    error_mm = np.linalg.norm(estimate - exact, axis=-1) * 1000.0
    assert error_mm.mean() < 6.0, error_mm.mean()
    assert np.percentile(error_mm, 95) < 35.0, np.percentile(error_mm, 95)


def test_markers_move_with_the_joints_frame_and_scale_with_the_bones(hierarchy):
    clip, body = performed("walk", "S5")
    joints = deepmimic.forward_kinematics(clip, body)[:20]
    markers = markers_from_joints(hierarchy, joints)
    turn = Rotation.from_euler("xyz", [0.3, -1.2, 2.0])
    moved = markers_from_joints(hierarchy, turn.apply(joints.reshape(-1, 3)).reshape(joints.shape) + [1.0, 2.0, 3.0])
    assert np.allclose(moved, turn.apply(markers.reshape(-1, 3)).reshape(markers.shape) + [1.0, 2.0, 3.0], atol=1e-9)
    # a body twice the size (every bone doubled) has its markers twice as far from the root,
    # except the feet and hands, which keep their size (as on the embedded subjects)
    doubled = markers_from_joints(hierarchy, 2.0 * joints)
    body_links = [k for k, link in enumerate(hierarchy.links) if not str(link).endswith(("ankle", "wrist"))]
    only_body = hierarchy.share[:, body_links].sum(axis=1) > 0.999
    assert only_body.sum() > 50
    assert np.allclose(doubled[:, only_body], 2.0 * markers[:, only_body], atol=1e-9)


def test_markers_need_17_joints(hierarchy):
    with pytest.raises(ValueError, match=r"\(T, 17, 3\)"):
        markers_from_joints(hierarchy, np.zeros((4, 16, 3)))


def test_the_markers_table_covers_every_row_and_says_how_it_was_posed(hierarchy):
    clip, body = performed("run", "S7")
    joints_mm = deepmimic.forward_kinematics(clip, body) * 1000.0
    keys = pd.DataFrame({"subject": "S7", "action": "Walking", "sequence": "run", "frame": np.arange(len(joints_mm))})
    poses3d = pd.concat([keys, poses_to_frame(joints_mm, H36M17, "xyz")], axis=1)
    table, surface = markers_table(poses3d)
    assert surface.posed_by == POSED_BY_JOINTS and "canonical body" in surface.description
    assert len(table) == len(poses3d) and table["frame"].tolist() == poses3d["frame"].tolist()
    values = table[hierarchy.marker_columns()].to_numpy(np.float64).reshape(len(table), -1, 3)
    exact_mm = pose_markers(hierarchy, clip, body) * 1000.0
    assert np.abs(values - exact_mm).mean() < 6.0
