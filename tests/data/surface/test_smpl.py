"""HGN's SMPL-mesh hierarchy from a user-supplied model and fits (a synthetic SMPL-like model here)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lifting.data.align import align_store, write_aligned
from lifting.data.h36m import SMPL_SUBDIR, fetch_h36m, read_h36m
from lifting.data.schema import POSES3D_KEYS, poses_to_frame
from lifting.data.split import load_split
from lifting.data.store import read_store, write_store
from lifting.data.surface import smpl
from lifting.errors import DataError
from lifting.skeleton import H36M17
from tests.data.h36m_fixtures import write_h36m_fixture
from tests.data.surface.smpl_fixtures import skin_vertices, write_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> tuple[Path, dict]:
    directory = tmp_path_factory.mktemp("smpl")
    arrays = write_model(directory / smpl.MODEL_FILE)
    return directory, arrays


@pytest.fixture(scope="module")
def parts(model_dir):
    model = smpl.load_model(model_dir[0] / smpl.MODEL_FILE)
    hierarchy = smpl.MeshHierarchy.from_faces(model.faces, len(model.v_template))
    return model, hierarchy, smpl.MarkerSkinning.build(model, hierarchy.pooling)


def test_the_mesh_hierarchy_has_hgns_levels(parts):
    _, hierarchy, _ = parts
    graph = hierarchy.graph()
    assert graph.fine_adjacency.shape == (96, 96) and graph.coarse_adjacency.shape == (48, 48)
    assert graph.posed_by == smpl.POSED_BY_SMPL and graph.name == smpl.SMPL_HIERARCHY
    assert np.allclose(hierarchy.pooling.sum(axis=1), 1.0)
    assert len(hierarchy.pooling) == graph.fine_real.sum() + graph.coarse_real.sum()


def test_folded_skinning_equals_skinning_every_vertex(model_dir, parts):
    _, arrays = model_dir
    _, hierarchy, skinning = parts
    rng = np.random.default_rng(1)
    pose, shape, trans = rng.normal(scale=0.4, size=(3, 72)), rng.normal(size=(3, 10)), rng.normal(size=(3, 3))
    folded = skinning.markers(pose, shape, trans, chunk=2)
    for t in range(3):
        assert np.allclose(folded[t], hierarchy.pooling @ skin_vertices(arrays, pose[t], shape[t], trans[t]),
                           atol=1e-12)
    # the root joint does not move with the pose
    rest = skinning.markers(np.zeros((1, 72)), shape[:1], np.zeros((1, 3)))
    assert np.allclose(rest[0], hierarchy.pooling @ (arrays["v_template"] + arrays["shapedirs"] @ shape[0]))


def test_a_model_that_is_not_plain_arrays_is_refused(tmp_path, model_dir):
    with pytest.raises(DataError, match="SMPL model not found"):
        smpl.load_model(tmp_path / smpl.MODEL_FILE)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, v_template=np.array([{"x": 1}], dtype=object))
    with pytest.raises(DataError, match="not a plain-array .npz"):
        smpl.load_model(pickled)
    partial = tmp_path / "partial.npz"
    np.savez(partial, **{k: v for k, v in model_dir[1].items() if k != "posedirs"})
    with pytest.raises(DataError, match=r"lacks \['posedirs'\]"):
        smpl.load_model(partial)
    hostile = tmp_path / "hostile.npz"
    hostile.write_bytes(pickle.dumps({"v_template": 1}))
    with pytest.raises(DataError, match=str(hostile.name)):
        smpl.load_model(hostile)


def _poses3d(sequences: dict[str, np.ndarray], subject: str = "S1") -> pd.DataFrame:
    parts = []
    for sequence, hips_m in sequences.items():
        joints = np.zeros((len(hips_m), 17, 3))
        joints[:, :] = hips_m[:, None] * 1000.0
        keys = pd.DataFrame({"subject": subject, "action": sequence.split(" ")[0], "sequence": sequence,
                             "frame": np.arange(len(hips_m))})
        parts.append(pd.concat([keys, poses_to_frame(joints, H36M17, "xyz")], axis=1))
    return pd.concat(parts, ignore_index=True)


def _write_fits(path: Path, fits: dict[tuple[int, int], dict[int, tuple]]) -> None:
    nested: dict = {}
    for (action, subaction), frames in fits.items():
        nested.setdefault(str(action), {})[str(subaction)] = {
            str(f): {"pose": p.tolist(), "shape": s.tolist(), "trans": t.tolist()} for f, (p, s, t) in frames.items()}
    path.write_text(json.dumps(nested))


def _fits_following(hips_m: np.ndarray, frames, skinning, rng) -> dict[int, tuple]:
    """Fits whose SMPL root lies on ``hips_m`` at ``frames`` (random poses and shapes)."""
    out = {}
    for f in frames:
        shape = rng.normal(size=10)
        out[int(f)] = (rng.normal(scale=0.3, size=72), shape, hips_m[f] - skinning.root(shape[None])[0])
    return out


def test_fits_are_matched_to_sequences_by_trajectory_not_by_name(model_dir, parts, tmp_path):
    directory = tmp_path / "smpl"
    directory.mkdir()
    (directory / smpl.MODEL_FILE).write_bytes((model_dir[0] / smpl.MODEL_FILE).read_bytes())
    _, hierarchy, skinning = parts
    rng = np.random.default_rng(2)
    walking = {"Walking": np.cumsum(rng.normal(scale=0.02, size=(30, 3)), 0) + [1.0, 0.0, 0.9],
               "Walking 1": np.cumsum(rng.normal(scale=0.02, size=(25, 3)), 0) + [-1.0, 0.5, 0.9],
               "Eating 2": np.cumsum(rng.normal(scale=0.02, size=(12, 3)), 0)}
    poses3d = _poses3d(walking)
    walking_idx, eating_idx = 2 + smpl.ACTIONS.index("Walking"), 2 + smpl.ACTIONS.index("Eating")
    fits = {(walking_idx, 1): _fits_following(walking["Walking 1"], range(0, 25, 5), skinning, rng),
            (walking_idx, 2): _fits_following(walking["Walking"], range(0, 30, 5), skinning, rng),
            (eating_idx, 1): _fits_following(walking["Eating 2"], [3, 7], skinning, rng)}
    _write_fits(directory / "Human36M_subject1_smpl_param.json", fits)
    table, graph = smpl.markers_table(poses3d, directory)
    assert graph.posed_by == smpl.POSED_BY_SMPL
    pd.testing.assert_frame_equal(table[list(POSES3D_KEYS)], poses3d[list(POSES3D_KEYS)])
    values = table.drop(columns=list(POSES3D_KEYS)).to_numpy().reshape(len(table), -1, 3)
    fitted = np.zeros(len(table), dtype=bool)
    for (action, subaction), sequence in (((walking_idx, 1), "Walking 1"), ((walking_idx, 2), "Walking"),
                                         ((eating_idx, 1), "Eating 2")):
        for frame, (pose, shape, trans) in fits[(action, subaction)].items():
            row = np.flatnonzero((poses3d["sequence"] == sequence) & (poses3d["frame"] == frame))[0]
            expected = skinning.markers(pose[None], shape[None], trans[None])[0] * 1000.0
            assert np.allclose(values[row], expected, atol=0.05), (sequence, frame)
            fitted[row] = True
    assert np.isnan(values[~fitted]).all() and np.isfinite(values[fitted]).all()

    # fits that follow no sequence of their action: one clear error naming the file
    shifted = {key: {f: (p, s, t + 1.0) for f, (p, s, t) in frames.items()} for key, frames in fits.items()}
    _write_fits(directory / "Human36M_subject1_smpl_param.json", shifted)
    with pytest.raises(DataError, match=r"subject1_smpl_param\.json.*match no single sequence of Walking"):
        smpl.markers_table(poses3d, directory)


def test_human36m_with_smpl_fits_goes_through_fetch_and_read(model_dir, parts, tmp_path):
    fixture = write_h36m_fixture(tmp_path / "h36m")
    user_smpl = tmp_path / "user-smpl"
    user_smpl.mkdir()
    (user_smpl / smpl.MODEL_FILE).write_bytes((model_dir[0] / smpl.MODEL_FILE).read_bytes())
    _, _, skinning = parts
    rng = np.random.default_rng(3)
    fits = {}
    for (subject, sequence), world_mm in fixture.world_mm.items():
        if subject == "S1":
            action = read_h36m(fixture.directory, ["gt"]).poses3d.query("sequence == @sequence")["action"].iloc[0]
            fits[(2 + smpl.ACTIONS.index(action), 1)] = _fits_following(world_mm[:, 0] / 1000.0, [0, 2], skinning, rng)
    _write_fits(user_smpl / "Human36M_subject1_smpl_param.json", fits)
    raw = tmp_path / "raw"
    manifest = fetch_h36m(fixture.directory, ["gt"], raw, allow_download=False, smpl_dir=user_smpl)
    assert f"{SMPL_SUBDIR}/{smpl.MODEL_FILE}" in manifest["files"]
    tables = read_h36m(raw, ["gt"])
    assert tables.surface.posed_by == smpl.POSED_BY_SMPL
    values = tables.markers.drop(columns=list(POSES3D_KEYS)).to_numpy()
    fitted = np.isfinite(values).all(axis=1)
    assert fitted.sum() == 2 * len(fits) and (tables.markers.loc[fitted, "subject"] == "S1").all()
    # the unfitted frames stay NaN through the store and the aligned tables (HGN's loss skips them)
    write_store(tables, tmp_path / "store", "h36m")
    stored = read_store(tmp_path / "store", "h36m").markers
    assert np.isfinite(stored.drop(columns=list(POSES3D_KEYS)).to_numpy()).all(axis=1).sum() == fitted.sum()
    write_aligned(align_store(tables, ["S1"], ["S9", "S11"]), tmp_path / "aligned", "h36m")
    split = load_split(tmp_path / "aligned", "gt", markers=True)
    assert np.isfinite(split.train_markers).all(axis=(1, 2)).sum() == 4 * fitted.sum()  # four cameras
