"""Human3.6M VideoPose3D files: reading, quirks, errors, export round trip and fetch."""

from __future__ import annotations

import hashlib
import logging
import urllib.error
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from h36m_fixtures import (ACTIONS, EXTRA_2D, GT_METADATA, SEQUENCES, H36MFixture, npz_with_object_payload,
                           project_px, tables_from_fixture, write_2d, write_3d, write_h36m_fixture)
from lifting.data.h36m import (DOWNLOAD_URL, H36M_ACTIONS, UNUSED_SLOT_SOURCE, canonical_action,
                               export_videopose3d, fetch_h36m, read_h36m)
from lifting.data.h36m_cameras import CAMERA_IDS
from lifting.data.safe_npz import load_npz
from lifting.data.schema import POSES2D_KEYS, POSES3D_KEYS, joint_columns, poses_from_frame
from lifting.data.surface.markers import POSED_BY_JOINTS
from lifting.errors import DataError
from lifting.skeleton import H36M17, H36M32_TO_H36M17

XYZ = joint_columns(H36M17, "xyz")
UV = joint_columns(H36M17, "uv")


@pytest.fixture
def fixture(tmp_path) -> H36MFixture:
    return write_h36m_fixture(tmp_path / "h36m")


def sequence_rows(table: pd.DataFrame, subject: str, sequence: str, **keys) -> pd.DataFrame:
    mask = (table["subject"] == subject) & (table["sequence"] == sequence)
    for column, value in keys.items():
        mask &= table[column] == value
    return table[mask].sort_values("frame")


# ------------------------------------------------------------------------------------- actions

def test_action_order_is_fixed():
    assert len(H36M_ACTIONS) == len(set(H36M_ACTIONS)) == 15
    assert H36M_ACTIONS[:6] == ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo")
    assert H36M_ACTIONS[-4:] == ("Waiting", "WalkDog", "Walking", "WalkTogether")


@pytest.mark.parametrize("sequence, action", [
    ("Waiting 1", "Waiting"), ("Waiting", "Waiting"), ("TakingPhoto 1", "Photo"), ("TakingPhoto", "Photo"),
    ("Photo 2", "Photo"), ("WalkingDog", "WalkDog"), ("WalkDog 1", "WalkDog"), ("SittingDown 2", "SittingDown"),
    ("SittingDown", "SittingDown"), ("Sitting 1", "Sitting"), ("WalkTogether 1", "WalkTogether"),
])
def test_canonical_action(sequence, action):
    assert canonical_action(sequence, "f.npz") == action


@pytest.mark.parametrize("sequence", ["Dancing 1", "Sittingdown", "Sit 1", "", "walking"])
def test_unknown_action(sequence):
    with pytest.raises(DataError) as info:
        canonical_action(sequence, "data_3d_h36m.npz")
    assert "data_3d_h36m.npz" in str(info.value) and repr(sequence) in str(info.value)


# ------------------------------------------------------------------------------------- reading

def test_read_units_shapes_and_actions(fixture):
    tables = read_h36m(fixture.directory, ["gt"])
    p3 = tables.poses3d
    assert list(p3.columns) == list(POSES3D_KEYS) + XYZ
    assert all(p3[c].dtype == np.float32 for c in XYZ)
    assert len(p3) == sum(n for seqs in SEQUENCES.values() for n in seqs.values())
    for (subject, sequence), world_mm in fixture.world_mm.items():
        rows = sequence_rows(p3, subject, sequence)
        assert set(rows["action"]) == {ACTIONS[sequence]}
        np.testing.assert_array_equal(rows["frame"], np.arange(len(world_mm)))
        np.testing.assert_allclose(poses_from_frame(rows, H36M17, "xyz"), world_mm, atol=1e-3)  # mm, not m
    assert set(p3["action"]) <= set(H36M_ACTIONS)
    assert not ((p3["subject"] == "S11") & (p3["action"] == "Directions")).any()


def test_hgn_markers_come_from_the_joints_on_the_canonical_body(fixture):
    tables = read_h36m(fixture.directory, ["gt"])
    assert tables.surface.posed_by == POSED_BY_JOINTS
    keys = list(POSES3D_KEYS)
    pd.testing.assert_frame_equal(tables.markers[keys], tables.poses3d[keys])
    values = tables.markers.drop(columns=keys).to_numpy()
    assert values.shape[1] == 3 * (81 + 44) and np.isfinite(values).all()


