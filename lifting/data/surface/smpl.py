"""HGN's upstream hierarchy on Human3.6M: the SMPL mesh, when the user supplies the model and fits.

Upstream HGN (methods.md §3.1, §3.3) coarsens the 6,890-vertex SMPL mesh by heavy edge matching
into its 96- and 48-node levels and poses them with SMPLify-X fits of Human3.6M (Moon's
Pose2Mesh/I2L-MeshNet annotations). The SMPL model is licence-gated, so nothing here is fetched
or committed: with ``data.smpl_dir`` set, the fetch stage gathers the user's files and normalize
builds the markers from them; without it, Human3.6M gets the canonical body
(:mod:`lifting.data.surface.markers_from_joints`).

Inputs (``data.smpl_dir``):

* ``SMPL_NEUTRAL.npz``: the neutral SMPL model (upstream trains with the neutral body) as plain
  arrays, read with ``allow_pickle=False``: ``v_template`` (V, 3), ``shapedirs`` (V, 3, >= 10),
  ``posedirs`` (V, 3, 207), ``J_regressor`` (24, V), ``weights`` (V, 24), ``kintree_table``
  (2, 24), ``f`` (F, 3). The licensed pickle holds chumpy objects and is never unpickled here;
  convert it once in your own environment (README).
* ``Human36M_subject<N>_smpl_param.json``: ``{action_idx: {subaction_idx: {frame_idx: {"pose":
  72, "shape": 10, "trans": 3}}}}``, Human3.6M world frame, metres. As upstream's dataset reads
  them, the mesh is ``SMPL(pose, shape) + trans`` and a shape with any ``|beta| > 3`` is replaced
  by the mean shape.

The hierarchy: the mesh's edge graph (from its faces) coarsened by :func:`coarsening.coarsen` to a
binary tree whose levels of 96 and 48 nodes are HGN's (upstream: 83 and 45 real nodes; ours come
from our own matching). The markers are those levels' real nodes, each the pair-average of its
vertices; :class:`MeshHierarchy` poses them by linear blend skinning folded into the pooling
(``marker = sum_j G_j (P W_j v_posed) + (P W)_j t_j``), so no frame ever poses all 6,890 vertices.

Sequences: Moon's ``(action_idx, subaction_idx)`` and VideoPose3D's sequence names do not map one
to one by name (methods.md §1.4), so each fitted sequence is matched to the subject's sequence of
the same action whose Hip trajectory is closest to the fits' SMPL root (mean distance below
:data:`MATCH_TOLERANCE_M`, and unique). Frames without a fit get no markers (NaN rows): HGN's
surface terms skip them, as upstream skips those frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lifting.data.schema import POSES3D_KEYS, poses_from_frame
from lifting.data.surface.coarsening import coarsen
from lifting.data.surface.graph import SurfaceGraph
from lifting.data.surface.markers import COARSE_NODES, FINE_NODES, TOP_NODES, marker_names
from lifting.errors import DataError
from lifting.skeleton import H36M17

MODEL_FILE = "SMPL_NEUTRAL.npz"
FITS_PATTERN = "Human36M_subject*_smpl_param.json"
#: Hierarchy recipe name, and how its markers are posed (the tables' metadata).
SMPL_HIERARCHY = "smpl-mesh-v1"
POSED_BY_SMPL = "SMPL fits (user-supplied model and Human3.6M fits)"
#: Moon's ``action_idx`` 2..16, in order (methods.md §1.4).
ACTIONS = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases", "Sitting",
           "SittingDown", "Smoking", "Photo", "Waiting", "Walking", "WalkDog", "WalkTogether")
#: Largest mean distance (m) between a fitted sequence's SMPL root and the matched sequence's Hip.
MATCH_TOLERANCE_M = 0.15
#: Upstream replaces any shape with a coefficient beyond this by the mean shape.
MAX_ABS_BETA = 3.0
NUM_BETAS = 10


@dataclass(frozen=True)
class SMPLModel:
    """The SMPL arrays (metres). Shapes: v_template (V, 3), shapedirs (V, 3, 10), posedirs
    (V, 3, 207), j_regressor (24, V), weights (V, 24), parents (24,) (-1 for the root), faces (F, 3)."""

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    j_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray


def load_model(path: str | Path) -> SMPLModel:
    """Read an SMPL ``.npz`` (plain arrays only); one clear error for a missing, pickled or malformed file."""
    path = Path(path)
    fix = (f"place the neutral SMPL model, converted to plain arrays, at {path} (README: Human3.6M, SMPL), "
           "or unset data.smpl_dir to use the canonical body")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: np.asarray(npz[key]) for key in npz.files}
    except FileNotFoundError:
        raise DataError(path, "SMPL model not found", fix) from None
    except ValueError as err:  # object arrays need pickle, which is refused
        raise DataError(path, f"not a plain-array .npz ({err})", fix) from None
    except OSError as err:
        raise DataError(path, f"cannot read it ({err})", fix) from None
    missing = [k for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
               if k not in arrays]
    if missing:
        raise DataError(path, f"lacks {missing} (has {sorted(arrays)})", fix)
    v = arrays["v_template"].astype(np.float64)
    count = len(v)
    model = SMPLModel(v, arrays["shapedirs"][:, :, :NUM_BETAS].astype(np.float64),
                      arrays["posedirs"].astype(np.float64), arrays["J_regressor"].astype(np.float64),
                      arrays["weights"].astype(np.float64), arrays["kintree_table"][0].astype(np.int64),
                      arrays["f"].astype(np.int64))
    expected = {"v_template": (count, 3), "shapedirs": (count, 3, NUM_BETAS), "posedirs": (count, 3, 207),
                "j_regressor": (24, count), "weights": (count, 24), "parents": (24,)}
    wrong = {k: getattr(model, k).shape for k, shape in expected.items() if getattr(model, k).shape != shape}
    if wrong or model.faces.ndim != 2 or model.faces.shape[1] != 3 or model.faces.max() >= count:
        raise DataError(path, f"arrays of the wrong shape {wrong or {'f': model.faces.shape}} for {count} vertices",
                        fix)
    parents = model.parents.copy()
    parents[0] = -1  # kintree_table's root entry is a sentinel (2**32 - 1 in the official files)
    return SMPLModel(model.v_template, model.shapedirs, model.posedirs, model.j_regressor, model.weights,
                     parents, model.faces)


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    angle = np.linalg.norm(axis_angle, axis=-1, keepdims=True)
    axis = axis_angle / np.maximum(angle, 1e-12)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*axis.shape[:-1], 3, 3)
    angle = angle[..., None]
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross


@dataclass(frozen=True)
class MeshHierarchy:
    """HGN's two levels of the SMPL mesh and their markers posed by blend skinning.

    Attributes:
        fine_adjacency, coarse_adjacency: (96, 96) and (48, 48) bool, tree order.
        fine_real, coarse_real: (96,) and (48,) bool, False for padding nodes.
        pooling: (M, V) the markers (real fine nodes, then real coarse ones) over the vertices.
    """

    fine_adjacency: np.ndarray
    coarse_adjacency: np.ndarray
    fine_real: np.ndarray
    coarse_real: np.ndarray
    pooling: np.ndarray

    @classmethod
    def from_faces(cls, faces: np.ndarray, num_vertices: int) -> MeshHierarchy:
        edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        graph = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(num_vertices,) * 2)
        graph = ((graph + graph.T) > 0).astype(np.float64).tocsr()
        levels = coarsen(graph, top=TOP_NODES)
        fine, coarse = levels[-3], levels[-2]
        if (len(fine.real), len(coarse.real)) != (FINE_NODES, COARSE_NODES):
            raise ValueError(f"coarsening the mesh gave levels of {len(fine.real)} and {len(coarse.real)} nodes, "
                             f"not {FINE_NODES} and {COARSE_NODES}")
        pooling = np.concatenate([fine.pooling[fine.real], coarse.pooling[coarse.real]])
        return cls(fine.adjacency, coarse.adjacency, fine.real, coarse.real, pooling)

    def graph(self) -> SurfaceGraph:
        return SurfaceGraph(self.fine_adjacency, self.coarse_adjacency, self.fine_real, self.coarse_real,
                            SMPL_HIERARCHY, POSED_BY_SMPL)

    def marker_columns(self) -> list[str]:
        """The markers table's value columns: ``fine_00_x``, ``fine_00_y``, ..."""
        return [f"{name}_{axis}" for name in marker_names(self.fine_real, self.coarse_real) for axis in "xyz"]


