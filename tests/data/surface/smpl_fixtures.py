"""A synthetic SMPL-like model (a tube mesh with SMPL's 24-joint tree), for tests of lifting.data.surface.smpl.

Not SMPL: random blend shapes and weights on a 640-vertex tube, with the SMPL file's array names
and shapes (the licensed model is never needed by the tests).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: SMPL's kinematic tree (parent of each of the 24 joints).
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)


def tube_mesh(rings: int = 20, around: int = 32, height: float = 1.7, radius: float = 0.15):
    """(V, 3) vertices and (F, 3) faces of an open tube along y."""
    angle = np.linspace(0.0, 2 * np.pi, around, endpoint=False)
    y = np.linspace(0.0, height, rings)
    vertices = np.stack([np.tile(radius * np.cos(angle), rings), np.repeat(y, around),
                         np.tile(radius * np.sin(angle), rings)], axis=1)
    faces = []
    for r in range(rings - 1):
        for a in range(around):
            p, q = r * around + a, r * around + (a + 1) % around
            faces += [(p, q, p + around), (q, q + around, p + around)]
    return vertices, np.array(faces)


def write_model(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    vertices, faces = tube_mesh()
    count = len(vertices)
    logits = rng.normal(size=(count, 24)) * 3.0
    weights = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    regressor = rng.uniform(size=(24, count)) ** 8
    arrays = {"v_template": vertices, "shapedirs": rng.normal(scale=0.01, size=(count, 3, 10)),
              "posedirs": rng.normal(scale=0.002, size=(count, 3, 207)),
              "J_regressor": regressor / regressor.sum(axis=1, keepdims=True), "weights": weights,
              "kintree_table": np.array([[2**32 - 1, *SMPL_PARENTS[1:]], list(range(24))], dtype=np.int64),
              "f": faces}
    np.savez(path, **arrays)
    return arrays


def skin_vertices(arrays: dict, pose: np.ndarray, shape: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """(V, 3) one frame of SMPL's blend skinning, written out vertex by vertex in 4x4 matrices."""
    from scipy.spatial.transform import Rotation

    shaped = arrays["v_template"] + arrays["shapedirs"] @ shape
    joints = arrays["J_regressor"] @ shaped
    rotations = Rotation.from_rotvec(pose.reshape(24, 3)).as_matrix()
    posed = shaped + arrays["posedirs"] @ (rotations[1:] - np.eye(3)).ravel()
    world = []
    for j, parent in enumerate(SMPL_PARENTS):
        local = np.eye(4)
        local[:3, :3] = rotations[j]
        local[:3, 3] = joints[j] - (joints[parent] if parent >= 0 else 0.0)
        world.append(local if parent < 0 else world[parent] @ local)
    skinned = np.zeros_like(posed)
    for i, vertex in enumerate(posed):
        blend = sum(arrays["weights"][i, j] * world[j] @ np.append(vertex - joints[j], 1.0) for j in range(24))
        skinned[i] = blend[:3]
    return skinned + trans
