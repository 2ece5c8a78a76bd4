"""MPI-INF-3DHP's test set, from the user's licensed files, into the canonical tables (methods.md §12).

The user supplies the folder of the test set (``data.mpi3dhp_dir``) with ``TS1`` .. ``TS6``, each
holding ``annot_data.mat``: a MATLAB v7.3 file, i.e. HDF5, read with h5py. MATLAB stores arrays
column-major, so h5py sees each one with its axes reversed:

=======================  ==========================  ===================  ================================
field                    MATLAB                      h5py                 content
=======================  ==========================  ===================  ================================
``annot2``               2 x 17 x 1 x n              (n, 1, 17, 2)        2D joints, image pixels
``univ_annot3``          3 x 17 x 1 x n              (n, 1, 17, 3)        3D joints, camera frame, mm,
                                                                          scaled to Human3.6M's
                                                                          "universal" skeleton
``valid_frame``          1 x n (or n x 1)            (n, 1) (or (1, n))   1 where the frame is scored
``activity_annotation``  1 x n (or n x 1)            (n, 1) (or (1, n))   activity 1..7 of every frame
=======================  ==========================  ===================  ================================

(``annot3``, the unscaled 3D, is not read: the official metrics use ``univ_annot3``.) The 17 joints
are 3DHP's (:data:`MPI3DHP_JOINTS`), re-ordered to h36m17 (:data:`MPI3DHP_TO_H36M17`). Each
sequence is one subject with one camera (TS1-TS4: the studio camera, 2048 x 2048; TS5-TS6: an
outdoor GoPro, 1920 x 1080), whose intrinsics come from the test set's calibration files
(:data:`CAMERAS`); the 3D is already in the camera frame, so the camera sits at the world origin
and the screen normalisation of the 2D uses its image size. Frames are kept whole (a temporal
method sees every frame); ``valid`` marks the scored ones.

Bad input (a missing folder or field, shapes that disagree, no valid frame, NaN in a valid frame,
an unknown activity) is one :class:`~lifting.errors.DataError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from lifting.data.schema import StoreTables, cameras_to_frame, poses_to_frame
from lifting.errors import DataError
from lifting.geometry import Camera
from lifting.skeleton import H36M17

log = logging.getLogger(__name__)

#: The store's data source (its tables' metadata).
SOURCE = "mpi3dhp"
SEQUENCES = ("TS1", "TS2", "TS3", "TS4", "TS5", "TS6")
FILE = "annot_data.mat"
#: The fields read from every ``annot_data.mat``.
FIELDS = ("annot2", "univ_annot3", "valid_frame", "activity_annotation")
#: 3DHP's 17 test joints in file order (``mpii_get_joints('relevant')``).
MPI3DHP_JOINTS = ("head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
                  "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                  "pelvis", "spine", "head")
#: For each h36m17 joint, the 3DHP joint it is (methods.md §12): pelvis, the legs, spine, neck -> Thorax,
#: head -> the Nose slot, head_top -> Head, the arms.
MPI3DHP_TO_H36M17 = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
#: ``mpii_get_activity_name.m``: the names of activities 1..7.
ACTIVITIES = ("Standing/Walking", "Exercising", "Sitting", "Reaching/Crouching", "On The Floor", "Sports",
              "Miscellaneous")


def _camera(name: str, width: int, height: int, sensor_mm: tuple[float, float], focal_mm: float, aspect: float,
            offset_mm: tuple[float, float], distortion: tuple[float, float, float, float, float]) -> Camera:
    """A camera from a ``.calib`` file's numbers: focal length and principal-point offset in mm on a
    sensor of ``sensor_mm``, pixel aspect y / x, OpenCV distortion (k1, k2, p1, p2, k3)."""
    fx = focal_mm / sensor_mm[0] * width
    k1, k2, p1, p2, k3 = distortion
    return Camera(id=name, width=width, height=height, focal=(fx, fx * aspect),
                  center=(width / 2 + offset_mm[0] / sensor_mm[0] * width,
                          height / 2 + offset_mm[1] / sensor_mm[1] * height),
                  radial=(k1, k2, k3), tangential=(p1, p2), orientation=(1.0, 0.0, 0.0, 0.0),
                  translation=(0.0, 0.0, 0.0))


#: The test set's two cameras, from its calibration files (``test_util/camera_calibration/ts1-4cameras.calib``
#: and ``ts5-6cameras.calib``).
STUDIO = _camera("cam_8", 2048, 2048, (10.0, 10.0), 7.32506, 1.00044, (-0.0322884, 0.0929296), (0.0,) * 5)
OUTDOOR = _camera("GOPR0046", 1920, 1080, (10.0, 5.625), 8.770747185, 0.993236423, (-0.104908645, 0.104899704),
                  (-0.276859611, 0.131125256, -0.000360494, -0.001149441, -0.049318332))
CAMERAS = {"TS1": STUDIO, "TS2": STUDIO, "TS3": STUDIO, "TS4": STUDIO, "TS5": OUTDOOR, "TS6": OUTDOOR}

_FIX = "use the test set's own annot_data.mat (MPI-INF-3DHP's mpi_inf_3dhp_test_set, TS1..TS6), unchanged"


def annot_path(root: Path, sequence: str) -> Path:
    return Path(root) / sequence / FILE


def _field(annot: h5py.File, name: str, path: Path) -> np.ndarray:
    if name not in annot:
        raise DataError(path, f"no field {name!r} (fields: {sorted(annot)})", _FIX)
    value = annot[name]
    if not isinstance(value, h5py.Dataset) or not np.issubdtype(value.dtype, np.number):
        raise DataError(path, f"field {name!r} is not a numeric array", _FIX)
    return np.asarray(value[()], dtype=np.float64)


def _joints(value: np.ndarray, channels: int, name: str, path: Path) -> np.ndarray:
    """(n, 1, 17, C) or (n, 17, C) as h5py reads MATLAB's C x 17 x 1 x n -> (n, 17, C)."""
    if value.ndim == 4 and value.shape[1] == 1:
        value = value[:, 0]
    if value.ndim != 3 or value.shape[1:] != (17, channels):
        raise DataError(path, f"field {name!r} has shape {value.shape} as HDF5 stores it; expected (n, 1, 17, "
                              f"{channels}) (MATLAB's {channels} x 17 x 1 x n)", _FIX)
    return value