def test_read_2d_pixels_truncated_to_3d(fixture):
    tables = read_h36m(fixture.directory, ["gt"])
    p2 = tables.poses2d
    assert list(p2.columns) == list(POSES2D_KEYS) + UV
    assert set(p2["source"]) == {"gt"} and set(p2["camera"]) == set(CAMERA_IDS)
    for (subject, sequence), world_mm in fixture.world_mm.items():
        expected = project_px(subject, world_mm)
        for camera_id, px in zip(CAMERA_IDS, expected):
            rows = sequence_rows(p2, subject, sequence, camera=camera_id)
            assert len(rows) == len(world_mm)  # 2D longer than 3D was cut
            np.testing.assert_allclose(poses_from_frame(rows, H36M17, "uv"), px, atol=0.05)
    subject, sequence = next(iter(EXTRA_2D))
    written = fixture.pixels["gt"][subject][sequence][0]
    rows = sequence_rows(p2, subject, sequence, camera=CAMERA_IDS[0])
    assert len(written) > len(rows)
    np.testing.assert_array_equal(poses_from_frame(rows, H36M17, "uv"), written[: len(rows)])


def test_read_cameras_and_sources(fixture):
    tables = read_h36m(fixture.directory, ["gt", "cpn_ft_h36m_dbb"])
    assert tables.sources2d == ["gt", "cpn_ft_h36m_dbb"]
    assert sorted(tables.cameras["subject"].unique()) == sorted(SEQUENCES)
    assert len(tables.cameras) == 4 * len(SEQUENCES)
    assert len(tables.poses2d) == 2 * 4 * len(tables.poses3d)


def test_2d_without_3d_is_skipped_with_a_warning(fixture, caplog):
    with caplog.at_level(logging.WARNING, logger="lifting.data.h36m"):
        tables = read_h36m(fixture.directory, ["gt"])
    assert "S11/Directions" in caplog.text
    assert not (tables.poses2d["subject"] == "S2").any()  # uncalibrated subject
    assert not ((tables.poses2d["subject"] == "S11") & (tables.poses2d["sequence"] == "Directions")).any()


def test_2d_keys_renamed_like_the_3d_keys_still_match(fixture):
    positions = fixture.pixels["gt"]
    positions["S1"]["Photo"] = positions["S1"].pop("TakingPhoto")
    write_2d(fixture.directory, "gt", positions)
    tables = read_h36m(fixture.directory, ["gt"])
    assert len(sequence_rows(tables.poses2d, "S1", "TakingPhoto")) == 4 * 6


def test_confidence_channel_becomes_c_columns(tmp_path):
    fixture = write_h36m_fixture(tmp_path, confidence_sources=("cpn_ft_h36m_dbb",))
    tables = read_h36m(tmp_path, ["gt", "cpn_ft_h36m_dbb"])
    confidence = joint_columns(H36M17, "c")
    assert set(confidence) <= set(tables.poses2d.columns)
    cpn = sequence_rows(tables.poses2d, "S9", "Sitting 1", source="cpn_ft_h36m_dbb", camera=CAMERA_IDS[2])
    np.testing.assert_array_equal(poses_from_frame(cpn, H36M17, "c")[..., 0],
                                  fixture.pixels["cpn_ft_h36m_dbb"]["S9"]["Sitting 1"][2][..., 2])
    assert (tables.poses2d.loc[tables.poses2d["source"] == "gt", confidence] == 1.0).all().all()


# ------------------------------------------------------------------------------------- round trip

def assert_tables_equal(actual, expected):
    for name, floats, atol in (("poses3d", XYZ, 1e-3), ("poses2d", None, 1e-4)):
        a = getattr(actual, name)
        e = getattr(expected, name)
        keys = list(POSES3D_KEYS if name == "poses3d" else POSES2D_KEYS)
        a = a.sort_values(keys).reset_index(drop=True)
        e = e.sort_values(keys).reset_index(drop=True)
        assert list(a.columns) == list(e.columns)
        pd.testing.assert_frame_equal(a[keys], e[keys], check_dtype=False)
        floats = floats or [c for c in e.columns if c not in keys]
        np.testing.assert_allclose(a[floats].to_numpy(np.float64), e[floats].to_numpy(np.float64), rtol=0, atol=atol)
    pd.testing.assert_frame_equal(actual.cameras.reset_index(drop=True), expected.cameras.reset_index(drop=True))
    assert actual.sources2d == expected.sources2d


