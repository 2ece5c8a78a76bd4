"""Nearest-neighbour pose lookup: exact hits, invariance of the 2D matching, averaging."""

from __future__ import annotations

import numpy as np
import pytest

from lifting.models import knn


@pytest.fixture
def library():
    rng = np.random.default_rng(0)
    poses_2d = rng.normal(size=(20, 17, 2))
    poses_3d = rng.normal(scale=300.0, size=(20, 17, 3))
    poses_3d -= poses_3d[:, :1]
    return poses_2d, poses_3d


def test_exact_query_returns_its_library_pose(library):
    poses_2d, poses_3d = library
    model = knn.KNNLifter(knn.Config(k=1)).fit(poses_2d, poses_3d)
    np.testing.assert_array_equal(model.predict(poses_2d[[3, 7]]), poses_3d[[3, 7]])


def test_distance_weights_return_an_exact_hit_unchanged(library):
    poses_2d, poses_3d = library
    model = knn.build(knn.Config(k=5, weights="distance"), 17).fit(poses_2d, poses_3d)
    np.testing.assert_allclose(model.predict(poses_2d[[4]]), poses_3d[[4]], rtol=0, atol=1e-9)


def test_matching_is_scale_and_translation_invariant(library):
    poses_2d, poses_3d = library
    model = knn.KNNLifter(knn.Config(k=1)).fit(poses_2d, poses_3d)
    query = 3.7 * poses_2d[[11]] + np.array([250.0, -40.0])
    np.testing.assert_array_equal(model.predict(query), poses_3d[[11]])
    np.testing.assert_allclose(knn.normalize_2d(query), knn.normalize_2d(poses_2d[[11]]),
                               atol=1e-12)


def test_uniform_k_neighbours_give_their_mean():
    # Library: one base pose and small 2D perturbations of it at known, increasing distances.
    rng = np.random.default_rng(1)
    base = rng.normal(size=(17, 2))
    base -= base[:1]
    base /= np.sqrt(np.mean(np.sum(base**2, -1)))
    direction = rng.normal(size=(17, 2))
    direction[0] = 0.0
    poses_2d = np.stack([base + eps * direction for eps in (0.0, 0.01, 0.02, 0.5, 0.6)])
    poses_3d = np.zeros((5, 17, 3))
    poses_3d[:, 1:, 0] = np.array([10.0, 20.0, 30.0, 1000.0, 2000.0])[:, None]
    model = knn.KNNLifter(knn.Config(k=3, weights="uniform")).fit(poses_2d, poses_3d)
    pred = model.predict(base[None])
    assert pred[0, 1:, 0] == pytest.approx(np.full(16, 20.0))
    assert np.all(pred[0, :, 1:] == 0) and np.all(pred[0, 0] == 0)


def test_distance_weighted_mean_matches_hand_computation(library):
    poses_2d, poses_3d = library
    query = poses_2d[[0]] + 0.3 * np.random.default_rng(2).normal(size=(1, 17, 2))
    model = knn.KNNLifter(knn.Config(k=4, weights="distance")).fit(poses_2d, poses_3d)
    dist = np.linalg.norm(knn.normalize_2d(poses_2d) - knn.normalize_2d(query), axis=1)
    nearest = np.argsort(dist)[:4]
    w = 1.0 / dist[nearest]
    expected = np.tensordot(w / w.sum(), poses_3d[nearest], axes=1)
    np.testing.assert_allclose(model.predict(query)[0], expected, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_and_dtypes(library, dtype):
    poses_2d, poses_3d = library
    model = knn.KNNLifter().fit(poses_2d.astype(np.float32), poses_3d.astype(dtype))
    pred = model.predict(poses_2d[:6].astype(np.float32), chunk=4)
    assert pred.shape == (6, 17, 3) and pred.dtype == dtype
    assert knn.PAPER_SCHEDULE is None and knn.INPUT_SPEC.joint_set == "h36m17"


def test_bad_input_is_rejected(library):
    poses_2d, poses_3d = library
    with pytest.raises(RuntimeError, match="before fit"):
        knn.KNNLifter().predict(poses_2d)
    with pytest.raises(ValueError, match="k=5"):
        knn.KNNLifter().fit(poses_2d[:3], poses_3d[:3])
    with pytest.raises(ValueError, match="targets_3d"):
        knn.KNNLifter().fit(poses_2d, poses_3d[:, :16])
    model = knn.KNNLifter().fit(poses_2d, poses_3d)
    with pytest.raises(ValueError, match="16 joints"):
        model.predict(poses_2d[:, :16])
    bad = poses_2d[:2].copy()
    bad[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict(bad)
