"""Pictures of a lifted track: the 2D input over a blank canvas beside the 3D skeleton.

Headless (matplotlib's Agg canvas on a :class:`~matplotlib.figure.Figure`, no pyplot state); 3D
axes use ``set_box_aspect`` so bones keep their proportions; bones come from the h36m17 parent
table. Frames whose keypoints were interpolated are titled "filled".
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lifting.io import atomic_path
from lifting.skeleton import H36M17

#: At most this many frames go into a GIF (a longer track is strided).
GIF_FRAMES = 300
_LEFT = set(H36M17.left)


def _colour(joint: int) -> str:
    return "tab:blue" if joint in _LEFT else ("tab:red" if joint in H36M17.right else "0.3")


def _limits(body_mm: np.ndarray) -> float:
    return float(np.abs(body_mm).max()) * 1.05 or 1.0


def _draw_2d(ax, pose_px: np.ndarray, size: tuple[int, int]) -> list:
    """One (17, 2) pixel pose on a blank ``size`` = (W, H) image (y down); returns the line artists."""
    lines = []
    for child, parent in H36M17.bones:
        lines += ax.plot(*pose_px[[parent, child]].T, color=_colour(child), lw=2)
    ax.set_xlim(0, size[0])
    ax.set_ylim(size[1], 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return lines


def _draw_3d(ax, pose_mm: np.ndarray, limit: float) -> list:
    """One (17, 3) camera-frame pose drawn x right, z into the picture, -y up."""
    shown = np.stack([pose_mm[:, 0], pose_mm[:, 2], -pose_mm[:, 1]], axis=-1)
    lines = []
    for child, parent in H36M17.bones:
        lines += ax.plot(*shown[[parent, child]].T, color=_colour(child), lw=2)
    for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
        setter(-limit, limit)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=15, azim=-70)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("z (mm)")
    ax.set_zlabel("-y (mm)")
    return lines


def _title(frame: int, filled: bool) -> str:
    return f"frame {frame}" + (" (filled)" if filled else "")


def frames_png(path: Path, pixels: np.ndarray, size: tuple[int, int], body_mm: np.ndarray, frames: np.ndarray,
               filled: np.ndarray) -> None:
    """A PNG with one row per chosen frame: (n, 17, 2) h36m17 pixels on the (W, H) image | (n, 17, 3) 3D mm."""
    count = len(frames)
    fig = Figure(figsize=(8, 4 * count))
    FigureCanvasAgg(fig)
    limit = _limits(body_mm)
    for row in range(count):
        ax2 = fig.add_subplot(count, 2, 2 * row + 1)
        _draw_2d(ax2, pixels[row], size)
        ax2.set_title(f"2D input, {_title(int(frames[row]), bool(filled[row]))}")
        ax3 = fig.add_subplot(count, 2, 2 * row + 2, projection="3d")
        _draw_3d(ax3, body_mm[row], limit)
        ax3.set_title("3D, root-relative")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)


def animation_gif(path: Path, pixels: np.ndarray, size: tuple[int, int], body_mm: np.ndarray, frames: np.ndarray,
                  filled: np.ndarray, fps: float) -> None:
    """An animated GIF of the track (every ``ceil(T / GIF_FRAMES)``-th frame, played at ``fps``)."""
    step = max(1, math.ceil(len(frames) / GIF_FRAMES))
    rows = np.arange(0, len(frames), step)
    fig = Figure(figsize=(8, 4))
    FigureCanvasAgg(fig)
    ax2, ax3 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2, projection="3d")
    limit = _limits(body_mm)

    def update(i: int):
        ax2.cla()
        ax3.cla()
        _draw_2d(ax2, pixels[rows[i]], size)
        ax2.set_title(_title(int(frames[rows[i]]), bool(filled[rows[i]])))
        return _draw_3d(ax3, body_mm[rows[i]], limit)

    animation = FuncAnimation(fig, update, frames=len(rows), blit=False)
    with atomic_path(path) as tmp, tempfile.TemporaryDirectory(dir=path.parent) as folder:
        # Pillow picks the format from the name's suffix, which the atomic temporary lacks.
        animation.save(Path(folder) / "animation.gif", writer=PillowWriter(fps=max(1.0, fps / step)))
        shutil.move(Path(folder) / "animation.gif", tmp)
