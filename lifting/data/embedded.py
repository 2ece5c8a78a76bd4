"""The embedded default dataset: real mocap performed by seven virtual subjects, seen by H36M cameras.

Recipe (every random draw is seeded from ``crc32`` of the subject, clip and purpose, so the build
is bit-for-bit reproducible):

1. **Bodies.** Each subject has an overall scale (:data:`SUBJECT_SCALE`) times a per-segment factor
   ``1 + U(-5 %, +5 %)`` (left and right share it). Kinematics are re-run with the scaled segments,
   so bone lengths are the subject's own and constant. Statures (sole to head top) span
   1.55-1.89 m; the test subjects S9 and S11 fall inside the training range.
2. **Performances.** Each subject performs each clip its own way, applied *before* kinematics:

   * a time warp: speed ``U(0.85, 1.15)`` with a ``±10 %`` sinusoidal modulation of period 1-2 s;
   * joint-rotation "style": on the 8 spherical joints a constant rotation offset
     (per-axis σ = :data:`STYLE_CONSTANT_RAD`) plus a smooth AR(1) term (σ = :data:`STYLE_SMOOTH_RAD`,
     time constant :data:`STYLE_TIME_CONSTANT_S`), post-multiplied onto the local rotation;
     knees and elbows get 0.7 times that on their angle, clamped to their anatomical range.
     Together these are perturbations of the order of ±10°;
   * with probability 0.5, the whole performance is mirrored (left and right exchanged).

   Without this, every test pose is an exact copy of a training pose on another body, and a
   nearest-neighbour lookup would win P-MPJPE (see the design notes).
3. **Placement.** The performance is lifted or lowered so that its lowest sole touches the floor
   (style perturbations can otherwise push a lying body's feet through it). The clip's root
   trajectory is centred, turned to a heading ``U(-180°, 180°)``
   and moved to a point drawn uniformly on a disc of radius :data:`PLACEMENT_RADIUS_MM` around the
   capture-volume centre; y-up metres become the Human3.6M z-up world in millimetres.
4. **Cameras.** The subject's four real Human3.6M cameras, with lens distortion; the ``gt`` 2D
   source is the exact projection, ``noisy`` adds the detector-error model of
   :mod:`lifting.data.noise2d`.

Actions: the 20 clips grouped into 13 actions (:data:`CLIP_ACTIONS`); the sequence name is the clip.
Numbers on this data are real but not comparable with published Human3.6M numbers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.spatial.transform import Rotation

from lifting.data import deepmimic
from lifting.data.h36m_cameras import h36m_cameras
from lifting.data.noise2d import detector_noise
from lifting.data.schema import StoreTables, cameras_to_frame, poses_to_frame
from lifting.data.surface.markers import POSED_BY_ROTATIONS, pose_markers, surface_hierarchy
from lifting.skeleton import H36M17

FPS = 50.0
TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
#: Overall body scale of each virtual subject (1.0 is the DeepMimic model, 1.62 m tall).
SUBJECT_SCALE = {"S1": 1.025, "S5": 0.94, "S6": 1.111, "S7": 1.0, "S8": 1.18, "S9": 1.087, "S11": 1.05}
SEGMENT_JITTER = 0.05
SPEED_RANGE = (0.85, 1.15)
SPEED_MODULATION = 0.10
MODULATION_PERIOD_S = (1.0, 2.0)
STYLE_CONSTANT_RAD = 0.04
STYLE_SMOOTH_RAD = 0.06
STYLE_TIME_CONSTANT_S = 0.4
HINGE_STYLE_FACTOR = 0.7
HINGE_RANGE_RAD = {"knee": (-2.8, 0.0), "elbow": (0.0, 2.45)}
MIRROR_PROBABILITY = 0.5
PLACEMENT_RADIUS_MM = 1000.0
FOOT_JOINTS = [H36M17.index("RFoot"), H36M17.index("LFoot")]
#: y-up (x forward, z right) metres -> Human3.6M world (z up), a proper rotation.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

CLIP_ACTIONS = {
    "backflip": "Backflip", "cartwheel": "Cartwheel", "crawl": "Crawl",
    "dance_a": "Dance", "dance_b": "Dance", "getup_facedown": "GetUp", "getup_faceup": "GetUp",
    "jump": "Jump", "kick": "Kick", "spinkick": "Kick", "punch": "Punch", "roll": "Roll",
    "run": "Run", "spin": "Spin", "walk": "Walk", "0walk_forward": "Walk",
    "turn_left0": "Turn", "turn_left1": "Turn", "turn_right0": "Turn", "turn_right1": "Turn",
}


def seeded_rng(*keys: str) -> np.random.Generator:
    """A generator seeded by the crc32 of the keys, so each draw is reproducible on its own."""
    return np.random.default_rng(zlib.crc32("/".join(keys).encode()))


def subject_body(subject: str) -> dict[str, float]:
    """Per-segment length factors of a virtual subject."""
    rng = seeded_rng(subject, "body")
    jitter = rng.uniform(-SEGMENT_JITTER, SEGMENT_JITTER, len(deepmimic.SEGMENTS))
    return {segment: SUBJECT_SCALE[subject] * (1.0 + j) for segment, j in zip(deepmimic.SEGMENTS, jitter)}


def warped_times(duration: float, rng: np.random.Generator) -> np.ndarray:
    """Clip times (s) sampled at 50 fps of *performance* time under a smooth speed profile.

    ``speed(τ) = s0 (1 + m sin(2π τ / P + φ))``; clip time is its integral, in closed form.
    """
    s0 = rng.uniform(*SPEED_RANGE)
    period = rng.uniform(*MODULATION_PERIOD_S)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    omega = 2.0 * np.pi / period
    tau = np.arange(0.0, 2.0 * duration / SPEED_RANGE[0], 1.0 / FPS)
    clip_time = s0 * (tau - SPEED_MODULATION / omega * (np.cos(omega * tau + phase) - np.cos(phase)))
    return clip_time[clip_time <= duration]


def _smooth_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) noise along axis 0 with std ``sigma`` and time constant STYLE_TIME_CONSTANT_S."""
    rho = np.exp(-1.0 / (FPS * STYLE_TIME_CONSTANT_S))
    innovation = rng.standard_normal(shape) * np.sqrt(1.0 - rho**2)
    innovation[0] /= np.sqrt(1.0 - rho**2)
    return sigma * lfilter([1.0], [1.0, -rho], innovation, axis=0)


