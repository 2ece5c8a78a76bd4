"""A fixture MPI-INF-3DHP test set: ``TS1/annot_data.mat`` .. ``TS6/annot_data.mat`` written from known poses
in exactly the layout of the real files: MATLAB v7.3 (HDF5 behind MATLAB's 512-byte header), each
array stored as MATLAB writes it (column-major, so HDF5 holds MATLAB's ``3 x 17 x 1 x n`` as
``(n, 1, 17, 3)``), double precision, with its ``MATLAB_class`` attribute."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from lifting.data.mpi3dhp import CAMERAS, FILE, MPI3DHP_TO_H36M17, SEQUENCES

#: Frames per sequence (small), and the frames of each that are not valid.
FRAMES = {"TS1": 9, "TS2": 7, "TS3": 6, "TS4": 6, "TS5": 5, "TS6": 8}
INVALID = {"TS1": (0, 4), "TS2": (), "TS3": (5,), "TS4": (), "TS5": (0, 1), "TS6": (7,)}
MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."


@dataclass
class Sequence:
    """One sequence's truth: h36m17-ordered ``poses3d`` (n, 17, 3) camera mm and ``pixels`` (n, 17, 2),
    ``valid`` (n,) bool and ``activity`` (n,) 1..7."""

    poses3d: np.ndarray
    pixels: np.ndarray
    valid: np.ndarray
    activity: np.ndarray


def to_3dhp(h36m17: np.ndarray) -> np.ndarray:
    """(..., 17, C) h36m17 order -> 3DHP's file order."""
    out = np.empty_like(h36m17)
    out[..., list(MPI3DHP_TO_H36M17), :] = h36m17
    return out


def known_sequence(name: str, seed: int) -> Sequence:
    rng = np.random.default_rng(seed)
    n = FRAMES[name]
    body = rng.normal(scale=250.0, size=(n, 17, 3))
    body[:, 0] = 0.0
    poses3d = body + np.array([100.0, 200.0, 4500.0]) + rng.normal(scale=50.0, size=(n, 1, 3))
    camera = CAMERAS[name]
    pixels = poses3d[..., :2] / poses3d[..., 2:] * np.array(camera.focal) + np.array(camera.center)
    valid = np.ones(n, bool)
    valid[list(INVALID[name])] = False
    return Sequence(poses3d, pixels, valid, rng.integers(1, 8, size=n))


def write_annot_data(path: Path, fields: dict[str, np.ndarray]) -> None:
    """Write ``fields`` (each as MATLAB sees it, e.g. ``3 x 17 x 1 x n``) as MATLAB's ``save -v7.3`` does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as annot:
        for name, value in fields.items():
            dataset = annot.create_dataset(name, data=np.asarray(value, dtype=np.float64).T)  # column-major
            dataset.attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as handle:  # MATLAB's text header in the user block
        handle.write(MATLAB_HEADER.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")


def matlab_fields(sequence: Sequence) -> dict[str, np.ndarray]:
    """The fields of one ``annot_data.mat`` in MATLAB's shapes (C x 17 x 1 x n, 1 x n)."""
    in_file = to_3dhp(sequence.poses3d)

    def joints(poses):  # (n, 17, C) -> C x 17 x 1 x n
        return np.transpose(poses, (2, 1, 0))[:, :, None, :]

    return {"annot2": joints(to_3dhp(sequence.pixels)), "annot3": joints(in_file * 1.1),
            "univ_annot3": joints(in_file), "valid_frame": sequence.valid[None].astype(np.float64),
            "activity_annotation": sequence.activity[None].astype(np.float64)}


def write_test_set(root: Path, change: dict[str, dict] | None = None) -> dict[str, Sequence]:
    """All six sequences under ``root``; ``change``: {sequence: {field: MATLAB array, or None to drop it}}."""
    truth = {}
    for k, name in enumerate(SEQUENCES):
        truth[name] = known_sequence(name, k)
        fields = {**matlab_fields(truth[name]), **(change or {}).get(name, {})}
        write_annot_data(root / name / FILE, {key: value for key, value in fields.items() if value is not None})
    return truth
