"""HGN's surface markers on the embedded data: the coarse body-surface nodes, posed every frame.

The hierarchy (:func:`surface_hierarchy`) is the DeepMimic body surface
(:mod:`lifting.data.surface.body`) coarsened by heavy edge matching
(:mod:`lifting.data.surface.coarsening`) to HGN's two levels: 96 nodes (81 real) and 48 (44 real). A
marker is a real node; its position is the weighted average of its surface points (the tree's
pair averages). Since each point is fixed to a link, a marker is a fixed combination of link
frames::

    marker_m = sum_l  a_ml * p_l  +  R_l (s_l * b_ml)

with ``a_ml`` the share of the marker's weight on link ``l``, ``b_ml`` the weighted sum of those
points in the link frame, ``s_l`` the link's segment scale, and ``(p_l, R_l)`` the link's pose
(:func:`lifting.data.deepmimic.link_frames`). :func:`pose_markers` evaluates that for every
frame, without posing the 7,534 surface points.

Marker order: the 81 real nodes of the 96-node level in tree order, then the 44 of the 48-node
level (:data:`FINE`, :data:`COARSE` give the counts; :func:`marker_names` the column stems).

The graphs travel with the markers: :class:`~lifting.data.surface.graph.SurfaceGraph` (both levels' adjacency and real
nodes, the hierarchy's name and how its markers were posed) is written into the markers table's
metadata, and HGN is built from the graph of the data it trains on, never rebuilt from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lifting.data import deepmimic
from lifting.data.surface.body import LINK_SEGMENT, build_surface
from lifting.data.surface.coarsening import coarsen
from lifting.data.surface.graph import SurfaceGraph

#: HGN's level sizes (with padding nodes) and the binary tree's top.
FINE_NODES, COARSE_NODES, TOP_NODES = 96, 48, 24
#: Version of the hierarchy recipe, written into the tables' metadata.
HIERARCHY = "deepmimic-surface-v1"


@dataclass(frozen=True)
class SurfaceHierarchy:
    """HGN's two surface levels and their markers.

    Attributes:
        fine_adjacency, coarse_adjacency: (96, 96) and (48, 48) bool, tree order (padding isolated).
        fine_real, coarse_real: (96,) and (48,) bool, False for padding nodes.
        links: (L,) link names. share: (M, L) each marker's weight on each link (rows sum to 1).
        local: (M, L, 3) each marker's weighted point sum per link, link frame, metres, unscaled.
    """

    fine_adjacency: np.ndarray
    coarse_adjacency: np.ndarray
    fine_real: np.ndarray
    coarse_real: np.ndarray
    links: tuple[str, ...]
    share: np.ndarray
    local: np.ndarray

    @property
    def num_markers(self) -> int:
        return self.share.shape[0]

    def graph(self, posed_by: str) -> SurfaceGraph:
        """The hierarchy's graphs, labelled with how its markers were posed."""
        return SurfaceGraph(self.fine_adjacency, self.coarse_adjacency, self.fine_real, self.coarse_real,
                            HIERARCHY, posed_by)

    def marker_names(self) -> list[str]:
        """Column stems: ``fine_00`` ... then ``coarse_00`` ..., one per marker."""
        return marker_names(self.fine_real, self.coarse_real)

    def marker_columns(self) -> list[str]:
        """The markers table's value columns: ``fine_00_x``, ``fine_00_y``, ..."""
        return [f"{name}_{axis}" for name in self.marker_names() for axis in "xyz"]


def marker_names(fine_real: np.ndarray, coarse_real: np.ndarray) -> list[str]:
    """One name per marker: ``fine_00`` ... for the real fine nodes, then ``coarse_00`` ..."""
    return ([f"fine_{k:02d}" for k in range(int(fine_real.sum()))]
            + [f"coarse_{k:02d}" for k in range(int(coarse_real.sum()))])


#: How a source's markers were posed (the ``markers_posed_by`` metadata). Recorded in the data, so kept verbatim
#: (POSED_BY_JOINTS names markers_from_joints by the path it had when the label was first written).
POSED_BY_ROTATIONS = "the mocap's joint rotations"
POSED_BY_JOINTS = "the 3D joints (canonical body, lifting.data.markers_from_joints)"


def surface_hierarchy() -> SurfaceHierarchy:
    """Build the hierarchy from the humanoid model file (deterministic; about 2 s)."""
    surface = build_surface()
    levels = coarsen(surface.graph, top=TOP_NODES)
    fine, coarse = levels[-3], levels[-2]
    if (len(fine.real), len(coarse.real)) != (FINE_NODES, COARSE_NODES):
        raise AssertionError(f"coarsening gave levels of {len(fine.real)} and {len(coarse.real)} nodes")
    pooling = np.concatenate([fine.pooling[fine.real], coarse.pooling[coarse.real]])  # (M, P)
    links = tuple(sorted(set(surface.links)))
    share = np.stack([pooling[:, surface.links == link].sum(axis=1) for link in links], axis=1)
    local = np.stack([pooling[:, surface.links == link] @ surface.local[surface.links == link] for link in links],
                     axis=1)
    return SurfaceHierarchy(fine.adjacency, coarse.adjacency, fine.real, coarse.real, links, share, local)


def pose_markers(hierarchy: SurfaceHierarchy, clip: deepmimic.Clip,
                 segment_scale: dict[str, float] | None = None) -> np.ndarray:
    """(T, M, 3) marker positions (metres, the clip's y-up world) for every frame of ``clip``,
    with the same joint rotations and segment lengths as :func:`deepmimic.forward_kinematics`."""
    scale = {segment: 1.0 for segment in deepmimic.SEGMENTS}
    scale.update(segment_scale or {})
    positions, frames = deepmimic.link_frames(clip, scale)
    markers = np.zeros((len(clip.times), hierarchy.num_markers, 3))
    for k, link in enumerate(hierarchy.links):
        factor = scale.get(LINK_SEGMENT.get(link, ""), 1.0)
        rotation = frames[link].as_matrix()  # (T, 3, 3)
        markers += hierarchy.share[None, :, k, None] * positions[link][:, None, :]
        markers += np.einsum("tij,mj->tmi", rotation, factor * hierarchy.local[:, k])
    return markers
