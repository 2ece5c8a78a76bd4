"""Robustness to worse 2D: seeded perturbations of the test 2D (in pixels), and a run's P1 under them.

Four kinds, each at increasing levels whose first is 0 (no change):

* ``jitter``: Gaussian noise on every coordinate of every joint of every frame, standard deviation
  ``level`` pixels (a detector's imprecision).
* ``gross``: each joint of each frame, with probability ``level`` (the share of joints), is moved to
  a point drawn uniformly in the person's 2D bounding box in that frame (the box of its unperturbed
  joints): a detector's outlier, e.g. a wrist found on the knee.
* ``swap``: each frame, with probability ``level`` (the share of frames), has its left and right
  keypoints exchanged (the joint set's flip permutation; the coordinates are not mirrored): a
  detector's left/right confusion.
* ``missing``: a share ``level`` of each joint's frames is missing, in occlusions of
  ``missing_frames`` consecutive frames (each run's frames cut into blocks of that length from frame
  0; each block of each joint is missing with probability ``level``; 1 = frames independently), and
  replaced as a method gets it in practice, from the other frames of its track: linearly interpolated over time
  between the nearest frames of the same run (subject, sequence, camera) where that joint is present
  (VideoPose3D's preparation of detections), the nearest present frame's value beyond a run's first
  or last present frame, and the training mean of that joint's input where it is missing in every
  frame of its run. A single-frame method gets the same filled frames as a temporal one.

The perturbation is a property of the test frames, not of the method: the random numbers are drawn
per run, indexed by frame number, from a generator seeded by (``seed``, the kind, the run's keys)
alone, so every method (and every call order, and any subset of whole runs) gets the same
perturbation of a frame. The levels of a kind share their random numbers (a level scales the
noise or thresholds the same uniform draws), so the joints moved at 10 % include those moved at 5 %.
Screen-normalised 2D (``u = x / w * 2 - 1``, :mod:`lifting.geometry`) is ``2 / w`` units per pixel;
jitter is converted through each row's image width, the other kinds do not depend on the scale
(a uniform point of the normalised box is a uniform point of the pixel box).

A perturbation is applied to whole runs (the missing-joint fill reads the neighbouring frames),
then every ``test_stride``-th frame (:func:`subsample_rows`) is scored: a temporal method from its
windows over the perturbed runs, so it sees the same corrupted frames as a single-frame method.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from lifting import metrics
from lifting.data.align import ROW_KEYS
from lifting.data.schema import cameras_from_frame, read_table
from lifting.errors import DataError

#: The perturbations, in report order.
KINDS = ("jitter", "gross", "swap", "missing")
#: Each kind's levels in params.yaml's ``robustness`` section, and the unit of its levels.
LEVEL_KEYS = {"jitter": "jitter_px", "gross": "gross_share", "swap": "swap_share", "missing": "missing_share"}
UNITS = {"jitter": "px", "gross": "share of joints", "swap": "share of frames", "missing": "share of joints"}
#: Each kind's name in the report.
TITLES = {"jitter": "Gaussian jitter", "gross": "gross errors", "swap": "left/right swaps", "missing": "missing joints"}
#: One line per kind, written into the metrics file's protocol block and the report.
DESCRIPTIONS = {
    "jitter": "Gaussian noise of sigma = level pixels on every coordinate of every joint",
    "gross": "a share of joints (each joint of each frame with that probability) moved to a uniform point in the "
             "person's 2D bounding box of that frame",
    "swap": "a share of frames whose left and right keypoints are exchanged (labels, not coordinates)",
    "missing": "a share of joints missing, in occlusions of robustness.missing_frames consecutive frames, each "
               "filled by linear interpolation over time between the nearest frames "
               "of its run where it is present (the nearest present frame at a run's ends; the training mean if "
               "absent from the whole run)",
}


def level_label(kind: str, level: float) -> str:
    """A level as the metrics file's key: ``"5px"`` for jitter, ``"10%"`` for a share."""
    return f"{level:g}px" if kind == "jitter" else f"{level * 100:g}%"


@dataclass(frozen=True)
class Clean2D:
    """The unperturbed test 2D of whole runs, in one joint set (h36m17 for the pipeline).

    Attributes:
        inputs: (N, J, 2) float32 screen-normalised 2D.
        meta: (N rows) the keys subject, sequence, camera and frame (every frame of each run).
        width_px: (N,) the image width of each row's camera, pixels.
        fill: (J, 2) screen-normalised fallback for a joint missing in every frame of its run (the
            training rows' mean input).
        flip: (J,) the joint set's left/right permutation (:meth:`lifting.skeleton.JointSet.flip_permutation`).
    """

    inputs: np.ndarray
    meta: pd.DataFrame
    width_px: np.ndarray
    fill: np.ndarray
    flip: np.ndarray


