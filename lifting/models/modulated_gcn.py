"""Modulated GCN: weight and affinity modulation for 2D-to-3D pose lifting (methods.md §5).

Paper: Z. Zou, W. Tang, "Modulated Graph Convolutional Network for 3D Human Pose Estimation",
ICCV 2021. Upstream: ``ZhimingZo/Modulated-GCN`` at fd15af1: ``Modulated_GCN_gt`` (GT 2D,
SemGCN code base: ``models/modulated_gcn_conv.py``, ``models/modulated_gcn.py``,
``common/graph_utils.py``, ``main_gcn.py``) and ``Modulated-GCN_benchmark`` (CPN detections:
``main_graph.py``, ``train_graph_time.py``, ``ckpt/opt.txt``). Re-implemented from the
descriptions; no upstream code is copied.

Modulated graph convolution, for one sample ``x`` ``(J, C)``::

    Ã   = adj + adj2 ;  Ã = (Ãᵀ + Ã) / 2     # adj = D⁻¹A + I (fixed), adj2 learnable, init 1e-6
    out = (Ã ⊙ I)(M ⊙ x W0) + (Ã ⊙ (1 − I))(M ⊙ x W1) + b

``W0``/``W1`` ``(C, C')`` (xavier-uniform, gain 1.414) transform a joint's own and its
neighbours' features; ``M`` ``(J, C')`` (init ones) is the *weight modulation*, a per-joint
channel scaling that un-shares the weights; ``adj2`` ``(J, J)`` is the *affinity modulation*,
dense, so edges between any two joints can be learnt. There is no softmax (unlike SemGCN).

Network::

    (B, J, 2) -> GC(2->H) -> num_layers x ResGC(H) -> [NL] -> ModGC(H->3) -> (B, J, 3)

``GC`` = ModGC -> BatchNorm -> ReLU (-> Dropout), ``ResGC`` = x + GC(GC(x)), ``NL`` an
embedded-Gaussian non-local block over the J joints (softmax(θᵀφ) g, then a 1x1 projection and
BatchNorm initialised to 0, added to the input).

Two paper configurations (parameter counts exact, pinned in tests):

* GT 2D (:class:`Config` defaults): 16 joints, H=128, 4 residual blocks, dropout 0, no
  non-local: **287,923** parameters (README 0.29M); 38.25/30.06 mm upstream checkpoint.
* Detections (:data:`DETECTION`, CPN 2D): 17 joints, H=384, 4 residual blocks, dropout 0.2,
  non-local block after the residual stack: **2,731,840** parameters (≈2.73M); 49.39 mm
  (checkpoint name). Schedule :data:`DETECTION_SCHEDULE`, inputs :data:`DETECTION_INPUT_SPEC`.

Deliberate differences from upstream:

* Non-local. The GT sub-project's ``--non_local`` path (SemGCN-style grouped non-local blocks
  interleaved with the residual blocks) calls ``reduce`` without importing it, so it cannot run
  and no published number comes from it. The only non-local model the authors trained is the
  detection one: a single embedded-Gaussian block over all joints, after the residual stack and
  before the output layer. ``Config.non_local`` implements that intent, for either joint count.
* Hidden layers run joint-major ``(J, B, C)`` so each graph convolution is two feature GEMMs and
  one ``J×J`` mix GEMM (:mod:`lifting.models.graph`); the maths is unchanged.
* Upstream's detection model takes and returns 5-D ``(N, C, T, J, M)`` tensors; here every
  configuration maps ``(B, J, 2) -> (B, J, 3)``.
* Upstream's paper mentions an L1 sparsity prior on the affinity modulation; its code instead
  adds an L1 term on the predictions, which the schedules here reproduce (``l1_weight``).
* ``DETECTION_SCHEDULE.epochs`` is 30, not the 31 of ``opt.txt``: ``main_graph.py`` loops
  ``for epoch in range(1, nepoch)``, so ``nepoch = 31`` trains 30 epochs. Train-time flip
  augmentation is part of that recipe but not expressible in a :class:`Schedule`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lifting.models.graph import (
    joint_set_for,
    mix_joints,
    modgcn_adjacency,
    to_batch_major,
    to_joint_major,
)
from lifting.models.base import Lifter
from lifting.models.dropout import Dropout, check_dropout
from lifting.models.norm import BatchNorm1d
from lifting.models.spec import InputSpec, PaperSetup, Schedule, check_widths


@dataclass(frozen=True)
class Config:
    """Modulated GCN hyper-parameters; defaults are the paper's GT-2D configuration.

    Attributes:
        hidden: channels of every hidden graph convolution (GT 128, detections 384).
        num_layers: residual blocks, two graph convolutions each (4).
        dropout: dropout after each hidden ReLU; 0 disables it (GT 0, detections 0.2).
        non_local: an embedded-Gaussian non-local block over all joints after the residual
            stack (GT False, detections True).
    """

    hidden: int = 128
    num_layers: int = 4
    dropout: float = 0.0
    non_local: bool = False

    def __post_init__(self) -> None:
        check_widths(self.hidden, "num_layers", self.num_layers, 1)
        check_dropout(self.dropout)


#: The paper's configuration for detected (CPN) 2D, ``Modulated-GCN_benchmark/ckpt/opt.txt``.
#: Meant for 17 joints (h36m17): ``build(DETECTION, 17)`` has 2,731,840 parameters.
DETECTION = Config(hidden=384, num_layers=4, dropout=0.2, non_local=True)

#: GT-2D setting: 16 joints, screen-normalised 2D, root-relative metres, no flip test.
INPUT_SPEC = InputSpec(joint_set="h36m16", input_norm="screen", target="metres", flip_test=False)

#: Detection setting: 17 joints, screen-normalised 2D, root-relative metres, test-time flip.
DETECTION_INPUT_SPEC = InputSpec(
    joint_set="h36m17", input_norm="screen", target="metres", flip_test=True
)

#: GT setting (``main_gcn.py``): Adam 1e-3, ×0.96 every 100k steps, batch 64, 50 epochs,
#: loss 0.9·MSE + 0.1·L1 (``--lamda 0.1``), gradient clip 1.
PAPER_SCHEDULE = Schedule(
    optimizer="adam",
    lr=1e-3,
    lr_decay=0.96,
    lr_decay_every=100_000,
    lr_decay_unit="step",
    batch_size=64,
    epochs=50,
    loss="mse",
    l1_weight=0.1,
    grad_clip=1.0,
)

#: Detection setting (``main_graph.py``, ``opt.txt``): Adam (AMSGrad) 5e-3, ×0.9 after every
#: 4th epoch, batch 256, 30 epochs (see module doc), loss 0.99·MPJPE + 0.01·L1 (``--norm 0.01``),
#: no gradient clipping, no weight decay (``opt.txt``'s 1e-4 only reaches the SGD branch).
DETECTION_SCHEDULE = Schedule(
    optimizer="adam",
    lr=5e-3,
    lr_decay=0.9,
    lr_decay_every=4,
    lr_decay_unit="epoch",
    batch_size=256,
    epochs=30,
    loss="mpjpe",
    l1_weight=0.01,
    grad_clip=None,
    amsgrad=True,
)


#: GT 2D: the GT sub-project's model; detected 2D: the benchmark sub-project's CPN model.
PAPER = {
    "gt": PaperSetup(Config(), INPUT_SPEC, PAPER_SCHEDULE, "GT configuration: 16 joints, hidden 128, 0.29M"),
    "detected": PaperSetup(DETECTION, DETECTION_INPUT_SPEC, DETECTION_SCHEDULE,
                           "CPN configuration: 17 joints, hidden 384, non-local, flip test, 2.73M"),
}

class ModulatedGraphConv(nn.Module):
    """Modulated graph convolution over joint-major features.

    Args:
        in_features, out_features: channels C and C'.
        adj: ``(J, J)`` fixed base adjacency (``D⁻¹A + I``).

    Parameters: ``W`` ``(2, C, C')`` (self, neighbours), ``M`` ``(J, C')`` weight modulation,
    ``adj2`` ``(J, J)`` affinity modulation, ``bias`` ``(C',)``.

    Shapes: ``forward((J, B, C)) -> (J, B, C')``.
    """

    def __init__(self, in_features: int, out_features: int, adj: torch.Tensor) -> None:
        super().__init__()
        j = adj.shape[0]
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("adj", adj.clone().float(), persistent=False)
        self.register_buffer("off_diag", 1.0 - torch.eye(j), persistent=False)
        # xavier on the 3-D tensor as upstream (torch treats it like a conv kernel:
        # fan_in = C·C', fan_out = 2·C'), kept for fidelity.
        self.W = nn.Parameter(torch.empty(2, in_features, out_features))
        nn.init.xavier_uniform_(self.W, gain=1.414)
        self.M = nn.Parameter(torch.ones(j, out_features))
        self.adj2 = nn.Parameter(torch.full((j, j), 1e-6))
        bound = 1.0 / math.sqrt(out_features)
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))

    def affinity(self) -> torch.Tensor:
        """``(J, J)`` symmetrised modulated affinity ``Ã = ((adj + adj2)ᵀ + (adj + adj2)) / 2``."""
        a = self.adj + self.adj2
        return 0.5 * (a + a.T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.affinity()
        m = self.M[:, None, :]  # (J, 1, C')
        h0 = x @ self.W[0]
        h1 = x @ self.W[1]
        out = mix_joints(a * self.off_diag, m * h1)
        return torch.addcmul(out + self.bias, a.diagonal()[:, None, None] * m, h0)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, joints={self.adj.shape[0]}"


class _GraphBlock(nn.Module):
    """ModulatedGraphConv -> BatchNorm (over J·B rows) -> ReLU -> Dropout.
    ``(J, B, C) -> (J, B, C')``."""

    def __init__(self, in_features: int, out_features: int, adj: torch.Tensor, dropout: float):
        super().__init__()
        self.gconv = ModulatedGraphConv(in_features, out_features, adj)
        self.bn = BatchNorm1d(out_features)
        self.dropout = Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gconv(x)
        j, b, c = h.shape
        h = F.relu(self.bn(h.view(j * b, c))).view(j, b, c)
        return self.dropout(h)


class _ResBlock(nn.Module):
    """``x + block2(block1(x))``, ``(J, B, C) -> (J, B, C)``."""

    def __init__(self, channels: int, adj: torch.Tensor, dropout: float):
        super().__init__()
        self.block1 = _GraphBlock(channels, channels, adj, dropout)
        self.block2 = _GraphBlock(channels, channels, adj, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block2(self.block1(x))


class JointNonLocal(nn.Module):
    """Embedded-Gaussian non-local block over the joints (Wang et al., CVPR 2018).

    With 1x1 projections θ, φ, g to ``C/2`` channels (with bias)::

        y_i = Σ_j softmax_j(θ(x_i)·φ(x_j)) g(x_j)      (no 1/sqrt(d) scaling)
        z_i = x_i + BN(W_z y_i)                          (BN scale and shift start at 0)

    Projections keep PyTorch's default initialisation, as upstream's ``NONLocalBlock2D``.

    Shapes: ``forward((J, B, C)) -> (J, B, C)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.inter = max(channels // 2, 1)
        self.theta = nn.Linear(channels, self.inter)
        self.phi = nn.Linear(channels, self.inter)
        self.g = nn.Linear(channels, self.inter)
        self.W_z = nn.Linear(self.inter, channels)
        self.bn = BatchNorm1d(channels)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        j, b, c = x.shape
        flat = x.view(j * b, c)
        # (B, J, C') views of the joint-major projections.
        q = self.theta(flat).view(j, b, self.inter).transpose(0, 1)
        k = self.phi(flat).view(j, b, self.inter).transpose(0, 1)
        v = self.g(flat).view(j, b, self.inter).transpose(0, 1)
        y = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (B, J, C')
        y = y.transpose(0, 1).reshape(j * b, self.inter)
        return x + self.bn(self.W_z(y)).view(j, b, c)


class ModulatedGCN(Lifter):
    """Modulated GCN lifting network. ``forward((B, J, 2)) -> (B, J, 3)``.

    Args:
        adj: ``(J, J)`` base adjacency ``D⁻¹A + I``.
        hidden, num_layers, dropout, non_local: see :class:`Config`.
    """

    def __init__(
        self,
        adj: torch.Tensor,
        hidden: int = 128,
        num_layers: int = 4,
        dropout: float = 0.0,
        non_local: bool = False,
    ) -> None:
        super().__init__()
        self.num_joints = adj.shape[0]
        layers: list[nn.Module] = [_GraphBlock(2, hidden, adj, dropout)]
        layers += [_ResBlock(hidden, adj, dropout) for _ in range(num_layers)]
        if non_local:
            layers.append(JointNonLocal(hidden))
        self.layers = nn.Sequential(*layers)
        self.output = ModulatedGraphConv(hidden, 3, adj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num_joints = self.num_joints
        if x.dim() != 3 or x.shape[1:] != (num_joints, 2):
            raise ValueError(f"expected (B, {num_joints}, 2) inputs, got {tuple(x.shape)}")
        return to_batch_major(self.output(self.layers(to_joint_major(x))))


def build(cfg: Config, num_joints: int) -> ModulatedGCN:
    """Modulated GCN for ``num_joints`` (16: h36m16, 17: h36m17): ``(B, J, 2) -> (B, J, 3)``."""
    adj = modgcn_adjacency(joint_set_for(num_joints))
    return ModulatedGCN(adj, cfg.hidden, cfg.num_layers, cfg.dropout, cfg.non_local)
