"""The lifted motion as a BVH file (opens in Blender: File > Import > Motion Capture (.bvh)).

Skeleton: the h36m17 tree rooted at the pelvis (``Hip``), Y up, in millimetres (Blender's import
scale 0.001 gives metres). Camera-frame joints (x right, y down, z forward) become BVH
coordinates ``(x, -y, -z)``: a person facing the camera faces +Z, their left is +X.

* Bone lengths are the sequence's medians; the rest pose is a T-pose (legs and spine vertical,
  arms along X) with those lengths (:data:`REST`).
* Rotations are solved from positions, ``Zrotation Xrotation Yrotation`` channels (R = Rz Rx Ry,
  degrees): each joint's rotation takes its bone from the rest direction to the lifted one with
  the smallest turn from its parent's orientation (a bone's twist about itself cannot be seen in
  joint positions and is left at zero), so every bone's direction is reproduced exactly.
* The pelvis and the thorax have three bones each, which one rotation cannot aim independently:
  the spine and the nose bone are aimed by the joint itself (its twist set by the line between
  the hips or the shoulders), and the hips and shoulders hang from zero-length link joints
  (``LPelvis``/``RPelvis``, ``LCollar``/``RCollar``) with their own rotations.
* The five end joints (feet, wrists, head) have no bone of their own: they are ``End Site`` s of
  the knee, elbow and nose joints, whose rotations place them.
* The root's position: the lifted joints are root-relative, so the pelvis stays above the origin at
  the height of the median leg length (feet near the floor when standing).

With bones of constant length, forward kinematics of the file gives back the lifted joints; a
lifted sequence's bones vary in length from frame to frame, and each joint then differs from the
lifted one by the accumulated deviations of its chain's bones from their medians (reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lifting.io import atomic_path
from lifting.skeleton import H36M17

_J = {name: i for i, name in enumerate(H36M17.names)}


@dataclass(frozen=True)
class Node:
    """One BVH joint: ``name``, its ``parent`` node (-1: root), the h36m17 bone its offset spans
    (``bone``: (from, to) joints, None for a zero-length link), the bones it aims (``aims``: the
    bones of its children's offsets and End Site) and the twist hint (a (from, to) bone whose
    direction sets its twist) or None. ``end``: the h36m17 joint of its End Site, or None."""

    name: str
    parent: int
    bone: tuple[int, int] | None
    aims: tuple[int, int]
    twist: tuple[int, int] | None = None
    end: int | None = None


def _nodes() -> tuple[Node, ...]:
    j = _J
    nodes = [Node("Hip", -1, None, (j["Hip"], j["Spine"]), twist=(j["RHip"], j["LHip"]))]

    def add(name, parent_name, bone, aims, twist=None, end=None):
        parent = next(i for i, n in enumerate(nodes) if n.name == parent_name)
        nodes.append(Node(name, parent, bone, aims, twist, end))

    for side in "RL":
        add(f"{side}Pelvis", "Hip", None, (j["Hip"], j[f"{side}Hip"]))
        add(f"{side}Hip", f"{side}Pelvis", (j["Hip"], j[f"{side}Hip"]), (j[f"{side}Hip"], j[f"{side}Knee"]))
        add(f"{side}Knee", f"{side}Hip", (j[f"{side}Hip"], j[f"{side}Knee"]), (j[f"{side}Knee"], j[f"{side}Foot"]),
            end=j[f"{side}Foot"])
    add("Spine", "Hip", (j["Hip"], j["Spine"]), (j["Spine"], j["Thorax"]))
    add("Thorax", "Spine", (j["Spine"], j["Thorax"]), (j["Thorax"], j["Nose"]),
        twist=(j["RShoulder"], j["LShoulder"]))
    add("Nose", "Thorax", (j["Thorax"], j["Nose"]), (j["Nose"], j["Head"]), end=j["Head"])
    for side in "LR":
        add(f"{side}Collar", "Thorax", None, (j["Thorax"], j[f"{side}Shoulder"]))
        add(f"{side}Shoulder", f"{side}Collar", (j["Thorax"], j[f"{side}Shoulder"]),
            (j[f"{side}Shoulder"], j[f"{side}Elbow"]))
        add(f"{side}Elbow", f"{side}Shoulder", (j[f"{side}Shoulder"], j[f"{side}Elbow"]),
            (j[f"{side}Elbow"], j[f"{side}Wrist"]), end=j[f"{side}Wrist"])
    return tuple(nodes)


NODES = _nodes()

#: Rest (T-pose) direction of every h36m17 bone, keyed by its child joint, BVH frame (Y up, +X left).
REST = {"RHip": (-1, 0, 0), "LHip": (1, 0, 0), "RKnee": (0, -1, 0), "LKnee": (0, -1, 0), "RFoot": (0, -1, 0),
        "LFoot": (0, -1, 0), "Spine": (0, 1, 0), "Thorax": (0, 1, 0), "Nose": (0, 0.8, 0.6), "Head": (0, 1, 0),
        "LShoulder": (1, 0, 0), "LElbow": (1, 0, 0), "LWrist": (1, 0, 0), "RShoulder": (-1, 0, 0),
        "RElbow": (-1, 0, 0), "RWrist": (-1, 0, 0)}


def _rest_dir(bone: tuple[int, int]) -> np.ndarray:
    v = np.asarray(REST[H36M17.names[bone[1]]], dtype=np.float64)
    return v / np.linalg.norm(v)


def to_bvh_frame(points_camera: np.ndarray) -> np.ndarray:
    """(..., 3) camera frame (x right, y down, z forward) -> BVH (x, up, toward the camera)."""
    return np.asarray(points_camera, dtype=np.float64) * np.array([1.0, -1.0, -1.0])


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def _rotation_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(T, 3, 3) the smallest rotations taking unit vectors u (T, 3) to v (T, 3)."""
    c = np.sum(u * v, axis=-1)
    k = np.cross(u, v)
    opposite = c < -1 + 1e-9
    if opposite.any():  # a half turn about any axis perpendicular to u
        helper = np.where(np.abs(u[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
        axis = _unit(np.cross(u, helper))
        k = np.where(opposite[:, None], axis, k)
    kx = np.zeros((len(u), 3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    kx[:, 1, 0], kx[:, 2, 0], kx[:, 2, 1] = k[:, 2], -k[:, 1], k[:, 0]
    scale = np.where(opposite, 0.0, 1.0 / np.where(opposite, 1.0, 1.0 + c))[:, None, None]
    rot = np.eye(3) + kx + kx @ kx * scale
    half = np.eye(3) * -1 + 2 * k[:, :, None] * k[:, None, :]  # 180 degrees about unit k
    return np.where(opposite[:, None, None], half, rot)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations by ``angle`` (T,) radians about unit ``axis`` (T, 3) (Rodrigues)."""
    kx = np.zeros((len(axis), 3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    kx[:, 1, 0], kx[:, 2, 0], kx[:, 2, 1] = axis[:, 2], -axis[:, 1], axis[:, 0]
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * kx + (1 - c) * kx @ kx


def euler_zxy(rotation: np.ndarray) -> np.ndarray:
    """(T, 3, 3) -> (T, 3) degrees (z, x, y) with R = Rz(z) Rx(x) Ry(y); at gimbal lock (x = +-90
    degrees) y is 0 and z takes the whole turn about the vertical."""
    r = rotation
    x = np.arctan2(r[:, 2, 1], np.hypot(r[:, 2, 0], r[:, 2, 2]))
    locked = np.hypot(r[:, 2, 0], r[:, 2, 2]) < 1e-9
    z = np.where(locked, np.arctan2(r[:, 1, 0], r[:, 0, 0]), np.arctan2(-r[:, 0, 1], r[:, 1, 1]))
    y = np.where(locked, 0.0, np.arctan2(-r[:, 2, 0], r[:, 2, 2]))
    return np.degrees(np.stack([z, x, y], axis=-1))


def solve(joints_mm: np.ndarray) -> tuple[dict[int, np.ndarray], np.ndarray, np.ndarray]:
    """Rotations of every node for (T, 17, 3) camera-frame h36m17 joints.

    Returns ({node: (T, 3, 3) local rotation}, (T, 3) root positions in BVH coordinates,
    (16,) median bone lengths in mm, indexed like ``H36M17.bones``).
    """
    pos = to_bvh_frame(joints_mm)
    count = len(pos)
    lengths = np.median(np.linalg.norm(pos[:, list(H36M17.parents[1:])] - pos[:, 1:], axis=-1), axis=0)
    world: dict[int, np.ndarray] = {}
    local: dict[int, np.ndarray] = {}
    for index, node in enumerate(NODES):
        parent = world[node.parent] if node.parent >= 0 else np.broadcast_to(np.eye(3), (count, 3, 3))
        a, b = node.aims
        now = _unit(pos[:, b] - pos[:, a])
        rotation = _rotation_between(parent @ _rest_dir(node.aims), now) @ parent
        if node.twist is not None:  # turn about the aimed bone so the hint bone points its way
            hint_rest = rotation @ _unit(np.asarray(REST[H36M17.names[node.twist[1]]], float) -
                                         np.asarray(REST[H36M17.names[node.twist[0]]], float))
            hint_now = _unit(pos[:, node.twist[1]] - pos[:, node.twist[0]])
            angle = np.arctan2(np.sum(np.cross(hint_rest, hint_now) * now, axis=-1),
                               np.sum(hint_rest * hint_now, axis=-1) - np.sum(hint_rest * now, -1) *
                               np.sum(hint_now * now, -1))
            rotation = _axis_angle(now, angle) @ rotation
        world[index] = rotation
        local[index] = np.swapaxes(parent, -1, -2) @ rotation
    legs = lengths[H36M17.index("RKnee") - 1] + lengths[H36M17.index("RFoot") - 1]
    root = pos[:, 0] + np.array([0.0, legs, 0.0])
    return local, root, lengths


def _offset(bone: tuple[int, int] | None, lengths: np.ndarray) -> np.ndarray:
    if bone is None:
        return np.zeros(3)
    return _rest_dir(bone) * lengths[bone[1] - 1]


def write_bvh(path: str | Path, joints_mm: np.ndarray, fps: float = 50.0) -> dict:
    """Write (T, 17, 3) h36m17 camera-frame joints (mm) as BVH; returns what the file holds and how
    far its forward kinematics lies from ``joints_mm`` (mm; root-relative)."""
    joints_mm = np.asarray(joints_mm, dtype=np.float64)
    local, root, lengths = solve(joints_mm)
    lines = ["HIERARCHY"]

    def emit(index: int, depth: int) -> None:
        node, pad = NODES[index], "  " * depth
        kind = "ROOT" if node.parent < 0 else "JOINT"
        lines.extend([f"{pad}{kind} {node.name}", f"{pad}{{",
                      f"{pad}  OFFSET {' '.join(f'{v:.6f}' for v in _offset(node.bone, lengths))}",
                      f"{pad}  CHANNELS " + ("6 Xposition Yposition Zposition " if node.parent < 0 else "3 ") +
                      "Zrotation Xrotation Yrotation"])
        for child in (i for i, n in enumerate(NODES) if n.parent == index):
            emit(child, depth + 1)
        if node.end is not None:
            end = _offset(node.aims, lengths)
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {' '.join(f'{v:.6f}' for v in end)}",
                          f"{pad}  }}"])
        lines.append(f"{pad}}}")

    emit(0, 0)
    order = _depth_first()
    motion = np.concatenate([root] + [euler_zxy(local[i]) for i in order], axis=1)
    lines += ["MOTION", f"Frames: {len(joints_mm)}", f"Frame Time: {1.0 / fps:.6f}"]
    with atomic_path(path) as tmp:
        with open(tmp, "w") as handle:
            handle.write("\n".join(lines) + "\n")
            np.savetxt(handle, motion, fmt="%.6f")
    fk = forward_kinematics(local, root, lengths)
    lifted = to_bvh_frame(joints_mm - joints_mm[:, :1])
    error = np.linalg.norm((fk - fk[:, :1]) - lifted, axis=-1)
    return {"joints": len(NODES), "end_sites": [H36M17.names[n.end] for n in NODES if n.end is not None],
            "channels": "root Xposition Yposition Zposition, every joint Zrotation Xrotation Yrotation (degrees)",
            "units": "mm, Y up (import into Blender with scale 0.001 for metres)",
            "bone_lengths_mm": {H36M17.names[c]: round(float(lengths[c - 1]), 1) for c in range(1, 17)},
            "fk_vs_lifted_mm": {"mean": round(float(error.mean()), 2), "max": round(float(error.max()), 2),
                                "why": "bones of median length; the lifted bones vary from frame to frame"}}


def _depth_first() -> list[int]:
    order = []

    def visit(index: int) -> None:
        order.append(index)
        for child in (i for i, n in enumerate(NODES) if n.parent == index):
            visit(child)

    visit(0)
    return order


def forward_kinematics(local: dict[int, np.ndarray], root: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(T, 17, 3) h36m17 joints in BVH coordinates from the solved rotations (what the file encodes)."""
    count = len(root)
    world, where = {}, {}
    out = np.zeros((count, 17, 3))
    for index, node in enumerate(NODES):
        if node.parent < 0:
            world[index], where[index] = local[index], root
            out[:, 0] = root
            continue
        parent = world[node.parent]
        where[index] = where[node.parent] + parent @ _offset(node.bone, lengths)
        world[index] = parent @ local[index]
        if node.bone is not None:
            out[:, node.bone[1]] = where[index]
        if node.end is not None:
            out[:, node.end] = where[index] + world[index] @ _offset(node.aims, lengths)
    return out
