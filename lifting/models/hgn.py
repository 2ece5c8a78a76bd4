"""HGN: hierarchical graph networks for 2D-to-3D lifting (methods.md §3).

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

Training (methods.md §3.4): ``MSE(fine) + MSE(coarse) + 100 MSE(joints)`` in metres, Adam 1e-3
decayed x0.9 every 20 epochs, batch 64, gradient-norm clip 1, 150 epochs (the released yaml's
``end_epoch``; the README says 100). The surface targets are the markers of
:mod:`lifting.data.surface.markers` (the DeepMimic body surface stands in for upstream's licence-gated
SMPL mesh); the padding nodes' outputs are not supervised, as upstream. ``Config.mesh_loss =
False`` trains on the joint term alone (an ablation). Upstream selects the epoch with the best
*test* error; here the pipeline's ``train.checkpoint`` rule applies, as for every method.

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

from lifting.data.surface.graph import SurfaceGraph
from lifting.models.base import Lifter
from lifting.models.graph import semgcn_adjacency, to_batch_major, to_joint_major
from lifting.models.semgcn import GraphBlock, GroupNonLocal, ResBlock, SemGraphConv
from lifting.models.spec import InputSpec, PaperSetup, Schedule
from lifting.skeleton import H36M17

#: Nodes per branch, in branch order (joints, coarse surface, fine surface).
BRANCH_NODES = (17, 48, 96)


@dataclass(frozen=True)
class Config:
    """HGN configuration; the defaults are the paper's.

    Attributes:
        hidden: channels of every hidden layer (upstream ``hid_dim`` 128).
        fusion: ``"sequential"`` (upstream's in-place order) or ``"simultaneous"`` (see the
            module docstring).
        mesh_loss: train on the surface markers too (the paper); False: the joint loss only.
    """

    hidden: int = 128
    fusion: Literal["sequential", "simultaneous"] = "sequential"
    mesh_loss: bool = True

    def __post_init__(self) -> None:
        if self.hidden < 2:
            raise ValueError(f"needs hidden >= 2 (the non-local blocks halve it), got {self.hidden}")
        if self.fusion not in ("sequential", "simultaneous"):
            raise ValueError(f"fusion must be 'sequential' or 'simultaneous', got {self.fusion!r}")


#: Screen-normalised 17-joint 2D in, root-relative metres out; the loss also needs the markers.
INPUT_SPEC = InputSpec(joint_set="h36m17", input_norm="screen", target="metres", flip_test=False, markers=True)

#: ``asset/yaml/HGN_human36J_train_human36.yml``: Adam 1e-3, x0.9 at epochs 20, 40, ..., batch 64,
#: 150 epochs, gradient clip 1; the loss is the model's own (:meth:`HGN.loss`).
PAPER_SCHEDULE = Schedule(optimizer="adam", lr=1e-3, lr_decay=0.9, lr_decay_every=20, lr_decay_unit="epoch",
                          batch_size=64, epochs=150, loss="mse", grad_clip=1.0)

#: Upstream released GT-2D training only; detections use the same model and recipe.
PAPER = {kind: PaperSetup(Config(), INPUT_SPEC, PAPER_SCHEDULE, "HGN, 1.04M")
         for kind in ("gt", "detected")}

#: Weight of the joint term of the loss (the surface terms have weight 1).
JOINT_WEIGHT = 100.0


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
        self.res = ResBlock(channels, adj, dropout=0.0)
        self.non_local = GroupNonLocal(channels, tuple((k,) for k in range(adj.shape[0])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.non_local(self.res(x))


def _with_self_loops(adj: torch.Tensor) -> torch.Tensor:
    return ((adj != 0) | torch.eye(adj.shape[0], dtype=torch.bool)).float()


class HGN(Lifter):
    """The HGN lifting network: ``forward`` gives the pose, ``forward_all`` the three outputs.

    Args:
        adjacencies: the three branches' ``(N, N)`` adjacencies (17, 48 and 96 nodes); only their
            non-zero patterns matter (each gets self loops).
        cfg: :class:`Config`.
        real: (96,) and (48,) bool, the supervised (non-padding) nodes (default: all).
    """

    def __init__(self, adjacencies: tuple[torch.Tensor, torch.Tensor, torch.Tensor], cfg: Config = Config(),
                 real: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__()
        sizes = tuple(a.shape[0] for a in adjacencies)
        if sizes != BRANCH_NODES or any(a.shape != (n, n) for a, n in zip(adjacencies, sizes)):
            raise ValueError(f"HGN needs square adjacencies of {BRANCH_NODES} nodes, got "
                             f"{[tuple(a.shape) for a in adjacencies]}")
        adj1, adj2, adj3 = (_with_self_loops(a) for a in adjacencies)
        c = cfg.hidden
        self.fusion, self.mesh_loss = cfg.fusion, cfg.mesh_loss
        # which nodes of the 96- and 48-node levels are real (supervised); padding nodes are not
        fine_real, coarse_real = real if real is not None else (torch.ones(96, dtype=torch.bool),
                                                                torch.ones(48, dtype=torch.bool))
        self.register_buffer("fine_real", torch.as_tensor(fine_real, dtype=torch.bool), persistent=False)
        self.register_buffer("coarse_real", torch.as_tensor(coarse_real, dtype=torch.bool), persistent=False)
        self.input = GraphBlock(2, c, adj1, dropout=0.0)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 17, 2) -> (B, 17, 3)``: the pose (the surface branches run but are not returned)."""
        return self.forward_all(x)[0]

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor, schedule: Schedule | None = None,
             aux_targets: torch.Tensor | None = None, context=None) -> torch.Tensor:
        """``MSE(fine) + MSE(coarse) + 100 MSE(joints)`` (metres; the paper's own, whatever
        ``schedule.loss``); ``aux_targets``: the markers (B, M, 3), the real fine nodes then the real
        coarse ones (:mod:`lifting.data.surface.markers`). A sample whose markers are NaN (a Human3.6M frame
        without an SMPL fit) has the joint term only, as upstream, which skips such frames."""
        markers = aux_targets
        pose, fine, coarse = self.forward_all(inputs)
        loss = JOINT_WEIGHT * torch.mean((pose.float() - targets) ** 2)
        if not self.mesh_loss:
            return loss
        if markers is None:
            raise ValueError("HGN's mesh loss needs the body-surface markers (or Config.mesh_loss=False)")
        known = torch.isfinite(markers).flatten(1).all(dim=1)
        if not bool(known.all()):
            if not bool(known.any()):
                return loss
            fine, coarse, markers = fine[known], coarse[known], markers[known]
        n_fine = int(self.fine_real.sum())
        loss = loss + torch.mean((fine[:, self.fine_real].float() - markers[:, :n_fine]) ** 2)
        return loss + torch.mean((coarse[:, self.coarse_real].float() - markers[:, n_fine:]) ** 2)

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, 17, 2) -> ((B, 17, 3), (B, 96, 3), (B, 48, 3))``: joints, fine and coarse surface."""
        if x.dim() != 3 or x.shape[1:] != (17, 2):
            raise ValueError(f"expected (B, 17, 2) inputs, got {tuple(x.shape)}")
        f1 = self.input(to_joint_major(x))
        features = [f1, self.to_branch2(f1)]
        for k, (stage, maps) in enumerate(zip(self.stages, self.fuse)):
            features = self._fuse([block(f) for block, f in zip(stage, features)], maps)
            if k == 1:  # branch 3 is born from the fused branches 1 and 2 before stage 3
                features.append(self.to_branch3["0"](features[0]) + self.to_branch3["1"](features[1]))
        pose, coarse, fine = (to_batch_major(head(f)) for head, f in zip(self.heads, features))
        return pose, fine, coarse


def build(cfg: Config, num_joints: int, surface: SurfaceGraph) -> HGN:
    """HGN on the 17 h36m joints and the 96/48-node graphs of the data's surface hierarchy
    (:class:`~lifting.data.surface.graph.SurfaceGraph`, from the markers table's metadata)."""
    if num_joints != H36M17.num_joints:
        raise ValueError(f"HGN is defined for the 17 h36m joints, got num_joints={num_joints}")
    adjacencies = (semgcn_adjacency(H36M17), torch.as_tensor(surface.coarse_adjacency, dtype=torch.float32),
                   torch.as_tensor(surface.fine_adjacency, dtype=torch.float32))
    real = (torch.as_tensor(surface.fine_real), torch.as_tensor(surface.coarse_real))
    return HGN(adjacencies, cfg, real)
