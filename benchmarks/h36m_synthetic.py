"""A synthetic Human3.6M at full size, in the VideoPose3D files the fetch stage reads: for time and memory only.

Usage (repository root, venv active, after `dvc repro normalize` on the embedded data)::

    python -m benchmarks.h36m_synthetic --out /tmp/h36m-full [--scale 1.0] [--seed 0]

Writes ``data_3d_h36m.npz`` (32 mocap slots, world metres, float32), ``data_2d_h36m_gt.npz`` (the
exact projections, pixels) and ``data_2d_h36m_cpn_ft_h36m_dbb.npz`` (CPN-style detections: the
exact projections through :func:`lifting.data.noise2d.detector_noise`, a few frames longer than the
mocap as the real files are) in ``--out``. Nothing is downloaded and nothing is committed.

Shape of the real dataset:

* the seven subjects with mocap (S1, S5, S6, S7, S8 trained on; S9, S11 scored), the 15 actions,
  two sub-actions each (``"<Action>"`` and ``"<Action> 1"``), S11 "Directions" absent as in the real
  files, each seen by the four cameras with the subject's real calibration;
* frame counts: each split's total is VideoPose3D's (1,559,752 training and 543,344 test views, four
  per mocap frame), spread over its sequences with a seeded +-50 % spread (the real per-sequence
  counts are not in our references, so the sequence lengths are not the real ones).

Motion: each sequence strings together clips of the embedded mocap (``--store``'s ``poses3d``), each
clip turned about the vertical by a random yaw, moved within 1 m of the capture-volume centre and
scaled about the pelvis by the subject's size (0.9-1.1, seeded per subject). It is not for accuracy:
the numbers that mean something are seconds, bytes and peak memory.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lifting.data.h36m import FILE_3D, H36M_ACTIONS, MM_PER_M, file_2d, to_h36m32
from lifting.data.h36m_cameras import SUBJECTS, h36m_cameras
from lifting.data.noise2d import detector_noise
from lifting.data.safe_npz import save_npz
from lifting.data.schema import poses_from_frame
from lifting.skeleton import H36M17

#: VideoPose3D's view counts (four cameras per mocap frame): training S1, S5-S8; test S9, S11.
TRAIN_VIEWS = 1_559_752
TEST_VIEWS = 543_344
TEST_SUBJECTS = ("S9", "S11")
DETECTION_SOURCE = "cpn_ft_h36m_dbb"
#: The real detection files run a few frames past the mocap (the reader truncates them).
EXTRA_2D_FRAMES = 4
#: Clips are placed within this radius (mm) of the capture-volume centre, the origin of H36M's world.
PLACEMENT_MM = 1000.0


def sequence_names(subject: str) -> list[tuple[str, str]]:
    """(action, VideoPose3D key) of every sequence of ``subject``: two per action, S11 Directions absent."""
    names = [(action, key) for action in H36M_ACTIONS for key in (action, f"{action} 1")]
    return [(a, key) for a, key in names if not (subject == "S11" and a == "Directions")]


def sequence_lengths(rng: np.random.Generator, scale: float) -> dict[tuple[str, str], int]:
    """{(subject, key): mocap frames}, each split summing to its VideoPose3D views / 4 (times ``scale``)."""
    lengths = {}
    for subjects, views in ((tuple(s for s in SUBJECTS if s not in TEST_SUBJECTS), TRAIN_VIEWS),
                            (TEST_SUBJECTS, TEST_VIEWS)):
        keys = [(subject, key) for subject in subjects for _, key in sequence_names(subject)]
        weights = rng.uniform(0.5, 1.5, len(keys))
        total = round(views / 4 * scale)
        counts = np.floor(weights / weights.sum() * total).astype(int)
        counts[: total - counts.sum()] += 1  # exact total
        lengths.update(zip(keys, counts.tolist()))
    return lengths


def embedded_clips(store: Path) -> list[np.ndarray]:
    """The embedded mocap's clips: each (T, 17, 3) world mm, its mean pelvis moved above the floor's origin."""
    poses3d = pd.read_parquet(store / "poses3d.parquet")
    clips = []
    for _, group in poses3d.groupby(["subject", "sequence"], sort=True):
        poses = poses_from_frame(group.sort_values("frame"), H36M17, "xyz").astype(np.float64)
        poses[..., :2] -= poses[:, 0, :2].mean(axis=0)  # world z is up
        clips.append(poses)
    return clips


def sequence_motion(clips: list[np.ndarray], length: int, size: float, rng: np.random.Generator) -> np.ndarray:
    """(length, 17, 3) world mm: random clips, each yawed, placed and scaled about the pelvis."""
    pieces, total = [], 0
    while total < length:
        clip = clips[rng.integers(len(clips))]
        yaw = rng.uniform(0.0, 2.0 * np.pi)
        rotation = np.array([[np.cos(yaw), -np.sin(yaw), 0.0], [np.sin(yaw), np.cos(yaw), 0.0], [0.0, 0.0, 1.0]])
        pelvis = clip[:, :1]
        posed = (pelvis + (clip - pelvis) * size) @ rotation.T
        posed[..., :2] += rng.uniform(-PLACEMENT_MM, PLACEMENT_MM, 2) / np.sqrt(2.0)
        pieces.append(posed)
        total += len(posed)
    return np.concatenate(pieces)[:length]


def generate(out: Path, store: Path, scale: float, seed: int) -> dict:
    """Write the three files into ``out``; returns their sizes and the counts."""
    rng = np.random.default_rng(seed)
    clips = embedded_clips(store)
    lengths = sequence_lengths(rng, scale)
    sizes = {subject: rng.uniform(0.9, 1.1) for subject in SUBJECTS}
    positions_3d: dict[str, dict[str, np.ndarray]] = {}
    gt_2d: dict[str, dict[str, list[np.ndarray]]] = {}
    detected_2d: dict[str, dict[str, list[np.ndarray]]] = {}
    for (subject, key), length in lengths.items():
        # the detections run past the mocap: simulate the longer sequence and cut the 3D and gt
        world = sequence_motion(clips, length + EXTRA_2D_FRAMES, sizes[subject], rng)
        positions_3d.setdefault(subject, {})[key] = to_h36m32((world[:length] / MM_PER_M).astype(np.float32))
        views = [camera.project(camera.world_to_camera(world)) for camera in h36m_cameras(subject)]
        gt_2d.setdefault(subject, {})[key] = [view[:length].astype(np.float32) for view in views]
        detected_2d.setdefault(subject, {})[key] = [detector_noise(view, rng).astype(np.float32) for view in views]
    metadata = {"layout_name": "h36m", "num_joints": H36M17.num_joints,
                "keypoints_symmetry": [list(H36M17.left), list(H36M17.right)]}
    out.mkdir(parents=True, exist_ok=True)
    save_npz(out / FILE_3D, positions_3d=positions_3d)
    save_npz(out / file_2d("gt"), positions_2d=gt_2d, metadata=metadata)
    save_npz(out / file_2d(DETECTION_SOURCE), positions_2d=detected_2d, metadata=metadata)
    frames = {split: sum(n for (s, _), n in lengths.items() if (s in TEST_SUBJECTS) == (split == "test"))
              for split in ("train", "test")}
    return {"mocap_frames": frames, "views": {split: 4 * n for split, n in frames.items()},
            "sequences": len(lengths), "seed": seed, "scale": scale,
            "bytes": {path.name: path.stat().st_size for path in sorted(out.glob("*.npz"))}}


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--out", type=Path, required=True, help="folder for the npz files (data.h36m_dir)")
    cli.add_argument("--store", type=Path, default=Path("data/parquet"), help="the embedded store (motions)")
    cli.add_argument("--scale", type=float, default=1.0, help="share of the full frame counts (1.0: full size)")
    cli.add_argument("--seed", type=int, default=0)
    args = cli.parse_args(argv)
    started = time.perf_counter()
    summary = generate(args.out, args.store, args.scale, args.seed)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
