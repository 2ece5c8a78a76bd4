"""The safe .npz reader refuses hostile pickles and bad archives; the writer is read back by numpy."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from h36m_fixtures import npz_with_object_payload
from lifting.data.safe_npz import load_npz, save_npz
from lifting.errors import DataError


class WritesMarker:
    """Unpickling an instance would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class SetsState:
    """A plain custom class: refused even though it would run nothing itself."""

    def __init__(self):
        self.value = 1


def hostile_payloads(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (pickle bytes, the global the error must name)."""
    shell = f"touch {marker}".encode()
    return {
        # protocol 0, the classic: os.system("touch marker")
        "os.system": (b"cos\nsystem\n(S'" + shell + b"'\ntR.", "os.system"),
        "builtins.eval": (b"cbuiltins\neval\n(S'open(\"" + str(marker).encode() + b"\", \"w\")'\ntR.", "builtins.eval"),
        "subprocess": (b"csubprocess\ncheck_call\n((S'touch'\nS'" + str(marker).encode() + b"'\nltR.",
                       "subprocess.check_call"),
        "reduce to Path.touch": (pickle.dumps(WritesMarker(marker), protocol=4), "pathlib"),
        "custom class": (pickle.dumps(SetsState(), protocol=2), "SetsState"),
        # hidden inside an otherwise genuine VideoPose3D-like dict of arrays
        "nested": (pickle.dumps(np.array({"S1": {"Waiting 1": np.zeros((2, 32, 3), np.float32)},
                                          "evil": [WritesMarker(marker)]}, dtype=object), protocol=4), "pathlib"),
    }


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess", "reduce to Path.touch",
                                  "custom class", "nested"])
def test_hostile_pickle_is_refused_and_never_run(tmp_path, name):
    marker = tmp_path / "marker"
    payload, refused_global = hostile_payloads(marker)[name]
    path = npz_with_object_payload(tmp_path / "data_3d_h36m.npz", payload)
    with pytest.raises(DataError) as info:
        load_npz(path)
    message = str(info.value)
    assert "data_3d_h36m.npz" in message and refused_global in message and "Fix:" in message
    assert not marker.exists()


def test_plain_arrays_never_unpickled(tmp_path):
    path = tmp_path / "plain.npz"
    arrays = {"f32": np.arange(12, dtype=np.float32).reshape(3, 4), "fortran": np.asfortranarray(np.eye(3)[:, :2]),
              "scalar": np.array(7, dtype=np.int64), "empty": np.zeros((0, 17, 2)), "text": np.array(["a", "bc"])}
    np.savez(path, **arrays)
    loaded = load_npz(path)
    assert set(loaded) == set(arrays)
    for key, expected in arrays.items():
        assert loaded[key].dtype == expected.dtype and loaded[key].shape == expected.shape
        np.testing.assert_array_equal(loaded[key], expected)


def test_videopose3d_style_object_payload_is_unwrapped(tmp_path):
    positions = {"S1": {"Waiting 1": np.random.default_rng(0).random((4, 32, 3)).astype(np.float32)}}
    metadata = {"num_joints": 17, "keypoints_symmetry": [[4, 5, 6], [1, 2, 3]], "count": np.int64(3)}
    path = tmp_path / "vp3d.npz"
    np.savez_compressed(path, positions_3d=positions, metadata=metadata)
    loaded = load_npz(path)
    assert loaded["metadata"] == metadata
    np.testing.assert_array_equal(loaded["positions_3d"]["S1"]["Waiting 1"], positions["S1"]["Waiting 1"])


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_pickle_protocol_of_numpy_arrays_is_read(tmp_path, protocol):
    value = {"S9": {"Sitting 1": [np.arange(6, dtype=np.float32).reshape(1, 3, 2)] * 4}, "n": (1, 2.5, None)}
    payload = pickle.dumps(np.array(value, dtype=object), protocol=protocol)
    loaded = load_npz(npz_with_object_payload(tmp_path / "p.npz", payload, "positions_2d"))["positions_2d"]
    assert loaded["n"] == (1, 2.5, None)
    np.testing.assert_array_equal(loaded["S9"]["Sitting 1"][3], value["S9"]["Sitting 1"][3])


def test_save_npz_round_trip_and_numpy_compatibility(tmp_path):
    positions = {"S1": {"Waiting 1": [np.full((3, 17, 2), i, np.float32) for i in range(4)]}}
    metadata = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6], [1, 2, 3]]}
    path = tmp_path / "out.npz"
    save_npz(path, positions_2d=positions, metadata=metadata, plain=np.arange(5.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]  # no .npz appended, no temp left
    ours = load_npz(path)
    theirs = np.load(path, allow_pickle=True)
    for loaded in (ours["positions_2d"], theirs["positions_2d"].item()):
        np.testing.assert_array_equal(loaded["S1"]["Waiting 1"][2], positions["S1"]["Waiting 1"][2])
    assert ours["metadata"] == metadata == theirs["metadata"].item()
    np.testing.assert_array_equal(ours["plain"], np.arange(5.0))


def test_save_npz_pickles_name_numpy_by_its_portable_path(tmp_path):
    path = tmp_path / "out.npz"
    save_npz(path, positions_3d={"S1": {"Walking": np.zeros((2, 32, 3), np.float32)}})
    payload = zipfile.ZipFile(path).read("positions_3d.npy")
    assert b"numpy.core.multiarray" in payload and b"numpy._core" not in payload


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nothere.npz: file not found"):
        load_npz(tmp_path / "nothere.npz")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "bad member", "short data"])
def test_corrupt_archives(tmp_path, damage):
    path = tmp_path / "broken.npz"
    if damage == "garbage":
        path.write_bytes(os.urandom(300))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        np.savez_compressed(path, positions_3d={"S1": {"Walking": np.random.default_rng(1).random((50, 32, 3))}})
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "bad member":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("positions_3d.npy", b"this is not an npy file")
    else:  # header promises 100 floats, data has 3
        header = io.BytesIO()
        npy_format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (100,)})
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("x.npy", header.getvalue() + np.zeros(3, np.float32).tobytes())
    with pytest.raises(DataError, match="broken.npz: not a readable .npz archive"):
        load_npz(path)


def test_object_payload_that_is_not_its_declared_array(tmp_path):
    path = npz_with_object_payload(tmp_path / "odd.npz", pickle.dumps({"S1": {}}, protocol=4))
    with pytest.raises(DataError, match="odd.npz: .*payload is not"):
        load_npz(path)


def test_garbage_pickle_payload(tmp_path):
    path = npz_with_object_payload(tmp_path / "odd.npz", b"\x80\x04\x95garbage")
    with pytest.raises(DataError, match="odd.npz: .*bad pickle payload"):
        load_npz(path)
