"""Camera model, coordinate frames, projection and similarity Procrustes (numpy).

Conventions (those of the Human3.6M release as used by VideoPose3D, methods.md §1.3):

* World and camera coordinates are in millimetres. The camera frame is x right, y down, z forward.
* A camera's ``orientation`` is a unit quaternion (w, x, y, z) that rotates camera-frame vectors
  into the world frame; ``translation`` is the camera centre in world coordinates (mm).
* Projection is the pinhole model with radial (k1, k2, k3) and tangential (p1, p2) distortion of
  VideoPose3D's ``project_to_2d``; pixel coordinates have their origin at the top-left corner.
* Screen normalisation maps x in [0, w] to [-1, 1] and keeps the aspect ratio:
  ``u_norm = u / w * 2 - 1``, ``v_norm = v / w * 2 - h / w``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """One calibrated camera.

    Attributes:
        id: camera identifier (for Human3.6M the serial number, e.g. "54138969").
        width, height: image size in pixels.
        focal: (fx, fy) in pixels.
        center: (cx, cy) principal point in pixels.
        radial: (k1, k2, k3) radial distortion.
        tangential: (p1, p2) tangential distortion.
        orientation: (w, x, y, z) unit quaternion, camera -> world rotation.
        translation: (3,) camera centre in world coordinates, mm.
    """

    id: str
    width: int
    height: int
    focal: tuple[float, float]
    center: tuple[float, float]
    radial: tuple[float, float, float]
    tangential: tuple[float, float]
    orientation: tuple[float, float, float, float]
    translation: tuple[float, float, float]

    def world_to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """(..., 3) world mm -> (..., 3) camera-frame mm."""
        return world_to_camera(points_world, np.asarray(self.orientation), np.asarray(self.translation))

    def camera_to_world(self, points_camera: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame mm -> (..., 3) world mm."""
        return camera_to_world(points_camera, np.asarray(self.orientation), np.asarray(self.translation))

    def project(self, points_camera: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame points -> (..., 2) distorted pixel coordinates."""
        return project_to_2d(points_camera, self.focal, self.center, self.radial, self.tangential)

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (..., 2) screen-normalised coordinates for this camera's image."""
        return normalize_screen_coordinates(pixels, self.width, self.height)


def _unit(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (w, x, y, z), broadcasting."""
    q = _unit(q)
    w, u = q[..., :1], q[..., 1:]
    v = np.asarray(v, dtype=np.float64)
    uv = np.cross(u, v)
    return v + 2.0 * (w * uv + np.cross(u, uv))


def qinverse(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion (w, x, y, z): its conjugate."""
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([q[..., :1], -q[..., 1:]], axis=-1)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3, 3) rotation matrices."""
    w, x, y, z = np.moveaxis(_unit(q), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def world_to_camera(points_world: np.ndarray, orientation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(..., 3) world -> camera frame: ``R^T (X - t)`` with ``R`` from ``orientation``."""
    rotation = quaternion_to_matrix(orientation)
    return (np.asarray(points_world, dtype=np.float64) - translation) @ rotation


def camera_to_world(points_camera: np.ndarray, orientation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(..., 3) camera frame -> world: ``R Xc + t``."""
    rotation = quaternion_to_matrix(orientation)
    return np.asarray(points_camera, dtype=np.float64) @ rotation.T + translation


def project_to_2d(points_camera: np.ndarray, focal, center, radial, tangential) -> np.ndarray:
    """Pinhole projection with Human3.6M distortion.

    Args:
        points_camera: (..., 3) camera-frame points (any unit), z > 0.
        focal, center: (2,) pixels. radial: (3,) k1..k3. tangential: (2,) p1, p2.
    Returns:
        (..., 2) pixel coordinates. As in the reference implementation the normalised image
        coordinates are clamped to [-1, 1] before distortion (points far outside the field of
        view would otherwise fold back into the image through the polynomial).
    """
    points_camera = np.asarray(points_camera, dtype=np.float64)
    xy = np.clip(points_camera[..., :2] / points_camera[..., 2:3], -1.0, 1.0)
    k = np.asarray(radial, dtype=np.float64)
    p = np.asarray(tangential, dtype=np.float64)
    r2 = np.sum(xy**2, axis=-1, keepdims=True)
    radial_factor = 1.0 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tangential_term = np.sum(p * xy, axis=-1, keepdims=True)
    distorted = xy * (radial_factor + tangential_term) + p * r2
    return distorted * np.asarray(focal) + np.asarray(center)


def normalize_screen_coordinates(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """(..., 2) pixels -> screen-normalised: x in [-1, 1], y in [-h/w, h/w]."""
    return np.asarray(pixels) / width * 2.0 - np.array([1.0, height / width])


def image_coordinates(normalized: np.ndarray, width: int, height: int) -> np.ndarray:
    """Inverse of :func:`normalize_screen_coordinates`."""
    return (np.asarray(normalized) + np.array([1.0, height / width])) * width / 2.0


def similarity_procrustes(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Align each predicted pose to its target with a similarity transform (batched).

    Solves, per pose, ``min_{s, R, t} || s R X + t - Y ||`` over uniform scale ``s > 0``, a proper
    rotation ``R`` (the reflection case is fixed by flipping the sign of the last singular
    vector, so mirrored poses are *not* aligned onto each other) and a translation ``t``.

    Args:
        predicted, target: (..., J, 3) poses in the same unit.
    Returns:
        (..., J, 3) the aligned prediction.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mu_p = predicted.mean(axis=-2, keepdims=True)
    mu_t = target.mean(axis=-2, keepdims=True)
    p0, t0 = predicted - mu_p, target - mu_t
    norm_p = np.sqrt(np.sum(p0**2, axis=(-2, -1), keepdims=True))
    norm_t = np.sqrt(np.sum(t0**2, axis=(-2, -1), keepdims=True))
    norm_p = np.where(norm_p > 0, norm_p, 1.0)
    norm_t = np.where(norm_t > 0, norm_t, 1.0)
    p0, t0 = p0 / norm_p, t0 / norm_t
    # Cross-covariance H = P^T T; R = V U^T maps predicted onto target (applied as p @ R^T).
    u, sigma, vt = np.linalg.svd(np.swapaxes(p0, -1, -2) @ t0)
    v = np.swapaxes(vt, -1, -2)
    sign = np.sign(np.linalg.det(v @ np.swapaxes(u, -1, -2)))
    sign = np.where(sign == 0, 1.0, sign)
    v[..., :, -1] *= sign[..., None]
    sigma[..., -1] *= sign
    rotation = v @ np.swapaxes(u, -1, -2)
    scale = np.sum(sigma, axis=-1)[..., None, None] * norm_t / norm_p
    return scale * (predicted - mu_p) @ np.swapaxes(rotation, -1, -2) + mu_t
