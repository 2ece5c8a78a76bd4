"""The DeepMimic body surface: points on the collision shapes, one connected graph, HGN's levels."""

import numpy as np
import pytest
import scipy.sparse.csgraph as csgraph

from lifting.data import deepmimic
from lifting.data.surface.body import build_surface, pose_surface, read_shapes, sample_shape
from lifting.data.surface.coarsening import coarsen


@pytest.fixture(scope="module")
def surface():
    return build_surface()


def test_the_model_file_gives_fifteen_shapes_in_metres():
    shapes = read_shapes()
    assert len(shapes) == 15
    assert sorted({s.kind for s in shapes}) == ["box", "capsule", "sphere"]
    chest = next(s for s in shapes if s.link == "chest")
    assert chest.kind == "sphere" and chest.size == pytest.approx((0.11,)) and chest.centre[1] == pytest.approx(0.12)


def test_points_lie_on_their_shapes_surfaces():
    for shape in read_shapes():
        points = shape.rotation.inv().apply(sample_shape(shape) - shape.centre)
        if shape.kind == "sphere":
            assert np.allclose(np.linalg.norm(points, axis=1), shape.size[0])
        elif shape.kind == "capsule":
            radius, length = shape.size
            axial = np.clip(points[:, 2], -length / 2, length / 2)
            closest = np.stack([np.zeros_like(axial), np.zeros_like(axial), axial], axis=1)
            assert np.allclose(np.linalg.norm(points - closest, axis=1), radius)
        else:
            half = np.array(shape.size) / 2
            assert np.allclose(np.max(np.abs(points) / half, axis=1), 1.0)


def test_the_surface_graph_is_one_symmetric_component(surface):
    assert len(surface.local) == 7534
    assert (surface.graph != surface.graph.T).nnz == 0 and surface.graph.diagonal().sum() == 0
    assert csgraph.connected_components(surface.graph)[0] == 1


def test_coarsening_gives_hgns_levels(surface):
    levels = coarsen(surface.graph, top=24)
    fine, coarse = levels[-3], levels[-2]
    assert (len(fine.real), len(coarse.real)) == (96, 48)
    assert (int(fine.real.sum()), int(coarse.real.sum())) == (81, 44)  # upstream's SMPL levels: 83 and 45


def test_posed_points_move_rigidly_with_their_links_and_segments(surface):
    clip = deepmimic.sample_clip(deepmimic.read_clip(deepmimic.motion_dir() / deepmimic.CLIP_FILES["walk"], "walk"),
                                 np.linspace(0.0, 0.5, 4))
    scale = {"forearm": 1.2}
    posed = pose_surface(surface, clip, scale)
    joints = deepmimic.forward_kinematics(clip, scale)
    wrist = surface.links == "right_wrist"  # a sphere centred on the wrist joint
    assert np.allclose(posed[:, wrist].mean(axis=1), joints[:, 16], atol=2e-3)
    forearm = np.flatnonzero(surface.links == "right_elbow")[:50]
    for frame in posed:
        distances = np.linalg.norm(frame[forearm, None] - frame[None, forearm], axis=-1)
        rest = np.linalg.norm(surface.local[forearm, None] - surface.local[None, forearm], axis=-1) * 1.2
        assert np.allclose(distances, rest, atol=1e-9)