@dataclass(frozen=True)
class MarkerSkinning:
    """Blend skinning folded into the markers: per marker and joint, the pooled skinning weight and
    the pooled template, shape and pose blend shapes (computed once per model and hierarchy)."""

    weight: np.ndarray     # (M, 24)
    template: np.ndarray   # (M, 24, 3)
    shape: np.ndarray      # (M, 24, 3, 10)
    pose: np.ndarray       # (M, 24, 3, 207)
    joints_template: np.ndarray  # (24, 3)
    joints_shape: np.ndarray     # (24, 3, 10)
    parents: np.ndarray

    @classmethod
    def build(cls, model: SMPLModel, pooling: np.ndarray) -> MarkerSkinning:
        pooled = pooling[:, :, None] * model.weights[None]  # (M, V, 24): P_mi w_ij
        m, v, j = pooled.shape
        fold = pooled.transpose(0, 2, 1).reshape(m * j, v)  # rows (m, j)
        return cls(pooled.sum(axis=1), (fold @ model.v_template).reshape(m, j, 3),
                   (fold @ model.shapedirs.reshape(v, -1)).reshape(m, j, 3, NUM_BETAS),
                   (fold @ model.posedirs.reshape(v, -1)).reshape(m, j, 3, 207),
                   model.j_regressor @ model.v_template,
                   np.einsum("jv,vkb->jkb", model.j_regressor, model.shapedirs), model.parents)

    def root(self, shape: np.ndarray) -> np.ndarray:
        """(T, 3) the root joint in the model's frame (it does not move with the pose), metres."""
        return self.joints_template[0] + shape @ self.joints_shape[0].T

    def markers(self, pose: np.ndarray, shape: np.ndarray, trans: np.ndarray, chunk: int = 1024) -> np.ndarray:
        """(T, M, 3) marker positions (metres) for (T, 72) poses, (T, 10) shapes, (T, 3)
        translations, ``chunk`` frames at a time."""
        if len(pose) > chunk:
            return np.concatenate([self.markers(pose[k:k + chunk], shape[k:k + chunk], trans[k:k + chunk], chunk)
                                   for k in range(0, len(pose), chunk)])
        count = len(pose)
        rotations = rodrigues(pose.reshape(count, 24, 3))  # (T, 24, 3, 3)
        pose_feature = (rotations[:, 1:] - np.eye(3)).reshape(count, -1)  # (T, 207)
        joints = self.joints_template + np.einsum("tb,jkb->tjk", shape, self.joints_shape)  # (T, 24, 3)
        world_r, world_t = np.empty_like(rotations), np.empty_like(joints)
        for j, parent in enumerate(self.parents):
            if parent < 0:
                world_r[:, j], world_t[:, j] = rotations[:, j], joints[:, j]
            else:
                world_r[:, j] = world_r[:, parent] @ rotations[:, j]
                world_t[:, j] = world_t[:, parent] + np.einsum("tik,tk->ti", world_r[:, parent],
                                                               joints[:, j] - joints[:, parent])
        offset = world_t - np.einsum("tjik,tjk->tji", world_r, joints)  # rest pose removed
        m = len(self.weight)
        posed = (self.template[None] + (shape @ self.shape.reshape(-1, NUM_BETAS).T).reshape(count, m, 24, 3)
                 + (pose_feature @ self.pose.reshape(-1, 207).T).reshape(count, m, 24, 3))
        return (np.einsum("tjik,tmjk->tmi", world_r, posed) + np.einsum("mj,tji->tmi", self.weight, offset)
                + trans[:, None, :])


