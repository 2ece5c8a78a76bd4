"""Tiny Human3.6M files in exactly the VideoPose3D format, made in code.

The 3D is a moving stick figure in the capture volume: 32 mocap slots in world metres, float32,
with the 17 kept joints in their slots and unrelated numbers in the 15 dropped slots (so a reader
that picks the wrong slots fails). The 2D is that figure projected through each subject's real
cameras (with distortion), in pixels, sometimes a few frames longer than the 3D, as in the real
files. Files are written with ``np.savez_compressed`` of dicts, as VideoPose3D's scripts do.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib import format as npy_format

from lifting.data.h36m_cameras import CAMERA_IDS, h36m_cameras
from lifting.data.schema import StoreTables, cameras_to_frame, poses_to_frame
from lifting.skeleton import H36M17, H36M32_TO_H36M17

#: subject -> {sequence: 3D frame count}. Raw-H36M names (TakingPhoto, WalkingDog) and numbered
#: and un-numbered keys; S11 has no Directions, as in data_3d_h36m.npz.
SEQUENCES = {
    "S1": {"Directions": 5, "TakingPhoto": 6, "Waiting 1": 8, "WalkingDog 1": 7},
    "S9": {"Photo 1": 5, "Sitting 1": 5, "SittingDown": 6},
    "S11": {"Waiting 1": 6, "Walking": 5},
}
ACTIONS = {"Directions": "Directions", "TakingPhoto": "Photo", "Waiting 1": "Waiting", "WalkingDog 1": "WalkDog",
           "Photo 1": "Photo", "Sitting 1": "Sitting", "SittingDown": "SittingDown", "Walking": "Walking"}
#: 2D longer than 3D by this many frames.
EXTRA_2D = {("S1", "Waiting 1"): 3, ("S9", "SittingDown"): 2}
#: 2D-only content of the detection files: S11 Directions, and an uncalibrated subject.
ONLY_2D = {"S11": {"Directions": 4}, "S2": {"Walking 1": 4}}

GT_METADATA = {"num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
H36M_METADATA = {"layout_name": "h36m", **GT_METADATA}

# h36m17 stick figure around the pelvis, mm, z up, facing -y.
_TEMPLATE_MM = np.array([
    [0, 0, 0], [-130, 0, 0], [-130, 10, -440], [-130, 0, -880], [130, 0, 0], [130, 10, -440], [130, 0, -880],
    [0, 0, 230], [0, 0, 480], [0, -60, 580], [0, 0, 680], [170, 0, 450], [180, -20, 170], [170, -60, -80],
    [-170, 0, 450], [-180, -20, 170], [-170, -60, -80]], dtype=np.float64)


def rng_for(*keys: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(keys).encode()))


def motion_mm(subject: str, sequence: str, frames: int) -> np.ndarray:
    """(frames, 17, 3) world mm: the figure turned, placed in the capture volume and swaying."""
    rng = rng_for(subject, sequence, "motion")
    heading = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(heading), np.sin(heading)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    t = np.arange(frames)[:, None, None]
    sway = 40.0 * np.sin(0.3 * t + rng.uniform(0, 2 * np.pi, size=(1, 17, 3)))
    origin = np.array([rng.uniform(-500, 500), rng.uniform(-500, 500), 950.0])
    return (_TEMPLATE_MM + sway) @ rotation.T + origin + np.array([5.0, 3.0, 0.0]) * t


def to_mocap32_m(poses_mm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 17, 3) mm -> (N, 32, 3) float32 metres, junk in the 15 dropped slots."""
    poses32 = rng.uniform(-3.0, 3.0, size=(len(poses_mm), 32, 3))
    poses32[:, list(H36M32_TO_H36M17)] = poses_mm / 1000.0
    return poses32.astype(np.float32)


def project_px(subject: str, poses_mm: np.ndarray) -> list[np.ndarray]:
    """(N, 17, 3) world mm -> 4 arrays (N, 17, 2) float32 pixels, in CAMERA_IDS order."""
    return [cam.project(cam.world_to_camera(poses_mm)).astype(np.float32) for cam in h36m_cameras(subject)]


@dataclass
class H36MFixture:
    """What was written: the directory and the truth to compare against.

    Attributes:
        directory: holds data_3d_h36m.npz and data_2d_h36m_<source>.npz.
        positions_3d: {subject: {sequence: (N, 32, 3) float32 m}} as written.
        world_mm: {(subject, sequence): (N, 17, 3) float64 mm}, the kept joints of positions_3d.
        pixels: {source: {subject: {sequence: [4 arrays (M, 17, C)]}}} as written (M >= N).
    """

    directory: Path
    positions_3d: dict
    world_mm: dict
    pixels: dict


