"""A seeded model of a 2D keypoint detector's errors (the embedded data's ``noisy`` source).

Applied per (subject, clip, camera) to the exact ``gt`` projection, shape (T, 17, 2) pixels:

1. Jitter: zero-mean Gaussian with a per-joint standard deviation (:data:`JOINT_SIGMA_PX`:
   torso 4 px, shoulders 4.5, head 5, knees and elbows 6, ankles and wrists 8), correlated in
   time as an AR(1) process with coefficient :data:`AR_COEFFICIENT` per 50 fps frame (a
   correlation time of about 0.1 s), so the error drifts smoothly as a detector's does.
2. Gross errors: each joint in each frame, with probability :data:`OUTLIER_RATE`, is displaced
   by 30-60 px in a uniformly random direction (a detection on the wrong limb or background).
3. Left/right swaps: with probability :data:`SWAP_RATE` a frame has the legs, the arms or the
   whole body's left and right labels exchanged (the classic detector confusion).

The resulting error is about 7.5 px mean, 6.3 px median and 34 px at the 99th percentile on
figures some 300 px tall.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from lifting.skeleton import H36M17

#: Per-joint jitter standard deviation, pixels, h36m17 order.
JOINT_SIGMA_PX = np.array([4.0, 4.0, 6.0, 8.0, 4.0, 6.0, 8.0, 4.0, 4.0,
                           5.0, 5.0, 4.5, 6.0, 8.0, 4.5, 6.0, 8.0])
AR_COEFFICIENT = 0.8
OUTLIER_RATE = 0.01
OUTLIER_RANGE_PX = (30.0, 60.0)
SWAP_RATE = 0.005

_LEG_PAIRS = [(1, 4), (2, 5), (3, 6)]
_ARM_PAIRS = [(11, 14), (12, 15), (13, 16)]


def detector_noise(gt_px: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Corrupt exact projections the way a 2D detector would.

    Args:
        gt_px: (T, 17, 2) exact pixel coordinates of one camera's view of one sequence, in time order.
        rng: the seeded generator for this sequence and camera.
    Returns:
        (T, 17, 2) noisy pixel coordinates, float64.
    """
    if gt_px.ndim != 3 or gt_px.shape[1:] != (H36M17.num_joints, 2):
        raise ValueError(f"expected (T, 17, 2) pixel coordinates, got {gt_px.shape}")
    num_frames = len(gt_px)
    innovation = rng.standard_normal(gt_px.shape) * np.sqrt(1.0 - AR_COEFFICIENT**2)
    # AR(1) along time, started from its stationary distribution so the first frame is not special.
    innovation[0] /= np.sqrt(1.0 - AR_COEFFICIENT**2)
    jitter = lfilter([1.0], [1.0, -AR_COEFFICIENT], innovation, axis=0) * JOINT_SIGMA_PX[None, :, None]
    noisy = gt_px + jitter

    outlier = rng.random((num_frames, H36M17.num_joints)) < OUTLIER_RATE
    angle = rng.uniform(0.0, 2.0 * np.pi, outlier.shape)
    radius = rng.uniform(*OUTLIER_RANGE_PX, outlier.shape)
    offset = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * radius[..., None]
    noisy = noisy + offset * outlier[..., None]

    swap_frames = np.flatnonzero(rng.random(num_frames) < SWAP_RATE)
    swap_kind = rng.integers(0, 3, len(swap_frames))
    for frame, kind in zip(swap_frames, swap_kind):
        pairs = (_LEG_PAIRS, _ARM_PAIRS, _LEG_PAIRS + _ARM_PAIRS)[kind]
        for left, right in pairs:
            noisy[frame, [left, right]] = noisy[frame, [right, left]]
    return noisy
