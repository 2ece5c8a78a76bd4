import numpy as np
from scipy.spatial.transform import Rotation

from lifting import geometry
from lifting.data.h36m_cameras import CAMERA_IDS, h36m_cameras


def random_poses(n, seed=0):
    return np.random.default_rng(seed).normal(scale=300.0, size=(n, 17, 3))


def test_quaternion_rotation_matches_scipy():
    rng = np.random.default_rng(0)
    q_xyzw = Rotation.random(10, random_state=1).as_quat()
    q_wxyz = q_xyzw[:, [3, 0, 1, 2]]
    v = rng.normal(size=(10, 3))
    np.testing.assert_allclose(geometry.qrot(q_wxyz, v), Rotation.from_quat(q_xyzw).apply(v), atol=1e-12)
    np.testing.assert_allclose(geometry.quaternion_to_matrix(q_wxyz), Rotation.from_quat(q_xyzw).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(geometry.qrot(geometry.qinverse(q_wxyz), geometry.qrot(q_wxyz, v)), v, atol=1e-12)


def test_world_camera_round_trip_and_camera_centre():
    camera = h36m_cameras("S1")[0]
    world = random_poses(4) + np.array([0.0, 0.0, 900.0])
    np.testing.assert_allclose(camera.camera_to_world(camera.world_to_camera(world)), world, atol=1e-9)
    # The camera centre maps to the camera-frame origin.
    np.testing.assert_allclose(camera.world_to_camera(np.array(camera.translation)), 0.0, atol=1e-9)


def test_h36m_cameras_look_at_the_capture_volume():
    for subject in ("S1", "S9", "S11"):
        cameras = h36m_cameras(subject)
        assert [c.id for c in cameras] == list(CAMERA_IDS)
        for camera in cameras:
            centre = camera.world_to_camera(np.array([0.0, 0.0, 1000.0]))
            assert 3000 < centre[2] < 7000  # in front of the camera, metres away
            u, v = camera.project(centre)
            assert 0 < u < camera.width and 0 < v < camera.height


def test_projection_without_distortion_is_the_pinhole_model():
    points = np.array([[100.0, -50.0, 4000.0], [-300.0, 200.0, 5000.0]])
    pixels = geometry.project_to_2d(points, (1000.0, 1100.0), (500.0, 510.0), (0, 0, 0), (0, 0))
    expected = points[:, :2] / points[:, 2:] * np.array([1000.0, 1100.0]) + np.array([500.0, 510.0])
    np.testing.assert_allclose(pixels, expected, atol=1e-12)


def test_radial_distortion_moves_points_toward_the_centre_for_negative_k1():
    point = np.array([400.0, 300.0, 2000.0])
    plain = geometry.project_to_2d(point, (1000.0, 1000.0), (0.0, 0.0), (0, 0, 0), (0, 0))
    barrel = geometry.project_to_2d(point, (1000.0, 1000.0), (0.0, 0.0), (-0.2, 0, 0), (0, 0))
    r2 = (0.2**2 + 0.15**2)
    np.testing.assert_allclose(barrel, plain * (1 - 0.2 * r2), atol=1e-9)


def test_screen_normalisation_round_trip():
    pixels = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]])
    normalised = geometry.normalize_screen_coordinates(pixels, 1000, 1002)
    np.testing.assert_allclose(normalised[0], [-1.0, -1.002])
    np.testing.assert_allclose(normalised[1], [1.0, 1.002])
    np.testing.assert_allclose(geometry.image_coordinates(normalised, 1000, 1002), pixels)


def test_procrustes_undoes_a_similarity_transform():
    target = random_poses(8, seed=3)
    rotation = Rotation.random(8, random_state=4).as_matrix()
    moved = 1.7 * np.einsum("nij,nkj->nki", rotation, target) + np.array([10.0, -20.0, 300.0])
    aligned = geometry.similarity_procrustes(moved, target)
    np.testing.assert_allclose(aligned, target, atol=1e-8)


def test_procrustes_does_not_undo_a_reflection():
    target = random_poses(5, seed=5)
    mirrored = target * np.array([-1.0, 1.0, 1.0])
    aligned = geometry.similarity_procrustes(mirrored, target)
    assert np.linalg.norm(aligned - target, axis=-1).mean() > 10.0
    # ... and the result is still a proper-rotation image of the input (distances scale uniformly).
    d_in = np.linalg.norm(mirrored[:, 0] - mirrored[:, 1], axis=-1)
    d_out = np.linalg.norm(aligned[:, 0] - aligned[:, 1], axis=-1)
    ratio = d_out / d_in
    d_in2 = np.linalg.norm(mirrored[:, 2] - mirrored[:, 5], axis=-1)
    d_out2 = np.linalg.norm(aligned[:, 2] - aligned[:, 5], axis=-1)
    np.testing.assert_allclose(d_out2 / d_in2, ratio, rtol=1e-9)


def test_procrustes_matches_scipy_orthogonal_procrustes_on_noisy_poses():
    from scipy.linalg import orthogonal_procrustes

    rng = np.random.default_rng(6)
    target = random_poses(6, seed=7)
    predicted = target + rng.normal(scale=40.0, size=target.shape)
    aligned = geometry.similarity_procrustes(predicted, target)
    for p, t, a in zip(predicted, target, aligned):
        p0, t0 = p - p.mean(0), t - t.mean(0)
        rotation, _ = orthogonal_procrustes(p0, t0)
        assert np.linalg.det(rotation) > 0
        scale = np.trace((p0 @ rotation).T @ t0) / np.sum(p0**2)
        np.testing.assert_allclose(a, scale * p0 @ rotation + t.mean(0), atol=1e-8)
