"""The DeepMimic motion clips carried by the pybullet wheel: parsing, resampling and kinematics.

The clips are retargeted real motion capture (CMU and SFU mocap, via DeepMimic, © 2018 Xue Bin
Peng, MIT licence) for the DeepMimic humanoid. Only the package's data folder is read (located
with :func:`importlib.util.find_spec`); pybullet's C extension is never imported.

Clip file format (JSON): ``{"Loop": ..., "Frames": [[44 floats], ...]}``; each frame holds its
duration (s), the root position (3, metres, y up, the character facing +x with its right side at
+z), quaternions (w, x, y, z) for root, chest, neck, right hip, a right-knee angle (rad, about
local z), right ankle and right shoulder quaternions, a right-elbow angle, then the same for the
left side. Several clips store non-unit quaternions: they are normalised before use.

Kinematics: ``R_child = R_parent · R_local`` and ``p_child = p_parent + R_parent · offset``; the
URDF offsets below are already multiplied by the model's 0.25 global scale (metres). Each offset
belongs to a body *segment* so a subject's body is made by scaling segments, then re-running the
kinematics (bone lengths change, joint rotations do not).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from lifting.errors import DataError

#: clip name -> file path relative to pybullet_data/data/motions.
CLIP_FILES = {
    **{name: f"humanoid3d_{name}.txt" for name in (
        "backflip", "cartwheel", "crawl", "dance_a", "dance_b", "getup_facedown", "getup_faceup",
        "jump", "kick", "punch", "roll", "run", "spin", "spinkick", "walk")},
    **{name: f"walker/{name}.txt" for name in (
        "0walk_forward", "turn_left0", "turn_left1", "turn_right0", "turn_right1")},
}

#: Body segments whose lengths a subject may scale.
SEGMENTS = ("pelvis", "thigh", "shin", "spine", "upper_spine", "head", "shoulder", "upper_arm", "forearm")

SPHERICAL, REVOLUTE, FIXED = "spherical", "revolute", "fixed"


@dataclass(frozen=True)
class Joint:
    """A humanoid joint: parent, offset in the parent frame (m), kind, first value in a frame."""

    parent: str
    offset: tuple[float, float, float]
    kind: str
    value_index: int | None
    segment: str


#: The DeepMimic humanoid below the root, in kinematic order (parents first).
HUMANOID = {
    "chest": Joint("root", (0.0, 0.236151, 0.0), SPHERICAL, 8, "spine"),
    "neck": Joint("chest", (0.0, 0.223894, 0.0), SPHERICAL, 12, "upper_spine"),
    "right_hip": Joint("root", (0.0, 0.0, 0.084887), SPHERICAL, 16, "pelvis"),
    "right_knee": Joint("right_hip", (0.0, -0.421546, 0.0), REVOLUTE, 20, "thigh"),
    "right_ankle": Joint("right_knee", (0.0, -0.409870, 0.0), SPHERICAL, 21, "shin"),
    "right_shoulder": Joint("chest", (-0.02405, 0.2435, 0.18311), SPHERICAL, 25, "shoulder"),
    "right_elbow": Joint("right_shoulder", (0.0, -0.274788, 0.0), REVOLUTE, 29, "upper_arm"),
    "right_wrist": Joint("right_elbow", (0.0, -0.258947, 0.0), FIXED, None, "forearm"),
    "left_hip": Joint("root", (0.0, 0.0, -0.084887), SPHERICAL, 30, "pelvis"),
    "left_knee": Joint("left_hip", (0.0, -0.421546, 0.0), REVOLUTE, 34, "thigh"),
    "left_ankle": Joint("left_knee", (0.0, -0.409870, 0.0), SPHERICAL, 35, "shin"),
    "left_shoulder": Joint("chest", (-0.02405, 0.2435, -0.18311), SPHERICAL, 39, "shoulder"),
    "left_elbow": Joint("left_shoulder", (0.0, -0.274788, 0.0), REVOLUTE, 43, "upper_arm"),
    "left_wrist": Joint("left_elbow", (0.0, -0.258947, 0.0), FIXED, None, "forearm"),
}
ROOT_POSITION, ROOT_QUATERNION = slice(1, 4), 4
#: Virtual head points in the neck frame (m): H36M "Neck/Nose" and "Head" (head segment).
NOSE_OFFSET, HEAD_OFFSET = (0.08, 0.14, 0.0), (0.0, 0.25, 0.0)
#: Rest-pose distances (m) not covered by joints: sole below ankle, head-sphere top above neck.
SOLE_BELOW_ANKLE, HEAD_TOP_ABOVE_NECK = 0.05, 0.2775
#: h36m17 order of the humanoid's points ("root", "nose" and "head" are not in HUMANOID).
H36M17_POINTS = ("root", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                 "chest", "neck", "nose", "head", "left_shoulder", "left_elbow", "left_wrist",
                 "right_shoulder", "right_elbow", "right_wrist")


@dataclass
class Clip:
    """One motion clip as time series.

    Attributes:
        name: clip name (a key of :data:`CLIP_FILES`).
        times: (T,) strictly increasing seconds from 0.
        root_position: (T, 3) metres, y up.
        rotations: joint name ("root" and every spherical joint) -> (T, 4) unit quaternions (x, y, z, w).
        angles: revolute joint name -> (T,) radians.
    """

    name: str
    times: np.ndarray
    root_position: np.ndarray
    rotations: dict[str, np.ndarray]
    angles: dict[str, np.ndarray]

    @property
    def duration(self) -> float:
        return float(self.times[-1])


def motion_dir() -> Path:
    """The folder of DeepMimic clips inside the installed pybullet wheel."""
    spec = importlib.util.find_spec("pybullet_data")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(None, "the pybullet_data package (carrier of the embedded mocap clips) is not installed",
                        "run `make setup` (it installs pybullet==3.2.7)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "motions"


def _quaternions(frames: np.ndarray, index: int) -> np.ndarray:
    """(T, 44) frames -> (T, 4) unit quaternions (x, y, z, w) from the (w, x, y, z) at ``index``."""
    q = frames[:, [index + 1, index + 2, index + 3, index]]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def read_clip(path: str | Path, name: str) -> Clip:
    """Parse a clip file; frames with a repeated time stamp are dropped."""
    path = Path(path)
    try:
        frames = np.asarray(json.loads(path.read_text())["Frames"], dtype=np.float64)
    except FileNotFoundError:
        raise DataError(path, "motion clip not found", "run `dvc repro fetch` to copy the clips") from None
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(path, f"not a DeepMimic clip ({err})", "delete it and run `dvc repro fetch`") from None
    if frames.ndim != 2 or frames.shape[1] != 44 or len(frames) < 2 or not np.isfinite(frames).all():
        raise DataError(path, f"expected a (T>=2, 44) finite frame array, got shape {frames.shape}",
                        "delete it and run `dvc repro fetch`")
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    keep = np.concatenate([[True], np.diff(times) > 1e-9])
    frames, times = frames[keep], times[keep]
    rotations = {"root": _quaternions(frames, ROOT_QUATERNION)}
    angles = {}
    for joint_name, joint in HUMANOID.items():
        if joint.kind == SPHERICAL:
            rotations[joint_name] = _quaternions(frames, joint.value_index)
        elif joint.kind == REVOLUTE:
            angles[joint_name] = frames[:, joint.value_index].copy()
    return Clip(name, times, frames[:, ROOT_POSITION].copy(), rotations, angles)


def sample_clip(clip: Clip, query_times: np.ndarray) -> Clip:
    """Resample a clip at ``query_times`` (s, within [0, duration]): linear for positions and
    angles, spherical-linear for rotations."""
    query_times = np.clip(query_times, 0.0, clip.duration)
    position = np.stack([np.interp(query_times, clip.times, clip.root_position[:, i]) for i in range(3)], 1)
    rotations = {name: Slerp(clip.times, Rotation.from_quat(q))(query_times).as_quat()
                 for name, q in clip.rotations.items()}
    angles = {name: np.interp(query_times, clip.times, a) for name, a in clip.angles.items()}
    return Clip(clip.name, query_times, position, rotations, angles)


def forward_kinematics(clip: Clip, segment_scale: dict[str, float] | None = None) -> np.ndarray:
    """Joint positions of the h36m17 skeleton.

    Args:
        clip: T frames of joint parameters.
        segment_scale: length factor per body segment (missing segments: 1). The root
            trajectory is scaled by the leg-length ratio so the feet stay on the ground.
    Returns:
        (T, 17, 3) metres, y up, in the clip's world frame, h36m17 order.
    """
    scale = {segment: 1.0 for segment in SEGMENTS}
    scale.update(segment_scale or {})
    positions, frames = link_frames(clip, scale)
    neck = frames["neck"]
    positions["nose"] = positions["neck"] + neck.apply(np.array(NOSE_OFFSET) * scale["head"])
    positions["head"] = positions["neck"] + neck.apply(np.array(HEAD_OFFSET) * scale["head"])
    return np.stack([positions[name] for name in H36M17_POINTS], axis=1)


def link_frames(clip: Clip, scale: dict[str, float]) -> tuple[dict[str, np.ndarray], dict[str, Rotation]]:
    """Every link's origin ((T, 3) metres) and orientation (T rotations) in the clip's world frame.

    ``scale``: a length factor for every segment of :data:`SEGMENTS`.
    """
    positions = {"root": clip.root_position * leg_ratio(scale)}
    frames = {"root": Rotation.from_quat(clip.rotations["root"])}
    identity = Rotation.identity(len(clip.times))
    for joint_name, joint in HUMANOID.items():
        parent = frames[joint.parent]
        positions[joint_name] = positions[joint.parent] + parent.apply(np.array(joint.offset) * scale[joint.segment])
        if joint.kind == SPHERICAL:
            local = Rotation.from_quat(clip.rotations[joint_name])
        elif joint.kind == REVOLUTE:
            local = Rotation.from_rotvec(np.outer(clip.angles[joint_name], [0.0, 0.0, 1.0]))
        else:
            local = identity
        frames[joint_name] = parent * local
    return positions, frames


def mirror_clip(clip: Clip) -> Clip:
    """The clip's mirror image: reflected across the character's sagittal plane (z -> -z) with left
    and right exchanged, in joint-rotation space.

    A reflection ``M = diag(1, 1, -1)`` turns a rotation ``R`` into ``M R M``, the quaternion
    ``(x, y, z, w)`` into ``(-x, -y, z, w)``; revolute joints turn about local z, which the
    reflection keeps. The humanoid's left and right offsets are each other's reflections, so the
    kinematics of the mirrored clip give the reflected joints of the original, left and right
    relabelled, and every link (and the body surface on it) is where the mirror puts it.
    """
    def swap(name: str) -> str:
        return name.replace("right_", "\0").replace("left_", "right_").replace("\0", "left_")

    reflect = np.array([-1.0, -1.0, 1.0, 1.0])
    rotations = {swap(name): q * reflect for name, q in clip.rotations.items()}
    angles = {swap(name): a.copy() for name, a in clip.angles.items()}
    return Clip(clip.name, clip.times, clip.root_position * np.array([1.0, 1.0, -1.0]), rotations, angles)


def leg_ratio(segment_scale: dict[str, float]) -> float:
    """Length of the scaled leg (thigh + shin) over the model's."""
    thigh = -HUMANOID["right_knee"].offset[1]
    shin = -HUMANOID["right_ankle"].offset[1]
    return (thigh * segment_scale["thigh"] + shin * segment_scale["shin"]) / (thigh + shin)