def positions_2d_for(world_mm_long: dict, confidence: bool, seed: str) -> dict:
    """{subject: {sequence: [4 arrays]}} projected from ``world_mm_long``; with a third channel if asked."""
    positions = {}
    for (subject, sequence), poses in world_mm_long.items():
        cameras = project_px(subject if subject != "S2" else "S1", poses)
        if confidence:
            rng = rng_for(seed, subject, sequence)
            cameras = [np.concatenate([px, rng.uniform(0.2, 1.0, px.shape[:2] + (1,)).astype(np.float32)], -1)
                       for px in cameras]
        positions.setdefault(subject, {})[sequence] = cameras
    return positions


def write_h36m_fixture(directory: Path, sources: tuple[str, ...] = ("gt", "cpn_ft_h36m_dbb"),
                       confidence_sources: tuple[str, ...] = ()) -> H36MFixture:
    """Write data_3d_h36m.npz and one 2D file per source into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    positions_3d, world_mm, world_mm_long = {}, {}, {}
    for subject, sequences in SEQUENCES.items():
        for sequence, frames in sequences.items():
            long = motion_mm(subject, sequence, frames + EXTRA_2D.get((subject, sequence), 0))
            poses32 = to_mocap32_m(long[:frames], rng_for(subject, sequence, "junk"))
            positions_3d.setdefault(subject, {})[sequence] = poses32
            world_mm[(subject, sequence)] = poses32[:, list(H36M32_TO_H36M17)].astype(np.float64) * 1000.0
            world_mm_long[(subject, sequence)] = long
    for subject, sequences in ONLY_2D.items():
        for sequence, frames in sequences.items():
            world_mm_long[(subject, sequence)] = motion_mm(subject, sequence, frames)
    np.savez_compressed(directory / "data_3d_h36m.npz", positions_3d=positions_3d)
    pixels = {}
    for source in sources:
        pixels[source] = positions_2d_for(world_mm_long, source in confidence_sources, source)
        write_2d(directory, source, pixels[source], GT_METADATA if source == "gt" else H36M_METADATA)
    return H36MFixture(directory, positions_3d, world_mm, pixels)


def write_3d(directory: Path, positions_3d: dict) -> Path:
    path = directory / "data_3d_h36m.npz"
    np.savez_compressed(path, positions_3d=positions_3d)
    return path


def write_2d(directory: Path, source: str, positions_2d: dict, metadata: dict | None = GT_METADATA) -> Path:
    path = directory / f"data_2d_h36m_{source}.npz"
    if metadata is None:
        np.savez_compressed(path, positions_2d=positions_2d)
    else:
        np.savez_compressed(path, positions_2d=positions_2d, metadata=metadata)
    return path


def tables_from_fixture(fixture: H36MFixture, sources: tuple[str, ...]) -> StoreTables:
    """The canonical tables the fixture stands for, built directly (not through the reader)."""
    poses3d, poses2d = [], []
    for (subject, sequence), world in fixture.world_mm.items():
        frames = np.arange(len(world), dtype=np.int32)
        keys = pd.DataFrame({"subject": subject, "action": ACTIONS[sequence], "sequence": sequence, "frame": frames})
        poses3d.append(pd.concat([keys, poses_to_frame(world, H36M17, "xyz")], axis=1))
        for source in sources:
            for camera_id, px in zip(CAMERA_IDS, fixture.pixels[source][subject][sequence]):
                keys2d = pd.DataFrame({"subject": subject, "sequence": sequence, "camera": camera_id,
                                       "source": source, "frame": frames})
                poses2d.append(pd.concat([keys2d, poses_to_frame(px[: len(world), :, :2], H36M17, "uv")], axis=1))
    cameras = cameras_to_frame({subject: h36m_cameras(subject) for subject in SEQUENCES})
    return StoreTables(pd.concat(poses3d, ignore_index=True), pd.concat(poses2d, ignore_index=True),
                       cameras, list(sources))


def npz_with_object_payload(path: Path, payload: bytes, key: str = "positions_3d") -> Path:
    """An .npz whose member ``key`` is a 0-d object array with ``payload`` (raw pickle bytes)."""
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": ()})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{key}.npy", header.getvalue() + payload)
    return path
