"""lifting/data/mpi3dhp.py and stages/normalize_3dhp.py: MPI-INF-3DHP's test set from the user's files,
through a fixture written in the real files' layout (tests/data/mpi3dhp_fixture.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lifting.cross_dataset import load_test_set
from lifting.data.mpi3dhp import (ACTIVITIES, CAMERAS, FIELDS, MPI3DHP_JOINTS, MPI3DHP_TO_H36M17, SEQUENCES,
                                  read_mpi3dhp)
from lifting.data.schema import poses_from_frame
from lifting.errors import DataError
from lifting.geometry import normalize_screen_coordinates
from lifting.skeleton import H36M16, H36M17
from stages import normalize_3dhp
from tests.data.mpi3dhp_fixture import FRAMES, known_sequence, matlab_fields, write_test_set


@pytest.fixture
def test_set(tmp_path):
    root = tmp_path / "mpi_inf_3dhp_test_set"
    return root, write_test_set(root)


def test_the_mapping_puts_each_3dhp_joint_in_its_h36m17_slot():
    named = dict(zip(H36M17.names, (MPI3DHP_JOINTS[i] for i in MPI3DHP_TO_H36M17)))
    assert named == {"Hip": "pelvis", "RHip": "right_hip", "RKnee": "right_knee", "RFoot": "right_ankle",
                     "LHip": "left_hip", "LKnee": "left_knee", "LFoot": "left_ankle", "Spine": "spine",
                     "Thorax": "neck", "Nose": "head", "Head": "head_top", "LShoulder": "left_shoulder",
                     "LElbow": "left_elbow", "LWrist": "left_wrist", "RShoulder": "right_shoulder",
                     "RElbow": "right_elbow", "RWrist": "right_wrist"}


def test_the_fixture_round_trips_into_the_canonical_tables(test_set):
    root, truth = test_set
    tables, manifest = read_mpi3dhp(root)
    assert tables.sources2d == ["gt"] and sorted(tables.poses3d["subject"].unique()) == list(SEQUENCES)
    for name, known in truth.items():
        rows3d = tables.poses3d[tables.poses3d["subject"] == name]
        rows2d = tables.poses2d[tables.poses2d["subject"] == name]
        np.testing.assert_allclose(poses_from_frame(rows3d, H36M17, "xyz"), known.poses3d, atol=1e-3)
        np.testing.assert_allclose(poses_from_frame(rows2d, H36M17, "uv"), known.pixels, atol=1e-3)
        assert rows3d["valid"].tolist() == known.valid.tolist()
        assert rows3d["action"].tolist() == [ACTIVITIES[a - 1] for a in known.activity]
        assert rows3d["frame"].tolist() == list(range(FRAMES[name]))
        assert set(rows2d["camera"]) == {CAMERAS[name].id}
        assert manifest["files"][f"{name}/annot_data.mat"]["valid_frames"] == int(known.valid.sum())
    cameras = tables.cameras.set_index("subject")
    assert (cameras.loc["TS1", "width"], cameras.loc["TS1", "height"]) == (2048, 2048)
    assert (cameras.loc["TS6", "width"], cameras.loc["TS6", "height"]) == (1920, 1080)
    # the test set's calibration file: 7.32506 mm focal length on a 10 mm sensor of 2048 pixels
    assert cameras.loc["TS1", "fx"] == pytest.approx(7.32506 / 10 * 2048)


@pytest.mark.parametrize("joint_set", [H36M17, H36M16])
def test_the_stage_writes_a_store_the_evaluation_reads_back(test_set, tmp_path, joint_set):
    root, truth = test_set
    (tmp_path / "params.yaml").write_text(f"data: {{mpi3dhp_dir: {root}}}\n")
    normalize_3dhp.main(["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "store")])
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert sorted(manifest["files"]) == [f"{name}/annot_data.mat" for name in SEQUENCES]
    test = load_test_set(tmp_path / "store", joint_set.name)
    keep = [H36M17.index(name) for name in joint_set.names]
    assert test.valid.tolist() == np.concatenate([truth[name].valid for name in SEQUENCES]).tolist()
    first = slice(0, FRAMES["TS1"])
    np.testing.assert_allclose(test.targets[first], (truth["TS1"].poses3d - truth["TS1"].poses3d[:, :1])[:, keep],
                               atol=1e-3)
    last = slice(len(test.valid) - FRAMES["TS6"], None)  # 1920 x 1080: u / 960 - 1, v / 960 - 1080 / 1920
    expected = normalize_screen_coordinates(truth["TS6"].pixels, 1920, 1080)[:, keep]
    np.testing.assert_allclose(test.inputs[last], expected, atol=1e-5)
    assert test.meta["sequence"].tolist()[-1] == "TS6" and test.joint_set == joint_set.name


def test_a_null_folder_writes_only_a_skipped_summary(tmp_path):
    (tmp_path / "params.yaml").write_text("data: {mpi3dhp_dir: null}\n")
    normalize_3dhp.main(["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "store")])
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["summary.json"]
    assert "null" in json.loads((tmp_path / "store" / "summary.json").read_text())["skipped"]


def test_frames_that_are_not_valid_may_hold_nan_and_get_the_nearest_valid_frames_pose(tmp_path):
    known = known_sequence("TS1", 0)  # frames 0 and 4 are not valid
    fields = matlab_fields(known)
    fields["univ_annot3"][..., 4] = np.nan
    write_test_set(tmp_path, {"TS1": {"univ_annot3": fields["univ_annot3"]}})
    tables, _ = read_mpi3dhp(tmp_path)
    poses = poses_from_frame(tables.poses3d[tables.poses3d["subject"] == "TS1"], H36M17, "xyz")
    np.testing.assert_allclose(poses[4], known.poses3d[3], atol=1e-3)  # 3 and 5 are as near: the earlier


@pytest.mark.parametrize("field", FIELDS)
def test_a_missing_field_names_the_file_and_the_field(tmp_path, field):
    write_test_set(tmp_path / "set", {"TS3": {field: None}})
    with pytest.raises(DataError, match=f"no field '{field}'") as err:
        read_mpi3dhp(tmp_path / "set")
    assert err.value.path == tmp_path / "set" / "TS3" / "annot_data.mat"


@pytest.mark.parametrize("field", FIELDS)
def test_fields_whose_frame_counts_disagree_are_named(tmp_path, field):
    one_short = matlab_fields(known_sequence("TS3", 2))[field][..., :-1]  # MATLAB's last axis is the frame
    write_test_set(tmp_path / "set", {"TS3": {field: one_short}})
    with pytest.raises(DataError, match=f"frame counts disagree: .*'{field}': 5") as err:
        read_mpi3dhp(tmp_path / "set")
    assert err.value.path == tmp_path / "set" / "TS3" / "annot_data.mat"


@pytest.mark.parametrize("change, message", [
    ({"valid_frame": np.zeros((1, 6))}, "'valid_frame' marks no frame valid"),
    ({"univ_annot3": np.zeros((3, 16, 1, 6))}, "'univ_annot3' has shape"),
    ({"annot2": np.full((2, 17, 1, 6), np.nan)}, "'annot2': NaN or infinite joints in 5 valid frame"),
    ({"activity_annotation": np.full((1, 6), 9.0)}, "'activity_annotation' has values"),
])
def test_bad_fields_are_one_clear_error(tmp_path, change, message):
    write_test_set(tmp_path / "set", {"TS3": change})
    with pytest.raises(DataError, match=message) as err:
        read_mpi3dhp(tmp_path / "set")
    assert err.value.path.parent.name == "TS3"


def test_a_missing_sequence_or_a_file_that_is_not_hdf5_names_the_file(tmp_path):
    write_test_set(tmp_path / "set")
    (tmp_path / "set" / "TS5" / "annot_data.mat").unlink()
    with pytest.raises(DataError, match="file not found") as err:
        read_mpi3dhp(tmp_path / "set")
    assert err.value.path.parent.name == "TS5"
    (tmp_path / "set" / "TS5" / "annot_data.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 200)
    with pytest.raises(DataError, match="not a readable MATLAB v7.3"):
        read_mpi3dhp(tmp_path / "set")


def test_bad_input_to_the_stage_writes_nothing(tmp_path):
    write_test_set(tmp_path / "set", {"TS2": {"annot2": None}})
    (tmp_path / "params.yaml").write_text(f"data: {{mpi3dhp_dir: {tmp_path / 'set'}}}\n")
    with pytest.raises(DataError, match="annot2"):
        normalize_3dhp.main(["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "store")])
    assert not (tmp_path / "store").exists()
