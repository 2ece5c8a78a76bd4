import numpy as np
import pytest

from lifting import skeleton
from lifting.skeleton import COCO17, H36M16, H36M17


def test_joint_sets_are_trees_with_mirror_pairs():
    for joint_set in (H36M17, H36M16, COCO17):
        assert len(joint_set.parents) == joint_set.num_joints
        assert joint_set.parents.count(-1) == 1
        assert all(p < c for c, p in joint_set.bones)  # parents come first
        assert len(joint_set.left) == len(joint_set.right)
        perm = joint_set.flip_permutation()
        assert sorted(perm) == list(range(joint_set.num_joints))
        assert np.array_equal(perm[perm], np.arange(joint_set.num_joints))


def test_h36m16_drops_the_nose_and_rewires_parents_by_name():
    poses = np.random.default_rng(0).normal(size=(5, 17, 3))
    reduced = skeleton.h36m17_to_h36m16(poses)
    assert reduced.shape == (5, 16, 3)
    assert H36M16.names == tuple(n for n in H36M17.names if n != "Nose")
    np.testing.assert_array_equal(reduced[:, H36M16.index("Head")], poses[:, H36M17.index("Head")])
    for child, parent in H36M16.bones:
        name = H36M16.names[child]
        expected_parent = "Thorax" if name == "Head" else H36M17.names[H36M17.parents[H36M17.index(name)]]
        assert H36M16.names[parent] == expected_parent


def test_h36m16_to_17_restores_every_observed_joint():
    poses = np.random.default_rng(1).normal(size=(4, 17, 2))
    back = skeleton.h36m16_to_h36m17(skeleton.h36m17_to_h36m16(poses))
    observed = [i for i in range(17) if i != 9]
    np.testing.assert_array_equal(back[:, observed], poses[:, observed])
    np.testing.assert_allclose(back[:, 9], 0.5 * (poses[:, 8] + poses[:, 10]))


def test_h36m32_selection_uses_the_documented_indices():
    poses = np.arange(32 * 3, dtype=float).reshape(1, 32, 3)
    reduced = skeleton.h36m32_to_h36m17(poses)
    np.testing.assert_array_equal(reduced[0, :, 0], np.array(skeleton.H36M32_TO_H36M17) * 3)


def test_coco_to_h36m_builds_pelvis_and_thorax_from_midpoints():
    coco = np.random.default_rng(2).normal(size=(3, 17, 2))
    h36m = skeleton.coco17_to_h36m17(coco)
    pelvis = 0.5 * (coco[:, COCO17.index("left_hip")] + coco[:, COCO17.index("right_hip")])
    thorax = 0.5 * (coco[:, COCO17.index("left_shoulder")] + coco[:, COCO17.index("right_shoulder")])
    np.testing.assert_allclose(h36m[:, 0], pelvis)
    np.testing.assert_allclose(h36m[:, 8], thorax)
    np.testing.assert_allclose(h36m[:, 7], 0.5 * (pelvis + thorax))
    np.testing.assert_array_equal(h36m[:, H36M17.index("LWrist")], coco[:, COCO17.index("left_wrist")])
    # the head is the eyes' midpoint, as MMPose maps it (COCO has no head top); the nose is the nose
    eyes = 0.5 * (coco[:, COCO17.index("left_eye")] + coco[:, COCO17.index("right_eye")])
    np.testing.assert_allclose(h36m[:, H36M17.index("Head")], eyes)
    np.testing.assert_array_equal(h36m[:, H36M17.index("Nose")], coco[:, COCO17.index("nose")])


def test_wrong_joint_count_is_refused():
    with pytest.raises(ValueError, match="17 joints"):
        skeleton.h36m17_to_h36m16(np.zeros((2, 16, 3)))
    with pytest.raises(ValueError, match="unknown joint set"):
        skeleton.get_joint_set("mpii")


def test_bone_lengths_of_a_known_pose():
    pose = np.zeros((17, 3))
    pose[1] = [3.0, 4.0, 0.0]  # RHip 5 from the pelvis
    lengths = skeleton.bone_lengths(pose)
    assert lengths[0] == pytest.approx(5.0)