def test_export_read_round_trip(fixture, tmp_path):
    tables = tables_from_fixture(fixture, ("gt", "cpn_ft_h36m_dbb"))
    written = export_videopose3d(tables, tmp_path / "export")
    assert [p.name for p in written] == ["data_3d_h36m.npz", "data_2d_h36m_gt.npz", "data_2d_h36m_cpn_ft_h36m_dbb.npz"]
    assert_tables_equal(read_h36m(tmp_path / "export", ["gt", "cpn_ft_h36m_dbb"]), tables)


def test_round_trip_with_confidences(tmp_path):
    write_h36m_fixture(tmp_path / "in", confidence_sources=("cpn_ft_h36m_dbb",))
    tables = read_h36m(tmp_path / "in", ["gt", "cpn_ft_h36m_dbb"])
    export_videopose3d(tables, tmp_path / "out")
    assert_tables_equal(read_h36m(tmp_path / "out", ["gt", "cpn_ft_h36m_dbb"]), tables)


def test_export_is_videopose3d_format(fixture, tmp_path):
    tables = tables_from_fixture(fixture, ("gt",))
    export_videopose3d(tables, tmp_path)
    positions = load_npz(tmp_path / "data_3d_h36m.npz")["positions_3d"]
    poses32 = positions["S1"]["Waiting 1"]
    assert poses32.shape == (8, 32, 3) and poses32.dtype == np.float32
    np.testing.assert_allclose(poses32[:, list(H36M32_TO_H36M17)], fixture.world_mm[("S1", "Waiting 1")] / 1000,
                               atol=1e-6)  # metres
    for slot, source in UNUSED_SLOT_SOURCE.items():
        np.testing.assert_array_equal(poses32[:, slot], poses32[:, source])
    content = load_npz(tmp_path / "data_2d_h36m_gt.npz")
    assert content["metadata"] == {"layout_name": "h36m", "num_joints": 17,
                                   "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    cameras = content["positions_2d"]["S9"]["SittingDown"]
    assert isinstance(cameras, list) and [c.shape for c in cameras] == [(6, 17, 2)] * 4
    # upstream code reads it with plain numpy
    upstream = np.load(tmp_path / "data_2d_h36m_gt.npz", allow_pickle=True)["positions_2d"].item()
    np.testing.assert_array_equal(upstream["S9"]["SittingDown"][3], cameras[3])


def test_export_keys_non_h36m_sequences_by_action(fixture, tmp_path):
    tables = tables_from_fixture(fixture, ("gt",))
    for frame in (tables.poses3d, tables.poses2d):
        frame.loc[frame["sequence"] == "Walking", "sequence"] = "walk"
    export_videopose3d(tables, tmp_path)
    assert "Walking walk" in load_npz(tmp_path / "data_3d_h36m.npz")["positions_3d"]["S11"]
    assert "Walking walk" in load_npz(tmp_path / "data_2d_h36m_gt.npz")["positions_2d"]["S11"]


def test_export_refuses_frame_gaps(fixture, tmp_path):
    tables = tables_from_fixture(fixture, ("gt",))
    tables.poses3d = tables.poses3d[tables.poses3d["frame"] != 2]
    with pytest.raises(DataError, match="frames are not 0..N-1"):
        export_videopose3d(tables, tmp_path)


# ------------------------------------------------------------------------------------- bad input

def test_missing_3d_file(tmp_path):
    with pytest.raises(DataError) as info:
        read_h36m(tmp_path, ["gt"])
    message = str(info.value)
    assert f"place data_3d_h36m.npz in {tmp_path}" in message and "prepare_data_h36m.py" in message


def test_missing_public_2d_file_says_where_to_get_it(fixture):
    (fixture.directory / "data_2d_h36m_cpn_ft_h36m_dbb.npz").unlink()
    with pytest.raises(DataError) as info:
        read_h36m(fixture.directory, ["gt", "cpn_ft_h36m_dbb"])
    message = str(info.value)
    assert f"place data_2d_h36m_cpn_ft_h36m_dbb.npz in {fixture.directory}" in message
    assert DOWNLOAD_URL.format(source="cpn_ft_h36m_dbb") in message


@pytest.mark.parametrize("name", ["data_3d_h36m.npz", "data_2d_h36m_gt.npz"])
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_files(fixture, name, damage):
    path = fixture.directory / name
    data = path.read_bytes()
    path.write_bytes(b"<html>not found</html>" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(DataError, match=name):
        read_h36m(fixture.directory, ["gt"])


def test_hostile_pickle_through_the_reader(fixture):
    marker = fixture.directory / "pwned"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    npz_with_object_payload(fixture.directory / "data_3d_h36m.npz", payload)
    with pytest.raises(DataError, match="data_3d_h36m.npz: .*os.system"):
        read_h36m(fixture.directory, ["gt"])
    assert not marker.exists()


@pytest.mark.parametrize("joints", [20, 31, 16])
def test_wrong_3d_joint_count(fixture, joints):
    fixture.positions_3d["S9"]["Sitting 1"] = np.zeros((5, joints, 3), np.float32)
    write_3d(fixture.directory, fixture.positions_3d)
    with pytest.raises(DataError, match=rf"data_3d_h36m.npz: S9/Sitting 1: 3D poses of shape \(5, {joints}, 3\)"):
        read_h36m(fixture.directory, ["gt"])


def test_17_joint_3d_is_accepted(fixture):
    fixture.positions_3d["S9"]["Sitting 1"] = fixture.positions_3d["S9"]["Sitting 1"][:, list(H36M32_TO_H36M17)]
    write_3d(fixture.directory, fixture.positions_3d)
    rows = sequence_rows(read_h36m(fixture.directory, ["gt"]).poses3d, "S9", "Sitting 1")
    np.testing.assert_allclose(poses_from_frame(rows, H36M17, "xyz"), fixture.world_mm[("S9", "Sitting 1")], atol=1e-3)


def test_nan_in_3d(fixture):
    fixture.positions_3d["S1"]["Waiting 1"][3, 7, 1] = np.nan
    write_3d(fixture.directory, fixture.positions_3d)
    with pytest.raises(DataError, match="data_3d_h36m.npz: S1/Waiting 1: NaN .* first at frame 3"):
        read_h36m(fixture.directory, ["gt"])


def test_nan_in_2d(fixture):
    fixture.pixels["gt"]["S11"]["Walking"][1][0, 0, 0] = np.nan
    write_2d(fixture.directory, "gt", fixture.pixels["gt"])
    with pytest.raises(DataError, match=f"data_2d_h36m_gt.npz: S11/Walking camera {CAMERA_IDS[1]}: NaN"):
        read_h36m(fixture.directory, ["gt"])


def test_nan_in_2d_frames_beyond_the_3d_is_harmless(fixture):
    subject, sequence = next(iter(EXTRA_2D))
    fixture.pixels["gt"][subject][sequence][0][-1] = np.nan
    write_2d(fixture.directory, "gt", fixture.pixels["gt"])
    read_h36m(fixture.directory, ["gt"])


@pytest.mark.parametrize("metadata", [{**GT_METADATA, "num_joints": 16}, None])
def test_16_joint_2d_file(fixture, metadata):
    keep = [i for i in range(17) if i != H36M17.index("Nose")]
    positions = {s: {q: [px[:, keep] for px in cams] for q, cams in seqs.items()}
                 for s, seqs in fixture.pixels["gt"].items()}
    write_2d(fixture.directory, "gt", positions, metadata)
    with pytest.raises(DataError) as info:
        read_h36m(fixture.directory, ["gt"])
    assert "data_2d_h36m_gt.npz" in str(info.value) and "16 joints" in str(info.value)
    assert "17-joint" in str(info.value)


def test_non_h36m_layout(fixture):
    write_2d(fixture.directory, "gt", fixture.pixels["gt"], {**GT_METADATA, "layout_name": "coco"})
    with pytest.raises(DataError, match="data_2d_h36m_gt.npz: keypoint layout 'coco'"):
        read_h36m(fixture.directory, ["gt"])


def test_2d_shorter_than_3d(fixture):
    cameras = fixture.pixels["gt"]["S1"]["Directions"]
    cameras[2] = cameras[2][:3]
    write_2d(fixture.directory, "gt", fixture.pixels["gt"])
    expected = f"data_2d_h36m_gt.npz: S1/Directions camera {CAMERA_IDS[2]}: 3 2D frames but 5"
    with pytest.raises(DataError, match=expected):
        read_h36m(fixture.directory, ["gt"])


def test_unknown_action_in_3d(fixture):
    fixture.positions_3d["S1"]["Dancing 1"] = fixture.positions_3d["S1"]["Waiting 1"]
    write_3d(fixture.directory, fixture.positions_3d)
    with pytest.raises(DataError, match="data_3d_h36m.npz: sequence 'Dancing 1': unknown action 'Dancing'"):
        read_h36m(fixture.directory, ["gt"])


def test_3d_sequence_without_2d(fixture):
    del fixture.pixels["gt"]["S9"]["Photo 1"]
    write_2d(fixture.directory, "gt", fixture.pixels["gt"])
    with pytest.raises(DataError, match="data_2d_h36m_gt.npz: no 2D for 1 sequence.*S9/Photo 1"):
        read_h36m(fixture.directory, ["gt"])


def test_wrong_camera_count(fixture):
    fixture.pixels["gt"]["S9"]["Photo 1"].pop()
    write_2d(fixture.directory, "gt", fixture.pixels["gt"])
    with pytest.raises(DataError, match="data_2d_h36m_gt.npz: S9/Photo 1: 3 camera entries, expected 4"):
        read_h36m(fixture.directory, ["gt"])


def test_not_a_videopose3d_file(fixture):
    np.savez(fixture.directory / "data_3d_h36m.npz", poses=np.zeros((3, 17, 3)))
    with pytest.raises(DataError, match=r"data_3d_h36m.npz: no \['positions_3d'\]"):
        read_h36m(fixture.directory, ["gt"])


# ------------------------------------------------------------------------------------- fetch

class FakeDownloader:
    """Serves a local file instead of the network, and remembers what was asked for."""

    def __init__(self, content: bytes | None = None, error: Exception | None = None):
        self.content, self.error, self.urls = content, error, []

    def __call__(self, url: str, dest: Path) -> None:
        self.urls.append(url)
        if self.error is not None:
            raise self.error
        dest.write_bytes(self.content)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_gathers_files_with_manifest(fixture, tmp_path):
    raw = tmp_path / "raw"
    manifest = fetch_h36m(fixture.directory, ["gt", "cpn_ft_h36m_dbb"], raw, allow_download=False,
                          download=FakeDownloader(error=AssertionError("no download expected")))
    names = ["data_3d_h36m.npz", "data_2d_h36m_gt.npz", "data_2d_h36m_cpn_ft_h36m_dbb.npz"]
    assert list(manifest["files"]) == names and manifest["source"] == "h36m"
    for name in names:
        entry = manifest["files"][name]
        assert (raw / name).read_bytes() == (fixture.directory / name).read_bytes()
        assert entry["sha256"] == sha256(fixture.directory / name)
        assert entry["bytes"] == (fixture.directory / name).stat().st_size
        assert entry["origin"] in ("hardlink", "copy")
    assert len(read_h36m(raw, ["gt", "cpn_ft_h36m_dbb"]).poses2d) > 0


def test_fetch_missing_public_file_without_download(fixture, tmp_path):
    (fixture.directory / "data_2d_h36m_cpn_ft_h36m_dbb.npz").unlink()
    with pytest.raises(DataError) as info:
        fetch_h36m(fixture.directory, ["cpn_ft_h36m_dbb"], tmp_path / "raw", allow_download=False)
    message = str(info.value)
    assert f"place data_2d_h36m_cpn_ft_h36m_dbb.npz in {fixture.directory}" in message
    assert "data.download: true" in message


def move_cpn_away(fixture: H36MFixture, tmp_path: Path) -> bytes:
    """Remove the CPN file from the user's folder; return its bytes for the fake server."""
    path = fixture.directory / "data_2d_h36m_cpn_ft_h36m_dbb.npz"
    content = path.read_bytes()
    path.unlink()
    return content


def test_fetch_downloads_and_records_unverified_sha(fixture, tmp_path, caplog):
    content = move_cpn_away(fixture, tmp_path)
    downloader = FakeDownloader(content)
    raw = tmp_path / "raw"
    with caplog.at_level(logging.WARNING, logger="lifting.data.h36m"):
        manifest = fetch_h36m(fixture.directory, ["gt", "cpn_ft_h36m_dbb"], raw, allow_download=True,
                              download=downloader)
    entry = manifest["files"]["data_2d_h36m_cpn_ft_h36m_dbb.npz"]
    assert downloader.urls == [DOWNLOAD_URL.format(source="cpn_ft_h36m_dbb")]
    assert (raw / "data_2d_h36m_cpn_ft_h36m_dbb.npz").read_bytes() == content
    assert entry["sha256"] == hashlib.sha256(content).hexdigest() and entry["bytes"] == len(content)
    assert entry["origin"] == "download" and entry["verified"] is False
    assert "NOT verified" in caplog.text
    assert sorted(p.name for p in raw.iterdir()) == ["data_2d_h36m_cpn_ft_h36m_dbb.npz", "data_2d_h36m_gt.npz",
                                                     "data_3d_h36m.npz"]  # no temporary left


def test_fetch_verifies_a_known_sha(fixture, tmp_path, caplog):
    content = move_cpn_away(fixture, tmp_path)
    good = {"cpn_ft_h36m_dbb": hashlib.sha256(content).hexdigest()}
    with caplog.at_level(logging.WARNING, logger="lifting.data.h36m"):
        manifest = fetch_h36m(fixture.directory, ["cpn_ft_h36m_dbb"], tmp_path / "raw", allow_download=True,
                              download=FakeDownloader(content), expected_sha256=good)
    assert manifest["files"]["data_2d_h36m_cpn_ft_h36m_dbb.npz"]["verified"] is True
    assert "NOT verified" not in caplog.text


def test_fetch_rejects_a_wrong_sha(fixture, tmp_path):
    content = move_cpn_away(fixture, tmp_path)
    raw = tmp_path / "raw"
    with pytest.raises(DataError, match="data_2d_h36m_cpn_ft_h36m_dbb.npz: download from .* has sha256"):
        fetch_h36m(fixture.directory, ["cpn_ft_h36m_dbb"], raw, allow_download=True,
                   download=FakeDownloader(content), expected_sha256={"cpn_ft_h36m_dbb": "0" * 64})
    assert not any(p.name.startswith("data_2d") or p.name.endswith(".part") for p in raw.iterdir())


@pytest.mark.parametrize("downloader", [FakeDownloader(error=urllib.error.URLError("no network")),
                                        FakeDownloader(b"<html>Access denied</html>")])
def test_fetch_failed_download(fixture, tmp_path, downloader):
    move_cpn_away(fixture, tmp_path)
    raw = tmp_path / "raw"
    with pytest.raises(DataError) as info:
        fetch_h36m(fixture.directory, ["cpn_ft_h36m_dbb"], raw, allow_download=True, download=downloader)
    assert f"place data_2d_h36m_cpn_ft_h36m_dbb.npz in {fixture.directory}" in str(info.value)
    assert not (raw / "data_2d_h36m_cpn_ft_h36m_dbb.npz").exists()
    assert not list(raw.glob(".*.part"))


@pytest.mark.parametrize("source", ["sh_pt_mpii", "detectron_pt_h36m", "gt", "my_detector"])
def test_fetch_never_downloads_non_public_files(fixture, tmp_path, source):
    (fixture.directory / "data_2d_h36m_gt.npz").unlink()
    downloader = FakeDownloader(b"x")
    with pytest.raises(DataError, match=f"place data_2d_h36m_{source}.npz in"):
        fetch_h36m(fixture.directory, [source], tmp_path / "raw", allow_download=True, download=downloader)
    assert downloader.urls == []


def test_fetch_missing_3d(tmp_path):
    with pytest.raises(DataError, match="place data_3d_h36m.npz in"):
        fetch_h36m(tmp_path, [], tmp_path / "raw", allow_download=True, download=FakeDownloader(b"x"))
