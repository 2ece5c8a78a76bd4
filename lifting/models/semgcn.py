"""SemGCN: semantic graph convolutions for 2D-to-3D pose lifting (methods.md §7.2).

Paper: L. Zhao, X. Peng, Y. Tian, M. Kapadia, D. N. Metaxas, "Semantic Graph Convolutional
Networks for 3D Human Pose Regression", CVPR 2019. Upstream: ``garyzhao/SemGCN``
(``models/sem_graph_conv.py``, ``models/sem_gcn.py``, ``models/graph_non_local.py``,
``main_gcn.py``). Re-implemented from the descriptions; no upstream code is copied.

Network, on 16 joints (``h36m16``)::

    (B, J, 2) -> GC(2->128) -> [NL] -> 4 x (ResGC(128) -> [NL]) -> SemGraphConv(128->3) -> (B, J, 3)

``GC`` = SemGraphConv -> BatchNorm -> ReLU (-> Dropout), ``ResGC`` = x + GC(GC(x)) and ``NL`` a
non-local block over joint groups (only with ``Config.non_local``).

SemGraphConv (per layer, ``x`` is ``(J, C)`` for one sample)::

    Â = softmax_row(mask(e))      # e: one learnable scalar per non-zero of rownorm(A + I),
                                  # entries outside the mask are -inf before the softmax
    out = diag(Â) ⊙ (x W0) + (Â ⊙ (1 - I)) (x W1) + b

so ``W0`` transforms a joint's own feature and ``W1`` its neighbours', and each row of ``Â``
sums to 1 over that joint's closed neighbourhood.

Non-local block (SemGCN's "concatenation" form, sub-sampled by joint groups): queries for all J
joints; keys and values max-pooled within each group of joints; ``f(i, g) = ReLU(w·[θ_i; φ_g])``
divided by the number of groups; ``z = x + BN(W_z (f @ g))`` with the BN's scale and shift
initialised to 0 (the block starts as the identity).

Parameter counts (16 joints, exact, pinned in ``tests/models/test_semgcn.py``): 267,343 plain
(paper/README 0.27M) and 434,703 with non-local (0.43M).

Configurations: ``Config()`` with ``PAPER_SCHEDULE`` is the plain model (README GT 42.14/33.53 mm,
50 epochs), the default because it is the paper's basic SemGCN; :data:`NON_LOCAL` with
:data:`NON_LOCAL_SCHEDULE` is the README's best GT model (40.78/31.46 mm, 30 epochs). The
Stacked-Hourglass run (non-local, 100 epochs) has no constant here.

Deliberate differences from upstream:

* Hidden layers run joint-major ``(J, B, C)`` so each graph convolution is two GEMMs
  (:mod:`lifting.models.graph`); the maths is unchanged.
* Upstream builds the non-local block from 1x1 convolutions over a joint sequence re-ordered so
  that each group is contiguous, then ``MaxPool1d(group_size)``; here the pooling is a max over
  each group's members directly (no re-ordering, the result is the same) and the
  concatenation projection is split into its θ and φ halves, so no ``(B, 2C', J, G)`` tensor is
  built. Pooling by explicit groups also allows groups of unequal size, which the 17-joint
  grouping needs (:data:`JOINT_GROUPS_17`).
* Upstream's data pipeline and joint groups are 16-joint only (the Stacked-Hourglass layout);
  ``build`` also accepts 17 joints, with the groups of :data:`JOINT_GROUPS_17`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lifting.models.graph import (
    joint_set_for,
    mix_joints,
    semgcn_adjacency,
    to_batch_major,
    to_joint_major,
)
from lifting.models.base import Lifter
from lifting.models.dropout import Dropout, check_dropout
from lifting.models.norm import BatchNorm1d
from lifting.models.spec import InputSpec, PaperSetup, Schedule, check_widths

#: SemGCN's non-local joint groups for h36m16 (upstream ``Human36mDataset`` ``joints_group``):
#: knee+foot (R, L), both hips, pelvis+spine, thorax+head, elbow+wrist (R, L), both shoulders.
JOINT_GROUPS_16: tuple[tuple[int, ...], ...] = (
    (2, 3), (5, 6), (1, 4), (0, 7), (8, 9), (14, 15), (11, 12), (10, 13),
)

#: The same eight groups in h36m17 indices (joints after the nose shift up by one). The nose
#: (index 9), absent from h36m16, joins the thorax+head group, which becomes a triple; all other
#: groups are unchanged. Not from upstream (which has no 17-joint grouping): our extension.
JOINT_GROUPS_17: tuple[tuple[int, ...], ...] = (
    (2, 3), (5, 6), (1, 4), (0, 7), (8, 9, 10), (15, 16), (12, 13), (11, 14),
)

JOINT_GROUPS: dict[int, tuple[tuple[int, ...], ...]] = {16: JOINT_GROUPS_16, 17: JOINT_GROUPS_17}


@dataclass(frozen=True)
class Config:
    """SemGCN hyper-parameters; defaults are the paper's plain (no non-local) GT configuration.

    Attributes:
        hidden: channels of every hidden graph convolution.
        num_layers: residual blocks (two graph convolutions each).
        non_local: insert a grouped non-local block after the input layer and after every
            residual block (the paper's best GT model; see :data:`NON_LOCAL`).
        dropout: dropout after each hidden ReLU; 0 disables it (upstream default).
    """

    hidden: int = 128
    num_layers: int = 4
    non_local: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_widths(self.hidden, "num_layers", self.num_layers, 1)
        check_dropout(self.dropout)


#: The paper's configuration with non-local blocks (README: 40.78/31.46 mm GT, 0.43M params).
NON_LOCAL = Config(non_local=True)

INPUT_SPEC = InputSpec(joint_set="h36m16", input_norm="screen", target="metres", flip_test=False)

#: Plain configuration (:class:`Config` defaults): Adam 1e-3, ×0.96 every 100k steps, batch 64,
#: 50 epochs, MSE, gradient clip 1 (``main_gcn.py`` defaults).
PAPER_SCHEDULE = Schedule(
    optimizer="adam",
    lr=1e-3,
    lr_decay=0.96,
    lr_decay_every=100_000,
    lr_decay_unit="step",
    batch_size=64,
    epochs=50,
    loss="mse",
    grad_clip=1.0,
)

#: With non-local blocks (:data:`NON_LOCAL`) the README trains for 30 epochs, otherwise the same.
NON_LOCAL_SCHEDULE = dataclasses.replace(PAPER_SCHEDULE, epochs=30)

#: The README's plain model for every 2D source (its detection figures use the same network).
PAPER = {kind: PaperSetup(Config(), INPUT_SPEC, PAPER_SCHEDULE, "plain SemGCN, 16 joints, 0.27M")
         for kind in ("gt", "detected")}


class SemGraphConv(nn.Module):
    """Semantic graph convolution over joint-major features.

    Args:
        in_features, out_features: channels C and C'.
        adj: ``(J, J)``; its non-zero pattern (which must include the diagonal) is the mask of
            learnable edge weights, its values are ignored.

    Shapes: ``forward((J, B, C)) -> (J, B, C')``.
    """

    def __init__(self, in_features: int, out_features: int, adj: torch.Tensor) -> None:
        super().__init__()
        mask = adj > 0
        if not bool(mask.diagonal().all()):
            raise ValueError("SemGraphConv needs self loops: every diagonal entry of adj > 0")
        rows, cols = mask.nonzero(as_tuple=True)  # row-major, as upstream's boolean indexing
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.register_buffer("eye", torch.eye(adj.shape[0]), persistent=False)
        # W[0] self, W[1] neighbours. xavier on the 3-D tensor, as upstream does: torch then
        # treats it like a conv kernel (fan_in = C·C', fan_out = 2·C'), kept for fidelity.
        self.W = nn.Parameter(torch.empty(2, in_features, out_features))
        nn.init.xavier_uniform_(self.W, gain=1.414)
        self.e = nn.Parameter(torch.ones(rows.numel()))
        bound = 1.0 / math.sqrt(out_features)
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))

    def attention(self) -> torch.Tensor:
        """``(J, J)`` edge weights: row-wise softmax of ``e`` over each joint's neighbourhood."""
        j = self.eye.shape[0]
        logits = self.e.new_full((j, j), float("-inf")).index_put((self.rows, self.cols), self.e)
        return torch.softmax(logits, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attention()
        diag = a.diagonal()
        h0 = x @ self.W[0]
        h1 = x @ self.W[1]
        out = mix_joints(a * (1.0 - self.eye), h1)
        return torch.addcmul(out + self.bias, diag[:, None, None], h0)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, joints={self.eye.shape[0]}"


class GraphBlock(nn.Module):
    """SemGraphConv -> BatchNorm (over J·B rows) -> ReLU -> Dropout. ``(J, B, C) -> (J, B, C')``."""

    def __init__(self, in_features: int, out_features: int, adj: torch.Tensor, dropout: float):
        super().__init__()
        self.gconv = SemGraphConv(in_features, out_features, adj)
        self.bn = BatchNorm1d(out_features)
        self.dropout = Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gconv(x)
        j, b, c = h.shape
        h = F.relu(self.bn(h.view(j * b, c))).view(j, b, c)
        return self.dropout(h)


class ResBlock(nn.Module):
    """``x + block2(block1(x))``, ``(J, B, C) -> (J, B, C)``."""

    def __init__(self, channels: int, adj: torch.Tensor, dropout: float):
        super().__init__()
        self.block1 = GraphBlock(channels, channels, adj, dropout)
        self.block2 = GraphBlock(channels, channels, adj, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block2(self.block1(x))


class GroupNonLocal(nn.Module):
    """SemGCN's non-local block: concatenation attention, keys/values max-pooled per joint group.

    For joint i and group g (θ, φ, g_: 1x1 projections to ``C/2`` channels, with bias)::

        f(i, g)  = ReLU(w_θ·θ(x_i) + w_φ·max_{k∈g} φ(x_k)) / G
        y_i      = Σ_g f(i, g) · max_{k∈g} g_(x_k)
        z_i      = x_i + BN(W_z y_i)

    Args:
        channels: C. groups: joint-index groups covering every joint exactly once.

    Shapes: ``forward((J, B, C)) -> (J, B, C)``.
    """

    def __init__(self, channels: int, groups: tuple[tuple[int, ...], ...]) -> None:
        super().__init__()
        members = sorted(k for group in groups for k in group)
        if members != list(range(len(members))):
            raise ValueError(f"joint groups must cover each joint exactly once, got {groups}")
        inter = channels // 2
        self.inter = inter
        # Groups padded to equal length by repeating their first member (max is unchanged).
        width = max(len(g) for g in groups)
        index = torch.tensor([list(g) + [g[0]] * (width - len(g)) for g in groups])
        self.num_groups, self.group_width = index.shape
        self.register_buffer("group_index", index.flatten(), persistent=False)
        self.g = nn.Linear(channels, inter)
        self.theta = nn.Linear(channels, inter)
        self.phi = nn.Linear(channels, inter)
        self.concat_project = nn.Linear(2 * inter, 1, bias=False)  # [θ; φ] -> scalar, then ReLU
        self.W_z = nn.Linear(inter, channels)
        self.bn = BatchNorm1d(channels)
        for lin in (self.g, self.theta, self.phi, self.W_z):
            nn.init.kaiming_normal_(lin.weight)
            nn.init.zeros_(lin.bias)
        nn.init.kaiming_normal_(self.concat_project.weight)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def _pool(self, h: torch.Tensor) -> torch.Tensor:
        """``(J, B, C')`` -> ``(G, B, C')``: max over each group's joints."""
        _, b, c = h.shape
        members = h.index_select(0, self.group_index)  # (G·S, B, C'), S = largest group size
        return members.view(self.num_groups, self.group_width, b, c).amax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        j, b, c = x.shape
        flat = x.view(j * b, c)
        w_theta, w_phi = self.concat_project.weight[0].split(self.inter)
        values = self._pool(self.g(flat).view(j, b, self.inter))  # (G, B, C')
        keys = self._pool(self.phi(flat).view(j, b, self.inter))  # (G, B, C')
        q_score = self.theta(flat).view(j, b, self.inter) @ w_theta  # (J, B)
        k_score = keys @ w_phi  # (G, B)
        f = F.relu(q_score[:, None, :] + k_score[None, :, :]) / self.num_groups  # (J, G, B)
        y = torch.einsum("jgb,gbc->jbc", f, values)  # per sample (J, G) @ (G, C') -> (J, B, C')
        return x + self.bn(self.W_z(y.reshape(j * b, self.inter))).view(j, b, c)


class SemGCN(Lifter):
    """SemGCN lifting network. ``forward((B, J, 2)) -> (B, J, 3)``.

    Args:
        adj: ``(J, J)`` adjacency whose non-zero pattern (with self loops) defines the edges.
        hidden, num_layers, dropout: see :class:`Config`.
        groups: joint groups for the non-local blocks, or None for none.
    """

    def __init__(
        self,
        adj: torch.Tensor,
        hidden: int = 128,
        num_layers: int = 4,
        groups: tuple[tuple[int, ...], ...] | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_joints = adj.shape[0]
        layers: list[nn.Module] = [GraphBlock(2, hidden, adj, dropout)]
        if groups is not None:
            layers.append(GroupNonLocal(hidden, groups))
        for _ in range(num_layers):
            layers.append(ResBlock(hidden, adj, dropout))
            if groups is not None:
                layers.append(GroupNonLocal(hidden, groups))
        self.layers = nn.Sequential(*layers)
        self.output = SemGraphConv(hidden, 3, adj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num_joints = self.num_joints
        if x.dim() != 3 or x.shape[1:] != (num_joints, 2):
            raise ValueError(f"expected (B, {num_joints}, 2) inputs, got {tuple(x.shape)}")
        return to_batch_major(self.output(self.layers(to_joint_major(x))))


def build(cfg: Config, num_joints: int) -> SemGCN:
    """SemGCN for ``num_joints`` (16: h36m16, 17: h36m17) mapping ``(B, J, 2) -> (B, J, 3)``."""
    adj = semgcn_adjacency(joint_set_for(num_joints))
    groups = JOINT_GROUPS[num_joints] if cfg.non_local else None
    return SemGCN(adj, cfg.hidden, cfg.num_layers, groups, cfg.dropout)
