"""Context-Aware PoseFormer's image crop (methods.md §6.1), vectorised over views (numpy).

Upstream (``mvn/datasets/human36m.py _infer_box``) builds the crop box from the **ground-truth 3D
root** in camera coordinates, as we do here: x from root - 1000 mm to root + 1000 mm, y from
root - 900 mm to root + 1100 mm (y points down, so the box reaches further towards the feet),
both corners projected with the pinhole model (focal length and principal point, no distortion).
The box is then widened or heightened about its centre to the crop's aspect ratio width/height
(upstream's 192x256, so 3:4). The crop therefore uses ground-truth information, even when the
lifting network's 2D keypoints come from a detector; we keep that, as upstream does.

Crop pixel convention: a crop of ``width`` x ``height`` pixels covers the image rectangle
``[cx - sw/2, cx + sw/2] x [cy - sh/2, cy + sh/2]`` (centre ``(cx, cy)``, size ``(sw, sh)`` in
original-image pixels), and ``u = (x - (cx - sw/2)) * width / sw``; crop pixel ``i`` has its
centre at ``u = i + 0.5``. The same holds for y with the height.
"""

from __future__ import annotations

import numpy as np

from lifting.geometry import Camera

#: The box around the root, camera frame (mm): x from -1000 to +1000, y from -900 to +1100.
BOX_X_MM = (-1000.0, 1000.0)
BOX_Y_MM = (-900.0, 1100.0)


def crop_boxes(root_camera_mm: np.ndarray, camera: Camera, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """CA-PF's crop boxes for N views.

    Args:
        root_camera_mm: (N, 3) ground-truth root (pelvis) in camera coordinates, mm, z > 0.
        camera: the view's camera (only focal length and principal point are used).
        width, height: the crop size in pixels (its aspect ratio is kept).
    Returns:
        centres (N, 2) and sizes (N, 2) = (box width, box height), original-image pixels.
    """
    root = np.asarray(root_camera_mm, dtype=np.float64).reshape(-1, 3)
    focal, centre = np.asarray(camera.focal, dtype=np.float64), np.asarray(camera.center, dtype=np.float64)
    top_left = root + np.array([BOX_X_MM[0], BOX_Y_MM[0], 0.0])
    bottom_right = root + np.array([BOX_X_MM[1], BOX_Y_MM[1], 0.0])
    tl = top_left[:, :2] / top_left[:, 2:] * focal + centre
    br = bottom_right[:, :2] / bottom_right[:, 2:] * focal + centre
    centres = (tl + br) / 2.0
    box_w, box_h = br[:, 0] - tl[:, 0], br[:, 1] - tl[:, 1]
    aspect = width / height
    wider = box_w > aspect * box_h
    sizes = np.stack([np.where(wider, box_w, box_h * aspect), np.where(wider, box_w / aspect, box_h)], axis=1)
    return centres, sizes


def to_crop(pixels: np.ndarray, centres: np.ndarray, sizes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, J, 2) image pixels -> (N, J, 2) crop pixels of each view's crop (module docstring)."""
    centres = np.asarray(centres, dtype=np.float64)[:, None, :]
    sizes = np.asarray(sizes, dtype=np.float64)[:, None, :]
    return (np.asarray(pixels, dtype=np.float64) - (centres - sizes / 2.0)) * (np.array([width, height]) / sizes)


def from_crop(crop_pixels: np.ndarray, centres: np.ndarray, sizes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Inverse of :func:`to_crop`: (N, J, 2) crop pixels -> (N, J, 2) image pixels."""
    centres = np.asarray(centres, dtype=np.float64)[:, None, :]
    sizes = np.asarray(sizes, dtype=np.float64)[:, None, :]
    return np.asarray(crop_pixels, dtype=np.float64) * (sizes / np.array([width, height])) + centres - sizes / 2.0