def _runs(meta: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """Each run's key ("subject/sequence/camera") and rows (in the order of ``meta``)."""
    groups = meta.groupby(ROW_KEYS[:3], sort=False).indices  # subject, sequence, camera
    return [("/".join(map(str, key)), rows) for key, rows in groups.items()]


def _draws(meta: pd.DataFrame, seed: int, kind: str, stream: int, shape: tuple[int, ...],
           normal: bool = False) -> np.ndarray:
    """(N, *shape) random numbers per row: standard normal, or uniform in [0, 1).

    Each run draws an array indexed by frame number (0 .. its last frame) from a generator seeded
    by (seed, kind, stream, the run's key), so a frame's numbers depend on its keys alone, not on
    the other rows asked for (numpy's generators fill arrays element by element in order, so a run
    given up to a later frame draws the same numbers for its earlier frames)."""
    out = np.empty((len(meta), *shape))
    frames = meta["frame"].to_numpy(np.int64)
    for key, rows in _runs(meta):
        rng = np.random.default_rng([seed, KINDS.index(kind), stream, zlib.crc32(key.encode())])
        count = (int(frames[rows].max()) + 1, *shape)
        values = rng.standard_normal(count) if normal else rng.random(count)
        out[rows] = values[frames[rows]]
    return out


def fill_missing(inputs: np.ndarray, meta: pd.DataFrame, missing: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """(N, J, 2) ``inputs`` with the ``missing`` (N, J) joints replaced from their run's other frames.

    Per run (subject, sequence, camera) and joint: linear interpolation over the frame number
    between the nearest frames where the joint is present, the nearest present frame's value
    before the first and after the last, and ``fill[j]`` (J, 2) where it is missing in every frame."""
    out = np.array(inputs, copy=True)
    frames = meta["frame"].to_numpy(np.float64)
    for _, rows in _runs(meta):
        rows = rows[np.argsort(frames[rows], kind="stable")]
        gone = missing[rows]
        for joint in np.flatnonzero(gone.any(axis=0)):
            lost, have = rows[gone[:, joint]], rows[~gone[:, joint]]
            if not len(have):
                out[lost, joint] = fill[joint]
                continue
            for axis in range(inputs.shape[-1]):
                out[lost, joint, axis] = np.interp(frames[lost], frames[have], inputs[have, joint, axis])
    return out


def perturb(frames: Clean2D, kind: str, level: float, seed: int, missing_frames: int = 1) -> np.ndarray:
    """(N, J, 2) float32: ``frames.inputs`` perturbed by ``kind`` at ``level`` (see the module
    docstring; level 0 returns the inputs unchanged); ``missing_frames``: an occlusion's length."""
    x, meta = frames.inputs.astype(np.float64), frames.meta
    joints = x.shape[1]
    if kind == "jitter":
        noise = _draws(meta, seed, kind, 0, (joints, 2), normal=True)
        out = x + level * noise * (2.0 / frames.width_px)[:, None, None]
    elif kind == "gross":
        moved = _draws(meta, seed, kind, 0, (joints,)) < level
        low, high = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
        anywhere = low + _draws(meta, seed, kind, 1, (joints, 2)) * (high - low)
        out = np.where(moved[..., None], anywhere, x)
    elif kind == "swap":
        swapped = _draws(meta, seed, kind, 0, ()) < level
        out = np.where(swapped[:, None, None], x[:, frames.flip], x)
    elif kind == "missing":
        blocks = meta.assign(frame=meta["frame"].to_numpy(np.int64) // missing_frames)  # one draw per occlusion
        out = fill_missing(x, meta, _draws(blocks, seed, kind, 0, (joints,)) < level, frames.fill)
    else:
        raise ValueError(f"unknown perturbation {kind!r}; known: {list(KINDS)}")
    return out.astype(np.float32)


def image_widths(path: str | Path, meta) -> np.ndarray:
    """(N,) the image width (pixels) of each row's camera, from the store's ``cameras.parquet``."""
    frame, _ = read_table(path, {"table": "cameras"})
    widths = {key: camera.width for key, camera in cameras_from_frame(frame).items()}
    keys = list(zip(meta["subject"], meta["camera"]))
    absent = sorted({key for key in keys if key not in widths})
    if absent:
        raise DataError(path, f"no camera {absent[0][1]} of subject {absent[0][0]} (and {len(absent) - 1} more)",
                        "re-run `dvc repro normalize align`")
    return np.array([widths[key] for key in keys], np.float64)


def subsample_rows(meta: pd.DataFrame, stride: int) -> np.ndarray:
    """(n,) sorted rows: every ``stride``-th frame of each run, from a first frame in [0, stride)
    fixed by the run's keys (so the cameras of one sequence show different moments), the same
    for every method."""
    offset = np.empty(len(meta), np.int64)
    for key, rows in _runs(meta):
        offset[rows] = zlib.crc32(key.encode()) % stride
    return np.flatnonzero((meta["frame"].to_numpy() - offset) % stride == 0)


def score(predictions_mm: list[np.ndarray], targets_mm: np.ndarray, actions: np.ndarray, joint_names) -> dict:
    """P1 and P2 (action-mean, mm) of each seed's (n, J, 3) prediction against (n, J, 3) targets,
    averaged over the seeds: ``{"p1_mm", "p2_mm"}``."""
    p1 = [metrics.summarize(metrics.joint_errors_mpjpe(p, targets_mm), actions, joint_names)["action_mean"]
          for p in predictions_mm]
    p2 = [metrics.summarize(metrics.joint_errors_p_mpjpe(p, targets_mm), actions, joint_names)["action_mean"]
          for p in predictions_mm]
    return {"p1_mm": round(float(np.mean(p1)), 2), "p2_mm": round(float(np.mean(p2)), 2)}


def curves(predict: Callable[[np.ndarray], list[np.ndarray]], frames: Clean2D, levels: dict, seed: int,
           scored: Callable[[list[np.ndarray]], dict], missing_frames: int = 1) -> dict:
    """``{kind: {level label: scores}}`` for every kind and level of ``levels`` (``{kind: levels}``).

    ``predict``: (N, J, 2) perturbed whole runs -> one (n, J, 3) prediction per seed of the scored
    rows; ``scored``: those predictions -> their scores (:func:`score`). Level 0 is the
    unperturbed input, predicted once for every kind; ``missing_frames``: an occlusion's length."""
    clean = scored(predict(frames.inputs))
    return {kind: {level_label(kind, level):
                   clean if level == 0 else scored(predict(perturb(frames, kind, level, seed, missing_frames)))
                   for level in levels[kind]}
            for kind in KINDS}