def perform(clip: deepmimic.Clip, rng: np.random.Generator) -> deepmimic.Clip:
    """One subject's performance of a clip: time-warped and with joint-rotation style (50 fps)."""
    performed = deepmimic.sample_clip(clip, warped_times(clip.duration, rng))
    num_frames = len(performed.times)
    for joint_name in sorted(performed.rotations):
        if joint_name == "root":
            continue
        style = rng.normal(0.0, STYLE_CONSTANT_RAD, 3) + _smooth_noise((num_frames, 3), STYLE_SMOOTH_RAD, rng)
        local = Rotation.from_quat(performed.rotations[joint_name]) * Rotation.from_rotvec(style)
        performed.rotations[joint_name] = local.as_quat()
    for joint_name in sorted(performed.angles):
        sigma = HINGE_STYLE_FACTOR
        style = rng.normal(0.0, sigma * STYLE_CONSTANT_RAD) + _smooth_noise((num_frames,), sigma * STYLE_SMOOTH_RAD, rng)
        low, high = HINGE_RANGE_RAD["knee" if "knee" in joint_name else "elbow"]
        performed.angles[joint_name] = np.clip(performed.angles[joint_name] + style, low, high)
    return performed


@dataclass(frozen=True)
class Placement:
    """Where a performance goes in the Human3.6M world: ``world = R (1000 y_up_to_z_up p) + t`` (mm).

    Attributes:
        lift_mm: added to z before centring (puts the lowest sole on the floor).
        centre_mm: (2,) the root trajectory's mean x, y, removed before turning.
        yaw: heading (rad) about the world z axis. offset_mm: (2,) final position on the floor.
    """

    lift_mm: float
    centre_mm: np.ndarray
    yaw: float
    offset_mm: np.ndarray

    def apply(self, points_m: np.ndarray) -> np.ndarray:
        """(..., 3) y-up metres in the clip's frame -> (..., 3) world millimetres."""
        world = 1000.0 * points_m @ Y_UP_TO_Z_UP.T
        world[..., 2] += self.lift_mm
        world[..., :2] -= self.centre_mm
        cos, sin = np.cos(self.yaw), np.sin(self.yaw)
        world[..., :2] = world[..., :2] @ np.array([[cos, -sin], [sin, cos]]).T + self.offset_mm
        return world