def stature(segment_scale: dict[str, float]) -> float:
    """Standing height (m) of a body, sole to the top of the head sphere, in the rest pose."""
    s = segment_scale
    return (SOLE_BELOW_ANKLE * s["shin"] - HUMANOID["right_ankle"].offset[1] * s["shin"]
            - HUMANOID["right_knee"].offset[1] * s["thigh"] + HUMANOID["chest"].offset[1] * s["spine"]
            + HUMANOID["neck"].offset[1] * s["upper_spine"] + HEAD_TOP_ABOVE_NECK * s["head"])


def copy_clips(dest_dir: str | Path) -> dict:
    """Copy the clip files out of the pybullet wheel into ``dest_dir``.

    Returns:
        A manifest: each clip's path, size and sha256, plus the credits of the data.
    """
    source_dir = motion_dir()
    dest_dir = Path(dest_dir)
    files = {}
    for name, relative in CLIP_FILES.items():
        source, target = source_dir / relative, dest_dir / relative
        if not source.is_file():
            raise DataError(source, "motion clip missing from the pybullet wheel", "reinstall with `make clean setup`")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        data = target.read_bytes()
        files[name] = {"path": relative, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return {"source": "pybullet==3.2.7 pybullet_data/data/motions", "clips": files,
            "credits": "DeepMimic clips (c) 2018 Xue Bin Peng, MIT licence; retargeted from the CMU Graphics "
                       "Lab Motion Capture Database and the SFU Motion Capture Database; carried by pybullet (zlib)."}