def _per_frame(value: np.ndarray, name: str, path: Path) -> np.ndarray:
    """(n, 1) or (1, n) -> (n,)."""
    if value.ndim != 2 or 1 not in value.shape:
        raise DataError(path, f"field {name!r} has shape {value.shape}; expected one value per frame (n x 1)", _FIX)
    return value.reshape(-1)


def _fill_invalid(poses: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """(n, 17, C) with every frame that is not all ``finite`` replaced by the nearest one that is."""
    rows, frames = np.flatnonzero(finite), np.arange(len(poses))
    after = rows[np.clip(np.searchsorted(rows, frames), 0, len(rows) - 1)]
    before = rows[np.clip(np.searchsorted(rows, frames) - 1, 0, len(rows) - 1)]
    nearest = np.where(np.abs(frames - before) <= np.abs(after - frames), before, after)
    return np.where(finite[:, None, None], poses, poses[nearest])


def read_sequence(path: Path) -> dict[str, np.ndarray]:
    """One ``annot_data.mat``: ``{"annot2": (n, 17, 2) px, "univ_annot3": (n, 17, 3) mm`` (both in 3DHP's
    joint order), ``"valid": (n,) bool, "activity": (n,) int 1..7}``.

    Non-finite joints in frames that are not valid are replaced by the nearest finite frame's (a temporal
    method sees them, the metrics do not); in a valid frame they are an error.
    """
    if not path.is_file():
        raise DataError(path, "file not found", f"set data.mpi3dhp_dir to the folder holding {', '.join(SEQUENCES)} "
                                                f"(each with {FILE}), or to null to skip MPI-INF-3DHP")
    try:
        with h5py.File(path, "r") as annot:
            values = {name: _field(annot, name, path) for name in FIELDS}
    except OSError as err:
        raise DataError(path, f"not a readable MATLAB v7.3 (HDF5) file ({err})", _FIX) from None
    poses = {"annot2": _joints(values["annot2"], 2, "annot2", path),
             "univ_annot3": _joints(values["univ_annot3"], 3, "univ_annot3", path)}
    flags = {name: _per_frame(values[name], name, path) for name in ("valid_frame", "activity_annotation")}
    counts = {name: len(v) for name, v in {**poses, **flags}.items()}
    if len(set(counts.values())) > 1:
        raise DataError(path, f"the fields' frame counts disagree: {counts}", _FIX)
    if not np.isin(flags["valid_frame"], (0, 1)).all():
        raise DataError(path, "field 'valid_frame' holds values other than 0 and 1", _FIX)
    valid = flags["valid_frame"] == 1
    if not valid.any():
        raise DataError(path, "field 'valid_frame' marks no frame valid: nothing to score", _FIX)
    activity = flags["activity_annotation"]
    known = np.isin(activity, np.arange(1, len(ACTIVITIES) + 1))
    if not known[valid].all():
        raise DataError(path, f"field 'activity_annotation' has values {sorted(set(activity[valid & ~known]))[:5]} in "
                              f"valid frames; expected 1..{len(ACTIVITIES)}", _FIX)
    for name, value in poses.items():
        finite = np.isfinite(value).all(axis=(1, 2))
        if not finite[valid].all():
            first = int(np.flatnonzero(valid & ~finite)[0])
            raise DataError(path, f"field {name!r}: NaN or infinite joints in {int((valid & ~finite).sum())} valid "
                                  f"frame(s), first at frame {first}", _FIX)
        poses[name] = _fill_invalid(value, finite)
    return {**poses, "valid": valid, "activity": np.where(known, activity, 0).astype(np.int64)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_mpi3dhp(root: str | Path) -> tuple[StoreTables, dict]:
    """The six test sequences under ``root`` as canonical tables, and a manifest of the files read.

    Returns:
        StoreTables: ``poses3d`` (subject = sequence = "TS1".., action = the frame's activity name
        (``"unknown"`` in frames that are not valid and have none), frame, ``valid``, h36m17 ``univ_annot3``
        in the camera frame, mm), ``poses2d`` (source ``gt``: ``annot2``, pixels), ``cameras``
        (:data:`CAMERAS`; the camera at the world origin), ``sources2d = ["gt"]``.
        The manifest: ``{"source", "mpi3dhp_dir", "files": {"TS1/annot_data.mat": {"sha256", "bytes",
        "frames", "valid_frames"}, ...}}``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "no such folder", "set data.mpi3dhp_dir to the folder of MPI-INF-3DHP's test set "
                                                f"({', '.join(SEQUENCES)}), or to null to skip it")
    poses3d, poses2d, files = [], [], {}
    order = list(MPI3DHP_TO_H36M17)
    for sequence in SEQUENCES:
        path = annot_path(root, sequence)
        data = read_sequence(path)
        n = len(data["valid"])
        keys = {"subject": sequence, "sequence": sequence, "frame": np.arange(n, dtype=np.int32)}
        names = np.array(("unknown", *ACTIVITIES), dtype=object)[data["activity"]]
        poses3d.append(pd.concat([pd.DataFrame({**keys, "action": names, "valid": data["valid"]})
                                  [["subject", "action", "sequence", "frame", "valid"]],
                                  poses_to_frame(data["univ_annot3"][:, order], H36M17, "xyz")], axis=1))
        poses2d.append(pd.concat([pd.DataFrame({**keys, "camera": CAMERAS[sequence].id, "source": "gt"})
                                  [["subject", "sequence", "camera", "source", "frame"]],
                                  poses_to_frame(data["annot2"][:, order], H36M17, "uv")], axis=1))
        files[f"{sequence}/{FILE}"] = {"sha256": _sha256(path), "bytes": path.stat().st_size, "frames": n,
                                       "valid_frames": int(data["valid"].sum())}
        log.info("%s: %d frames, %d valid", path, n, data["valid"].sum())
    cameras = cameras_to_frame({sequence: [CAMERAS[sequence]] for sequence in SEQUENCES})
    tables = StoreTables(pd.concat(poses3d, ignore_index=True), pd.concat(poses2d, ignore_index=True), cameras, ["gt"])
    return tables, {"source": SOURCE, "mpi3dhp_dir": str(root), "files": files}