def placement(joints_m: np.ndarray, rng: np.random.Generator, sole_mm: float) -> Placement:
    """The placement of a performance ((T, 17, 3) y-up metres): the lowest sole of the sequence
    on the floor (z = 0; ``sole_mm`` is the ankle joint's height above the sole), the root
    trajectory centred, a random heading and a random point on the floor disc."""
    world = 1000.0 * joints_m @ Y_UP_TO_Z_UP.T
    lift = sole_mm - world[:, FOOT_JOINTS, 2].min()
    centre = world[:, 0, :2].mean(axis=0)
    yaw = rng.uniform(-np.pi, np.pi)
    radius = PLACEMENT_RADIUS_MM * np.sqrt(rng.uniform())
    angle = rng.uniform(0.0, 2.0 * np.pi)
    return Placement(lift, centre, yaw, radius * np.array([np.cos(angle), np.sin(angle)]))


def subject_performance(clip: deepmimic.Clip, subject: str) -> tuple[deepmimic.Clip, dict[str, float], Placement]:
    """``subject``'s performance of ``clip`` (time-warped, styled, mirrored with probability
    :data:`MIRROR_PROBABILITY`), the subject's segment scales and the performance's placement."""
    rng = seeded_rng(subject, clip.name, "performance")
    mirror = rng.uniform() < MIRROR_PROBABILITY
    performed = perform(clip, rng)
    if mirror:  # in joint-rotation space, so that the body surface is mirrored with its labels too
        performed = deepmimic.mirror_clip(performed)
    body = subject_body(subject)
    joints_m = deepmimic.forward_kinematics(performed, body)
    return performed, body, placement(joints_m, rng, 1000.0 * deepmimic.SOLE_BELOW_ANKLE * body["shin"])


def build_embedded(motion_dir: str | Path, subjects=TRAIN_SUBJECTS + TEST_SUBJECTS,
                   clips=tuple(deepmimic.CLIP_FILES)) -> StoreTables:
    """Build the canonical tables of the embedded dataset.

    Args:
        motion_dir: folder holding the clip files at their :data:`deepmimic.CLIP_FILES` paths.
        subjects, clips: a subset, for tests.
    Returns:
        StoreTables with 2D sources ``gt`` and ``noisy``, and HGN's body-surface markers
        (:mod:`lifting.data.surface.markers`) posed like the joints.
    """
    motion_dir = Path(motion_dir)
    loaded = {name: deepmimic.read_clip(motion_dir / deepmimic.CLIP_FILES[name], name) for name in clips}
    hierarchy = surface_hierarchy()
    marker_columns = hierarchy.marker_columns()
    poses3d, poses2d, markers = [], [], []
    for subject in subjects:
        cameras = h36m_cameras(subject)
        for name, clip in loaded.items():
            performed, body, placed = subject_performance(clip, subject)
            world = placed.apply(deepmimic.forward_kinematics(performed, body))
            on_surface = placed.apply(pose_markers(hierarchy, performed, body)).astype(np.float32)
            frames = np.arange(len(world), dtype=np.int32)
            keys = pd.DataFrame({"subject": subject, "action": CLIP_ACTIONS[name], "sequence": name, "frame": frames})
            poses3d.append(pd.concat([keys, poses_to_frame(world, H36M17, "xyz")], axis=1))
            markers.append(pd.concat([keys, pd.DataFrame(on_surface.reshape(len(world), -1), columns=marker_columns)],
                                     axis=1))
            for camera in cameras:
                gt_px = camera.project(camera.world_to_camera(world))
                noisy_px = detector_noise(gt_px, seeded_rng(subject, name, camera.id, "noise"))
                for source, pixels in (("gt", gt_px), ("noisy", noisy_px)):
                    keys2d = pd.DataFrame({"subject": subject, "sequence": name, "camera": camera.id,
                                           "source": source, "frame": frames})
                    poses2d.append(pd.concat([keys2d, poses_to_frame(pixels, H36M17, "uv")], axis=1))
    cameras_table = cameras_to_frame({subject: h36m_cameras(subject) for subject in subjects})
    return StoreTables(pd.concat(poses3d, ignore_index=True), pd.concat(poses2d, ignore_index=True),
                       cameras_table, ["gt", "noisy"], pd.concat(markers, ignore_index=True),
                       hierarchy.graph(POSED_BY_ROTATIONS))
