"""HGN's surface graphs as they travel with the data: both levels' adjacency and real nodes, in a
table's metadata (written by :mod:`lifting.data.surface.markers` and the other marker sources, read by the
store, the aligned data and HGN)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SurfaceGraph:
    """What HGN needs of a hierarchy: its two levels as graphs, and where they come from.

    Attributes:
        fine_adjacency, coarse_adjacency: (96, 96) and (48, 48) bool.
        fine_real, coarse_real: (96,) and (48,) bool, False for padding nodes.
        name: the hierarchy's recipe (e.g. :data:`lifting.data.surface.markers.HIERARCHY`).
        posed_by: how the markers were posed.
    """

    fine_adjacency: np.ndarray
    coarse_adjacency: np.ndarray
    fine_real: np.ndarray
    coarse_real: np.ndarray
    name: str
    posed_by: str

    @property
    def description(self) -> str:
        return (f"surface hierarchy {self.name} ({len(self.fine_real)}/{len(self.coarse_real)} nodes, "
                f"markers posed by {self.posed_by})")

    def to_metadata(self) -> dict[str, str]:
        """Key-value strings for a Parquet table's metadata: edges as index pairs, real nodes as 0/1."""
        def edges(adjacency: np.ndarray) -> str:
            return json.dumps(np.argwhere(np.triu(adjacency, 1)).tolist())

        return {"hierarchy": self.name, "markers_posed_by": self.posed_by,
                "fine_edges": edges(self.fine_adjacency), "coarse_edges": edges(self.coarse_adjacency),
                "fine_real": "".join("01"[int(r)] for r in self.fine_real),
                "coarse_real": "".join("01"[int(r)] for r in self.coarse_real)}

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> SurfaceGraph:
        """The inverse of :meth:`to_metadata`; raises KeyError or ValueError on a damaged record."""
        def adjacency(edges: str, size: int) -> np.ndarray:
            pairs = np.asarray(json.loads(edges), dtype=np.int64).reshape(-1, 2)
            matrix = np.zeros((size, size), dtype=bool)
            matrix[pairs[:, 0], pairs[:, 1]] = matrix[pairs[:, 1], pairs[:, 0]] = True
            return matrix

        fine_real = np.array([c == "1" for c in meta["fine_real"]])
        coarse_real = np.array([c == "1" for c in meta["coarse_real"]])
        return cls(adjacency(meta["fine_edges"], len(fine_real)), adjacency(meta["coarse_edges"], len(coarse_real)),
                   fine_real, coarse_real, meta["hierarchy"], meta["markers_posed_by"])
