"""Qualitative examples: a few test frames, the 2D input, the 3D ground truth and each prediction.

3D axes use ``set_box_aspect`` (not ``set_aspect('equal')``), so they survive matplotlib upgrades.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lifting.data.schema import poses_from_frame
from lifting.geometry import image_coordinates
from lifting.report.artefacts import KEYS
from lifting.report.figures import new_figure
from lifting.skeleton import H36M17, JointSet


def select_qualitative_frames(keys: pd.DataFrame, count: int) -> pd.DataFrame:
    """``count`` test frames from different actions, deterministically.

    Actions are taken evenly spaced in sorted order; for each, the first (subject, sequence,
    camera) in sorted order and the middle frame of that sequence.
    """
    if count <= 0 or keys.empty:
        return keys.iloc[:0][KEYS]
    actions = sorted(keys["action"].unique())
    picks = np.unique(np.linspace(0, len(actions) - 1, min(count, len(actions))).round().astype(int))
    rows = []
    for index in picks:
        of_action = keys[keys["action"] == actions[index]]
        first = of_action.sort_values(["subject", "sequence", "camera", "frame"]).iloc[0]
        same = of_action[(of_action["subject"] == first["subject"]) & (of_action["sequence"] == first["sequence"])
                         & (of_action["camera"] == first["camera"])].sort_values("frame")
        rows.append(same.iloc[len(same) // 2][KEYS])
    return pd.DataFrame(rows).reset_index(drop=True)


def common_test_keys(predictions: dict) -> pd.DataFrame:
    """Test rows present in every prediction table."""
    keys = None
    for frame, _ in predictions.values():
        these = frame[KEYS]
        keys = these if keys is None else keys.merge(these, on=KEYS, how="inner")
    return keys.reset_index(drop=True)


def _bone_colour(joint_set: JointSet, child: int) -> str:
    if child in joint_set.left:
        return "#1f77b4"
    if child in joint_set.right:
        return "#d62728"
    return "#333333"


def draw_pose_2d(ax, pixels: np.ndarray, joint_set: JointSet, width: int, height: int) -> None:
    """(J, 2) pixels over the camera's frame box (origin top-left, y down)."""
    ax.add_patch(Rectangle((0, 0), width, height, fill=False, edgecolor="#888888", linewidth=1))
    for child, parent in joint_set.bones:
        ax.plot(pixels[[child, parent], 0], pixels[[child, parent], 1], color=_bone_colour(joint_set, child),
                linewidth=1.5)
    ax.scatter(pixels[:, 0], pixels[:, 1], s=5, color="black", zorder=3)
    ax.set_xlim(-0.05 * width, 1.05 * width)
    ax.set_ylim(1.05 * height, -0.05 * height)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)


def draw_pose_3d(ax, pose_mm: np.ndarray, joint_set: JointSet, radius: float = 1000.0,
                 ghost: tuple[np.ndarray, JointSet] | None = None) -> None:
    """(J, 3) root-relative camera-frame pose (x right, y down, z forward) drawn upright.

    Plotted axes: x, z (depth), -y (up), all spanning ``[-radius, radius]`` mm with a cubic box
    (``set_box_aspect``). ``ghost``: a reference pose drawn thin and grey underneath.
    """
    def lift(p):
        return p[:, 0], p[:, 2], -p[:, 1]

    if ghost is not None:
        pose, ghost_set = ghost
        gx, gy, gz = lift(pose)
        for child, parent in ghost_set.bones:
            ax.plot(gx[[child, parent]], gy[[child, parent]], gz[[child, parent]], color="#bbbbbb", linewidth=1)
    x, y, z = lift(pose_mm)
    for child, parent in joint_set.bones:
        ax.plot(x[[child, parent]], y[[child, parent]], z[[child, parent]], color=_bone_colour(joint_set, child),
                linewidth=1.8)
    ax.set_xlim(-radius, radius)
    ax.set_ylim(-radius, radius)
    ax.set_zlim(-radius, radius)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=12, azim=-72)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    ax.tick_params(length=0)


def plot_qualitative(key: pd.Series, predictions: dict, targets: pd.DataFrame, inputs: dict[str, pd.DataFrame],
                     cameras: dict, methods, inputs2d) -> Figure:
    """One test frame: per 2D input a row [2D input (px) | 3D ground truth | each method's prediction].

    Predictions are drawn over the ground truth (grey). Blue = left, red = right.
    """
    def row_of(frame: pd.DataFrame, columns) -> pd.DataFrame:
        mask = np.ones(len(frame), dtype=bool)
        for column in columns:
            mask &= (frame[column] == key[column]).to_numpy()
        return frame[mask]

    camera = cameras[(key["subject"], key["camera"])]
    truth = poses_from_frame(row_of(targets, KEYS), H36M17, "xyz")[0]
    columns = 2 + len(methods)
    figure = new_figure(2.4 * columns, 2.5 * len(inputs2d) + 0.3, dpi=90)
    figure.suptitle(f"{key['subject']} · {key['action']} ({key['sequence']}) · camera {key['camera']} · "
                    f"frame {int(key['frame'])}", fontsize=10)
    for row, input2d in enumerate(inputs2d):
        uv = poses_from_frame(row_of(inputs[input2d], ["subject", "sequence", "camera", "frame"]), H36M17, "uv")[0]
        ax = figure.add_subplot(len(inputs2d), columns, row * columns + 1)
        draw_pose_2d(ax, image_coordinates(uv, camera.width, camera.height), H36M17, camera.width, camera.height)
        ax.set_title(f"2D input: {input2d} (px)", fontsize=8)
        ax = figure.add_subplot(len(inputs2d), columns, row * columns + 2, projection="3d")
        draw_pose_3d(ax, truth, H36M17)
        ax.set_title("3D ground truth", fontsize=8)
        for k, method in enumerate(methods):
            ax = figure.add_subplot(len(inputs2d), columns, row * columns + 3 + k, projection="3d")
            if (method, input2d) not in predictions:
                ax.set_axis_off()
                continue
            frame, joint_set = predictions[(method, input2d)]
            predicted = poses_from_frame(row_of(frame, KEYS), joint_set, "xyz")[0]
            error = float(np.linalg.norm(predicted - truth[[H36M17.index(n) for n in joint_set.names]], axis=-1).mean())
            draw_pose_3d(ax, predicted, joint_set, ghost=(truth, H36M17))
            ax.set_title(f"{method} / {input2d}\nMPJPE {error:.0f} mm", fontsize=8)
    return figure