def read_fits(path: Path) -> dict[tuple[int, int], pd.DataFrame]:
    """One subject's fits: ``{(action_idx, subaction_idx): (frames (T,), pose (T, 72), shape (T, 10),
    trans (T, 3))}``, frame-sorted, with upstream's mean-shape rule applied."""
    fix = "supply Moon's Human3.6M SMPL fits in the Pose2Mesh format, or unset data.smpl_dir"
    try:
        nested = json.loads(path.read_text())
        sequences = {}
        for action, subactions in nested.items():
            for subaction, frames in subactions.items():
                keys = sorted(frames, key=int)
                pose = np.array([frames[k]["pose"] for k in keys], dtype=np.float64).reshape(len(keys), 72)
                shape = np.array([frames[k]["shape"] for k in keys], dtype=np.float64).reshape(len(keys), NUM_BETAS)
                trans = np.array([frames[k]["trans"] for k in keys], dtype=np.float64).reshape(len(keys), 3)
                shape[(np.abs(shape) > MAX_ABS_BETA).any(axis=1)] = 0.0
                if not (np.isfinite(pose).all() and np.isfinite(shape).all() and np.isfinite(trans).all()):
                    raise ValueError(f"NaN or infinity in action {action}, subaction {subaction}")
                sequences[(int(action), int(subaction))] = (np.array(keys, dtype=np.int64), pose, shape, trans)
    except FileNotFoundError:
        raise DataError(path, "SMPL fits not found", fix) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DataError(path, f"not SMPL fits in the Pose2Mesh format ({type(err).__name__}: {err})", fix) from None
    return sequences


