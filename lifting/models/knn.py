"""Nearest-neighbour pose lookup: the "2D pose + matching" floor every learned lifter should beat.

The classic exemplar approach (in the spirit of Chen & Ramanan, "3D Human Pose Estimation = 2D
Pose Estimation + Matching", CVPR 2017): keep the training set as a library of (2D, 3D) pairs,
find the ``k`` library poses whose 2D is closest to the query's, and return the (weighted) mean
of their 3D poses. Built on scikit-learn's :class:`~sklearn.neighbors.NearestNeighbors`.

2D normalisation before matching (both library and queries): subtract the root joint (index 0),
then divide by the pose's RMS radius ``sqrt(mean_j |p_j - p_root|^2)``. Matching is therefore
invariant to the pose's position and size in the image, and hence to the 2D units: pixels and
screen-normalised coordinates (a uniform scale and shift per camera) give the same neighbours.
The 3D poses are not normalised: predictions are in the unit of the fitted targets.

Not a torch module and not trained: ``PAPER_SCHEDULE`` is None (fitting stores the library).
Cost: brute-force search is O(library x queries x 2J), which scikit-learn's ``auto`` picks at 34
dimensions; the pipeline's default is a k-d tree (``model.knn.algorithm``), exact like brute force
and 8x its query rate at Human3.6M's size (benchmarks/README.md, "Human3.6M at full size"). A large
library can also be subsampled (adjacent 50 fps frames are near-duplicates: ``budget.knn.train_stride``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.neighbors import NearestNeighbors

from lifting.models.spec import InputSpec, PaperSetup

#: Any 2D works (matching is scale/translation-invariant); the pipeline feeds screen-normalised
#: 2D and root-relative metres, and predictions come back in metres.
INPUT_SPEC = InputSpec(joint_set="h36m17", input_norm="screen", target="metres", flip_test=False)

#: No training schedule: fitting only stores the library.
PAPER_SCHEDULE = None

_EPS = 1e-12
#: Normalised 2D distance below which a neighbour counts as an exact hit (poses have RMS radius
#: 1, and scikit-learn's fast Euclidean distance leaves ~1e-8 of rounding on a true duplicate).
_EXACT = 1e-6


@dataclass(frozen=True)
class Config:
    """Nearest-neighbour lookup settings.

    Attributes:
        k: neighbours averaged per query (5).
        weights: "distance" (default) weights each neighbour by 1 / its 2D distance, so a
            query that hits a library entry (normalised distance <= 1e-6) returns that
            entry's 3D exactly, and nearer
            neighbours, which on 50 fps data are often the same moment, count more than the
            k-th; "uniform" is the plain mean.
        metric: distance between normalised 2D poses (any scikit-learn metric; "euclidean").
        algorithm: scikit-learn search structure ("auto", "brute", "kd_tree", "ball_tree").
        n_jobs: parallel jobs for the search (None = 1, -1 = all cores).
    """

    k: int = 5
    weights: Literal["distance", "uniform"] = "distance"
    metric: str = "euclidean"
    algorithm: Literal["auto", "brute", "kd_tree", "ball_tree"] = "auto"
    n_jobs: int | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k (neighbours averaged per query) must be >= 1, got {self.k}")
        if self.n_jobs is not None and self.n_jobs == 0:
            raise ValueError("n_jobs must be a positive count, -1 (every core) or null, got 0")


def normalize_2d(poses_2d: np.ndarray) -> np.ndarray:
    """(N, J, 2) -> (N, 2J) float64 matching features: root-relative, divided by the RMS radius.

    A degenerate pose (all joints on the root) stays all zeros.
    """
    poses = np.asarray(poses_2d, dtype=np.float64)
    centred = poses - poses[:, :1, :]
    radius = np.sqrt(np.mean(np.sum(centred**2, axis=-1), axis=-1))
    return (centred / np.maximum(radius, _EPS)[:, None, None]).reshape(len(poses), -1)


class KNNLifter:
    """Nearest-neighbour 2D -> 3D pose lookup.

    ``fit(inputs_2d (N, J, 2), targets_3d (N, J, 3))`` stores the library (3D root-relative, any
    unit, e.g. mm); ``predict(inputs_2d (M, J, 2)) -> (M, J, 3)`` in that unit and dtype.
    """

    def __init__(self, cfg: Config | None = None, num_joints: int | None = None) -> None:
        self.cfg = cfg or Config()
        if self.cfg.k < 1:
            raise ValueError(f"k must be >= 1, got {self.cfg.k}")
        if self.cfg.weights not in ("distance", "uniform"):
            raise ValueError(f"weights must be 'distance' or 'uniform', got {self.cfg.weights!r}")
        self.num_joints = num_joints
        self._index: NearestNeighbors | None = None
        self._targets: np.ndarray | None = None

    def _check_2d(self, poses: np.ndarray, what: str) -> np.ndarray:
        poses = np.asarray(poses)
        if poses.ndim != 3 or poses.shape[2] != 2 or poses.shape[0] == 0:
            raise ValueError(f"{what} must have shape (N>0, J, 2), got {poses.shape}")
        if self.num_joints is not None and poses.shape[1] != self.num_joints:
            raise ValueError(f"{what} has {poses.shape[1]} joints, expected {self.num_joints}")
        if not np.all(np.isfinite(poses)):
            raise ValueError(f"{what} contains NaN or infinite values")
        return poses

    def fit(self, inputs_2d: np.ndarray, targets_3d: np.ndarray) -> KNNLifter:
        inputs_2d = self._check_2d(inputs_2d, "inputs_2d")
        self.num_joints = inputs_2d.shape[1]
        targets = np.asarray(targets_3d)
        if targets.shape != (*inputs_2d.shape[:2], 3):
            raise ValueError(f"targets_3d must have shape {(*inputs_2d.shape[:2], 3)}, "
                             f"got {targets.shape}")
        if not np.all(np.isfinite(targets)):
            raise ValueError("targets_3d contains NaN or infinite values")
        if len(targets) < self.cfg.k:
            raise ValueError(f"library has {len(targets)} poses, fewer than k={self.cfg.k}")
        self._targets = targets.astype(np.result_type(targets.dtype, np.float32), copy=True)
        self._index = NearestNeighbors(n_neighbors=self.cfg.k, metric=self.cfg.metric,
                                       algorithm=self.cfg.algorithm, n_jobs=self.cfg.n_jobs)
        self._index.fit(normalize_2d(inputs_2d))
        return self

    def predict(self, inputs_2d: np.ndarray, chunk: int = 65_536) -> np.ndarray:
        """(M, J, 2) -> (M, J, 3), processed ``chunk`` queries at a time to bound memory."""
        if self._index is None or self._targets is None:
            raise RuntimeError("KNNLifter.predict called before fit")
        queries = normalize_2d(self._check_2d(inputs_2d, "inputs_2d"))
        out = np.empty((len(queries), self.num_joints, 3), dtype=self._targets.dtype)
        for start in range(0, len(queries), chunk):
            out[start:start + chunk] = self._lookup(queries[start:start + chunk])
        return out

    def _lookup(self, features: np.ndarray) -> np.ndarray:
        dist, idx = self._index.kneighbors(features)  # (m, k) each
        if self.cfg.weights == "uniform":
            w = np.ones_like(dist)
        else:
            exact = dist <= _EXACT
            with np.errstate(divide="ignore"):
                w = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64),
                             1.0 / dist)
        w /= w.sum(axis=1, keepdims=True)
        return np.einsum("mk,mkjc->mjc", w, self._targets[idx].astype(np.float64))

#: The lookup floor is the same for every 2D source.
PAPER = {kind: PaperSetup(Config(), INPUT_SPEC, None, "nearest-neighbour pose lookup") for kind in ("gt", "detected")}


def build(cfg: Config, num_joints: int) -> KNNLifter:
    """An unfitted :class:`KNNLifter` for ``num_joints`` joints (not a torch module)."""
    return KNNLifter(cfg, num_joints)
