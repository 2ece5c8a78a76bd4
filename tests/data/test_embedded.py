"""Checks of the embedded dataset: anatomy, ground, cameras, variation between subjects, noise."""

import numpy as np
import pytest

from lifting.data import deepmimic, embedded
from lifting.data.h36m_cameras import h36m_cameras
from lifting.data.schema import cameras_from_frame, poses_from_frame
from lifting.geometry import similarity_procrustes
from lifting.skeleton import H36M17, bone_lengths

ALL_SUBJECTS = embedded.TRAIN_SUBJECTS + embedded.TEST_SUBJECTS


def world_poses(tables, **where):
    rows = np.ones(len(tables.poses3d), bool)
    for column, value in where.items():
        rows &= (tables.poses3d[column] == value).to_numpy()
    return poses_from_frame(tables.poses3d[rows], H36M17, "xyz")


def test_every_subject_performs_every_clip(embedded_tables):
    counts = embedded_tables.poses3d.groupby(["subject", "sequence"]).size()
    assert len(counts) == len(ALL_SUBJECTS) * len(deepmimic.CLIP_FILES)
    assert embedded_tables.poses3d["action"].nunique() >= 10
    per_subject = embedded_tables.poses3d.groupby("subject").size()
    assert per_subject.between(1800, 2300).all(), per_subject  # ~40 s at 50 fps, time-warped


def test_bone_lengths_are_constant_per_subject_and_differ_between_subjects(embedded_tables):
    means = {}
    for subject in ALL_SUBJECTS:
        lengths = bone_lengths(world_poses(embedded_tables, subject=subject))
        assert lengths.std(axis=0).max() < 0.01  # mm: rigid bones, float32 storage
        means[subject] = lengths.mean(axis=0)
    thigh = H36M17.index("RKnee") - 1
    assert max(m[thigh] for m in means.values()) / min(m[thigh] for m in means.values()) > 1.15


def test_statures_span_the_documented_range():
    statures = {s: deepmimic.stature(embedded.subject_body(s)) for s in ALL_SUBJECTS}
    assert 1.53 < min(statures.values()) < 1.60
    assert 1.85 < max(statures.values()) < 1.92
    train = [statures[s] for s in embedded.TRAIN_SUBJECTS]
    assert all(min(train) < statures[s] < max(train) for s in embedded.TEST_SUBJECTS)


def test_feet_are_on_the_ground(embedded_tables):
    for subject in ("S5", "S8"):
        sole_mm = 1000 * deepmimic.SOLE_BELOW_ANKLE * embedded.subject_body(subject)["shin"]
        for clip in ("walk", "run", "crawl"):
            feet_z = world_poses(embedded_tables, subject=subject, sequence=clip)[:, [3, 6], 2]
            lowest = feet_z.min(axis=1) - sole_mm  # height of the lower sole above the floor, per frame
            assert lowest.min() == pytest.approx(0.0, abs=0.5)
            if clip == "walk":  # a walker always has a foot close to the floor
                assert np.median(lowest) < 40.0


def test_almost_all_joints_fall_inside_the_image(embedded_tables):
    gt = embedded_tables.poses2d[embedded_tables.poses2d["source"] == "gt"]
    cameras = cameras_from_frame(embedded_tables.cameras)
    pixels = poses_from_frame(gt, H36M17, "uv")
    width = gt["camera"].map({c: cam.width for (_, c), cam in cameras.items()}).to_numpy()[:, None]
    height = gt["camera"].map({c: cam.height for (_, c), cam in cameras.items()}).to_numpy()[:, None]
    inside = (pixels[..., 0] >= 0) & (pixels[..., 0] < width) & (pixels[..., 1] >= 0) & (pixels[..., 1] < height)
    assert inside.mean() >= 0.99


def test_reprojecting_the_stored_3d_reproduces_the_gt_2d(embedded_tables):
    p3 = embedded_tables.poses3d
    p2 = embedded_tables.poses2d
    for subject in ("S1", "S11"):
        for camera in h36m_cameras(subject):
            rows3 = (p3["subject"] == subject).to_numpy()
            rows2 = ((p2["subject"] == subject) & (p2["camera"] == camera.id) & (p2["source"] == "gt")).to_numpy()
            assert (p3.loc[rows3, ["sequence", "frame"]].to_numpy() == p2.loc[rows2, ["sequence", "frame"]].to_numpy()).all()
            world = poses_from_frame(p3[rows3], H36M17, "xyz").astype(np.float64)
            stored = poses_from_frame(p2[rows2], H36M17, "uv")
            reprojected = camera.project(camera.world_to_camera(world))
            assert np.abs(reprojected - stored).max() < 1e-3


def test_test_subjects_perform_differently_from_training_subjects(embedded_tables):
    """The same clip by a test subject is a new performance, not a copy on another body."""
    rng = np.random.default_rng(0)
    distances = []
    for clip in ("walk", "punch", "dance_a"):
        library = np.concatenate([world_poses(embedded_tables, subject=s, sequence=clip) for s in embedded.TRAIN_SUBJECTS])
        library = library - library[:, :1]
        test = world_poses(embedded_tables, subject="S9", sequence=clip)
        for pose in test[rng.choice(len(test), 10, replace=False)]:
            pose = pose - pose[:1]
            aligned = similarity_procrustes(library, np.broadcast_to(pose, library.shape))
            distances.append(np.linalg.norm(aligned - pose, axis=-1).mean(axis=-1).min())
    assert np.mean(distances) > 15.0  # mm; exact copies would be ~5 mm apart (bone lengths only)


def test_noisy_source_follows_the_documented_error_model(embedded_tables):
    p2 = embedded_tables.poses2d
    gt = poses_from_frame(p2[p2["source"] == "gt"], H36M17, "uv")
    noisy = poses_from_frame(p2[p2["source"] == "noisy"], H36M17, "uv")
    error = np.linalg.norm(noisy - gt, axis=-1)
    assert 5.0 < error.mean() < 10.0
    assert 20.0 < np.percentile(error, 99) < 50.0
    by_joint = error.mean(axis=0)
    assert by_joint[H36M17.index("RWrist")] > by_joint[H36M17.index("Hip")]


def test_build_is_deterministic():
    a = embedded.build_embedded(deepmimic.motion_dir(), subjects=("S7",), clips=("kick",))
    b = embedded.build_embedded(deepmimic.motion_dir(), subjects=("S7",), clips=("kick",))
    assert a.poses3d.equals(b.poses3d) and a.poses2d.equals(b.poses2d)


def test_a_corrupt_clip_is_reported_with_its_path(tmp_path):
    bad = tmp_path / "humanoid3d_walk.txt"
    bad.write_text('{"Frames": [[1, 2, 3]]}')
    with pytest.raises(ValueError, match="humanoid3d_walk.txt.*Fix"):
        deepmimic.read_clip(bad, "walk")
