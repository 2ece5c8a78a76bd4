"""HGN's body-surface markers in the embedded data: posed like the joints, through store and align."""

import numpy as np
import pandas as pd
import pytest

from lifting.data import deepmimic
from lifting.data.align import align_store, write_aligned
from lifting.data.embedded import MIRROR_PROBABILITY, seeded_rng
from lifting.data.schema import joint_columns, poses_from_frame
from lifting.data.split import Protocol, load_split
from lifting.data.store import read_store, write_store
from lifting.data.surface.markers import surface_hierarchy
from lifting.skeleton import H36M17

KEYS = ["subject", "action", "sequence", "frame"]


@pytest.fixture(scope="module")
def hierarchy():
    return surface_hierarchy()


def marker_array(frame: pd.DataFrame) -> np.ndarray:
    values = frame.drop(columns=[c for c in frame.columns if not c.endswith(("_x", "_y", "_z"))]).to_numpy(np.float64)
    return values.reshape(len(frame), -1, 3)


def test_the_hierarchy_has_hgns_levels_and_markers_weigh_one(hierarchy):
    assert hierarchy.fine_adjacency.shape == (96, 96) and hierarchy.coarse_adjacency.shape == (48, 48)
    assert hierarchy.num_markers == 81 + 44 == len(hierarchy.marker_names())
    assert np.allclose(hierarchy.share.sum(axis=1), 1.0)


def test_markers_match_posing_every_surface_point(hierarchy):
    from lifting.data.surface.body import build_surface, pose_surface
    from lifting.data.surface.coarsening import coarsen
    from lifting.data.surface.markers import pose_markers

    clip = deepmimic.sample_clip(deepmimic.read_clip(deepmimic.motion_dir() / deepmimic.CLIP_FILES["run"], "run"),
                                 np.linspace(0.0, 0.6, 4))
    scale = {"thigh": 1.1, "forearm": 0.9}
    surface = build_surface()
    levels = coarsen(surface.graph)
    pooling = np.concatenate([levels[-3].pooling[levels[-3].real], levels[-2].pooling[levels[-2].real]])
    expected = np.einsum("mp,tpd->tmd", pooling, pose_surface(surface, clip, scale))
    assert np.allclose(pose_markers(hierarchy, clip, scale), expected, atol=1e-12)


def test_mirrored_performances_keep_each_marker_on_its_body_part(embedded_tables):
    """A marker's nearest joint is the same in mirrored and plain performances (left stays left)."""
    poses = poses_from_frame(embedded_tables.poses3d, H36M17, "xyz").astype(np.float64)
    merged = embedded_tables.poses3d[KEYS].merge(embedded_tables.markers, on=KEYS, validate="one_to_one")
    markers = marker_array(merged)
    nearest = np.linalg.norm(markers[:, :, None] - poses[:, None], axis=-1).argmin(-1)  # (N, M)
    mirrored = np.array([seeded_rng(s, q, "performance").uniform() < MIRROR_PROBABILITY
                         for s, q in zip(merged["subject"], merged["sequence"])])
    assert mirrored.any() and (~mirrored).any()
    plain_mode = np.array([np.bincount(column, minlength=17).argmax() for column in nearest[~mirrored].T])
    mirror_mode = np.array([np.bincount(column, minlength=17).argmax() for column in nearest[mirrored].T])
    assert (plain_mode == mirror_mode).mean() > 0.95


def test_markers_survive_the_store_and_become_root_relative_camera_coordinates(embedded_tables, tmp_path):
    write_store(embedded_tables, tmp_path / "store", "embedded")
    tables = read_store(tmp_path / "store", "embedded")
    pd.testing.assert_frame_equal(tables.markers, embedded_tables.markers, check_dtype=False)
    aligned = align_store(tables, ("S1", "S5"), ("S9",))
    write_aligned(aligned, tmp_path / "aligned", "embedded")
    row = aligned.targets.index[(aligned.targets["subject"] == "S5") & (aligned.targets["frame"] == 10)][0]
    key = aligned.targets.loc[row, ["subject", "sequence", "frame"]]
    world = tables.poses3d[(tables.poses3d[["subject", "sequence", "frame"]] == key.to_numpy()).all(axis=1)]
    world_markers = tables.markers.loc[world.index]
    joints_world = poses_from_frame(world, H36M17, "xyz")[0].astype(np.float64)
    markers_world = marker_array(world_markers)[0]
    camera_markers = marker_array(aligned.markers().loc[[row]])[0]
    camera_joints = aligned.targets.loc[row, joint_columns(H36M17, "xyz")].to_numpy(np.float64).reshape(17, 3)
    # a rigid change of frame keeps every marker-to-joint distance
    before = np.linalg.norm(markers_world[:, None] - joints_world[None], axis=-1)
    after = np.linalg.norm(camera_markers[:, None] - camera_joints[None], axis=-1)
    assert np.allclose(before, after, atol=0.05)
    data = load_split(tmp_path / "aligned", "gt", "h36m17", Protocol(), markers=True)
    assert data.train_markers.shape == (len(data.train_inputs), 125, 3)
    assert load_split(tmp_path / "aligned", "gt", "h36m17", Protocol()).train_markers is None