def _subject_number(path: Path) -> str:
    return "S" + path.name.removeprefix("Human36M_subject").split("_")[0]


def markers_table(poses3d: pd.DataFrame, smpl_dir: Path) -> tuple[pd.DataFrame, SurfaceGraph]:
    """The SMPL markers for every row of a poses3d table (world mm, float32; NaN where a frame has
    no fit), matched to the sequences as the module docstring says, and their graph."""
    model = load_model(smpl_dir / MODEL_FILE)
    fit_files = sorted(smpl_dir.glob(FITS_PATTERN))
    if not fit_files:
        raise DataError(smpl_dir, f"no SMPL fits ({FITS_PATTERN})", "place Moon's Human3.6M fits there, "
                        "or unset data.smpl_dir to use the canonical body")
    hierarchy = MeshHierarchy.from_faces(model.faces, len(model.v_template))
    skinning = MarkerSkinning.build(model, hierarchy.pooling)
    columns = hierarchy.marker_columns()
    values = np.full((len(poses3d), len(columns)), np.nan, dtype=np.float32)
    hip = poses_from_frame(poses3d, H36M17, "xyz")[:, H36M17.index("Hip")].astype(np.float64) / 1000.0
    for path in fit_files:
        subject = _subject_number(path)
        of_subject = poses3d["subject"].to_numpy() == subject
        matched: dict[int, tuple[int, int]] = {}
        for (action, subaction), (frames, pose, shape, trans) in read_fits(path).items():
            rows = _match_sequence(poses3d, of_subject, hip, action, frames, skinning.root(shape) + trans, path)
            if rows is None:
                continue
            if rows[0] in matched:
                raise DataError(path, f"the fits of (action {action}, subaction {subaction}) and {matched[rows[0]]} "
                                      "match the same sequence", "check that the fits belong to these 3D files")
            matched[rows[0]] = (action, subaction)
            inside = frames < len(rows)
            on_surface = skinning.markers(pose[inside], shape[inside], trans[inside]) * 1000.0
            values[rows[frames[inside]]] = on_surface.reshape(int(inside.sum()), -1)
    if not np.isfinite(values).any():
        subjects = sorted(poses3d["subject"].unique())
        raise DataError(smpl_dir, f"no SMPL fit matches a sequence of the 3D data (fits: "
                                  f"{[p.name for p in fit_files]}; the 3D has subjects {subjects})",
                        "give the fits of the 3D data's subjects, or set data.smpl_dir: null to use the canonical body")
    table = pd.concat([poses3d[list(POSES3D_KEYS)].reset_index(drop=True),
                       pd.DataFrame(values, columns=columns)], axis=1)
    return table, hierarchy.graph()


def _match_sequence(poses3d: pd.DataFrame, of_subject: np.ndarray, hip: np.ndarray, action: int,
                    frames: np.ndarray, root: np.ndarray, path: Path) -> np.ndarray | None:
    """The row indices (in frame order) of the subject's sequence whose Hip follows the fitted
    root, or None when the subject has no sequence of that action (e.g. S11 Directions)."""
    if not 2 <= action < 2 + len(ACTIONS):
        raise DataError(path, f"unknown action_idx {action} (Human3.6M has 2..16)", "check the fits file")
    candidates = poses3d.loc[of_subject & (poses3d["action"] == ACTIONS[action - 2]).to_numpy(), "sequence"].unique()
    distances = {}
    for sequence in candidates:
        rows = np.flatnonzero(of_subject & (poses3d["sequence"] == sequence).to_numpy())
        rows = rows[np.argsort(poses3d["frame"].to_numpy()[rows], kind="stable")]
        inside = frames < len(rows)
        if inside.any():
            distances[sequence] = (float(np.linalg.norm(hip[rows[frames[inside]]] - root[inside], axis=1).mean()), rows)
    if not distances:
        return None
    ranked = sorted(distances, key=lambda s: distances[s][0])
    best = ranked[0]
    if distances[best][0] > MATCH_TOLERANCE_M or (len(ranked) > 1 and distances[ranked[1]][0] < 2 * distances[best][0]):
        found = {s: round(d, 3) for s, (d, _) in distances.items()}
        raise DataError(path, f"the fits of action {action} match no single sequence of {ACTIONS[action - 2]} "
                              f"(mean root-to-Hip distance per sequence, m: {found})",
                        "check that the fits belong to these 3D files (same subjects, world frame)")
    return distances[best][1]
