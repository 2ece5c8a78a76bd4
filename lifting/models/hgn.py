"""HGN: hierarchical graph networks for 2D-to-3D lifting (methods.md §3), the network.

Paper: H. Li, B. Shi, W. Dai, Y. Chen, B. Wang, Y. Sun, M. Guo, C. Li, J. Zou, H. Xiong,
"Hierarchical Graph Networks for 3D Human Pose Estimation", BMVC 2021. Upstream:
``qingshi9974/BMVC2021-Hierarchical-Graph-Networks-for-3D-Human-Pose-Estimation``
(``lib/models/hgn.py``). Re-implemented from the description; no upstream code is copied.

Three graph branches run side by side, HRNet style: the 17 joints, a 48-node and a 96-node
graph of the body surface (upstream: coarsened SMPL meshes of 45 and 83 real nodes plus the
padding nodes of the coarsening tree). Each stage of a branch is a residual SemGCN block
(:class:`~lifting.models.semgcn.SemGraphConv` -> BN -> ReLU, twice, plus the skip) followed by a
non-local block over all of the branch's nodes::

    (B, 17, 2) -> GC(2 -> 128) = f1          (17 nodes)
    f2 = M[1->2](f1)                          (48 nodes)
    stage 1: f1, f2 = S(f1), S(f2);  fuse(f1, f2)
    stage 2: f1, f2 = S(f1), S(f2);  fuse(f1, f2);  f3 = M[1->3](f1) + M[2->3](f2)   (96 nodes)
    stage 3: f1, f2, f3 = S(f1), S(f2), S(f3);  fuse(f1, f2, f3)
    stage 4: f1, f2, f3 = S(f1), S(f2), S(f3);  fuse(f1, f2, f3)
    heads: SemGraphConv(128 -> 3) per branch -> (B, 17, 3), (B, 48, 3), (B, 96, 3)

``M[a->b]`` (:class:`NodeMap`) is a learned linear map over the node dimension with a bias,
shared by all channels (upstream: ``Conv1d(n_a, n_b, 1)`` on ``(B, N, C)``), one per pair and
fusion point. Hidden width 128, no dropout; only the 17-joint output is scored.

Fusion order. Upstream fuses with in-place ``+=`` on tensors that alias each other, so each
branch adds the maps of the branches *before* it in their already-fused state and of those after
it in their stage output: ``f1 += M21(f2) + M31(f3)``, then ``f2 += M12(f1) + M32(f3)`` with the
new ``f1``, then ``f3 += M13(f1) + M23(f2)`` with both new (and branch 3 is born from the fused
``f1``, ``f2``). The paper's figure reads as a simultaneous exchange. We reproduce upstream's
sequential order by default, since the published number comes from it (``Config.fusion =
"sequential"``), without in-place writes; ``"simultaneous"`` gives the figure's reading. Both
are pinned in ``tests/models/test_hgn.py`` against an in-place reproduction.

Parameters: 1,040,527 besides the edge weights (the paper's ~1.04M), plus one learnable edge
weight per non-zero of each SemGraphConv's adjacency: 10 convolutions on the 17-joint graph
(49 non-zeros: 16 bones both ways and the diagonal), 9 on the 48-node and 5 on the 96-node one.

Deliberate difference: every node of the 48/96 graphs gets a self loop (our SemGraphConv keeps
each node's own feature through its ``W0``); upstream row-normalises the coarsened adjacency
without adding self loops, so a node without one (a singleton of the matching, or a padding
node, whose masked softmax row then spreads evenly over all nodes) loses its own feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lifting.models.graph import to_batch_major, to_joint_major
from lifting.models.semgcn import GroupNonLocal, SemGraphConv, _GraphBlock, _ResBlock

#: Nodes per branch, in branch order (joints, coarse surface, fine surface).
BRANCH_NODES = (17, 48, 96)


@dataclass(frozen=True)
class Config:
    """HGN configuration; the defaults are the paper's.

    Attributes:
        hidden: channels of every hidden layer (upstream ``hid_dim`` 128).
        fusion: ``"sequential"`` (upstream's in-place order) or ``"simultaneous"`` (see the
            module docstring).
    """

    hidden: int = 128
    fusion: Literal["sequential", "simultaneous"] = "sequential"

    def __post_init__(self) -> None:
        if self.hidden < 2:
            raise ValueError(f"needs hidden >= 2 (the non-local blocks halve it), got {self.hidden}")
        if self.fusion not in ("sequential", "simultaneous"):
            raise ValueError(f"fusion must be 'sequential' or 'simultaneous', got {self.fusion!r}")


class NodeMap(nn.Module):
    """A learned linear map from ``n_in`` to ``n_out`` nodes, shared over channels, with a bias.

    Shapes: ``forward((n_in, B, C)) -> (n_out, B, C)``. Initialised as ``Conv1d(n_in, n_out, 1)``.
    """

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, b, c = x.shape
        return torch.addmm(self.bias[:, None], self.weight, x.reshape(n, b * c)).view(-1, b, c)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]} -> {self.weight.shape[0]} nodes"


class _Stage(nn.Module):
    """Residual SemGCN block, then a non-local block over all nodes. ``(N, B, C) -> (N, B, C)``."""

    def __init__(self, channels: int, adj: torch.Tensor) -> None:
        super().__init__()
        self.res = _ResBlock(channels, adj, dropout=0.0)
        self.non_local = GroupNonLocal(channels, tuple((k,) for k in range(adj.shape[0])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.non_local(self.res(x))


def _with_self_loops(adj: torch.Tensor) -> torch.Tensor:
    return ((adj != 0) | torch.eye(adj.shape[0], dtype=torch.bool)).float()


class HGN(nn.Module):
    """The HGN lifting network. ``forward((B, 17, 2)) -> ((B, 17, 3), (B, 48, 3), (B, 96, 3))``.

    Args:
        adjacencies: the three branches' ``(N, N)`` adjacencies (17, 48 and 96 nodes); only their
            non-zero patterns matter (each gets self loops).
        cfg: :class:`Config`.
    """

    def __init__(self, adjacencies: tuple[torch.Tensor, torch.Tensor, torch.Tensor], cfg: Config = Config()) -> None:
        super().__init__()
        sizes = tuple(a.shape[0] for a in adjacencies)
        if sizes != BRANCH_NODES or any(a.shape != (n, n) for a, n in zip(adjacencies, sizes)):
            raise ValueError(f"HGN needs square adjacencies of {BRANCH_NODES} nodes, got "
                             f"{[tuple(a.shape) for a in adjacencies]}")
        adj1, adj2, adj3 = (_with_self_loops(a) for a in adjacencies)
        c = cfg.hidden
        self.fusion = cfg.fusion
        self.input = _GraphBlock(2, c, adj1, dropout=0.0)
        self.stages = nn.ModuleList([
            nn.ModuleList([_Stage(c, adj1), _Stage(c, adj2)]),
            nn.ModuleList([_Stage(c, adj1), _Stage(c, adj2)]),
            nn.ModuleList([_Stage(c, adj1), _Stage(c, adj2), _Stage(c, adj3)]),
            nn.ModuleList([_Stage(c, adj1), _Stage(c, adj2), _Stage(c, adj3)]),
        ])
        self.to_branch2 = NodeMap(17, 48)
        # One map per (source, target) pair and fusion point: after stages 1-4, and branch 3's birth.
        self.fuse = nn.ModuleList([self._maps(2), self._maps(2), self._maps(3), self._maps(3)])
        self.to_branch3 = nn.ModuleDict({"0": NodeMap(17, 96), "1": NodeMap(48, 96)})
        self.heads = nn.ModuleList([SemGraphConv(c, 3, adj) for adj in (adj1, adj2, adj3)])

    @staticmethod
    def _maps(branches: int) -> nn.ModuleDict:
        """``maps["a>b"]`` maps branch a's nodes to branch b's, for every ordered pair a != b."""
        return nn.ModuleDict({f"{a}>{b}": NodeMap(BRANCH_NODES[a], BRANCH_NODES[b])
                              for b in range(branches) for a in range(branches) if a != b})

    def _fuse(self, features: list[torch.Tensor], maps: nn.ModuleDict) -> list[torch.Tensor]:
        """Each branch plus the maps of the others; see the module docstring for the order."""
        source = features if self.fusion == "simultaneous" else None
        fused = list(features)
        for b in range(len(features)):
            inputs = source if source is not None else fused  # sequential: earlier branches already fused
            fused[b] = features[b] + sum(maps[f"{a}>{b}"](inputs[a]) for a in range(len(features)) if a != b)
        return fused

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[1:] != (17, 2):
            raise ValueError(f"expected (B, 17, 2) inputs, got {tuple(x.shape)}")
        f1 = self.input(to_joint_major(x))
        features = [f1, self.to_branch2(f1)]
        for k, (stage, maps) in enumerate(zip(self.stages, self.fuse)):
            features = self._fuse([block(f) for block, f in zip(stage, features)], maps)
            if k == 1:  # branch 3 is born from the fused branches 1 and 2 before stage 3
                features.append(self.to_branch3["0"](features[0]) + self.to_branch3["1"](features[1]))
        pose, coarse, fine = (to_batch_major(head(f)) for head, f in zip(self.heads, features))
        return pose, coarse, fine
