"""GridConv (Kang et al., AAAI 2023): 2D-to-3D lifting by convolution on a 5x5 semantic grid.

Re-implemented from the description in ``reference/methods.md`` §2 (no upstream code is copied).

Pipeline: a *semantic grid transformation* (SGT) arranges the 17 H36M joints on a 5x5 grid
(``(B, 17, 2) -> 25 cells x 2 channels``); the *grid lifting network* (GLN) maps that grid to a
5x5x3 grid with two-branch 3x3 grid convolutions; the inverse SGT reads the 17 joints back
(``-> (B, 17, 3)``, root-relative metres, the units of ``INPUT_SPEC.target``).

Variants (``Config``):

* ``dynamic=True`` (paper default): D-GridConv. Each two-branch convolution has a dynamic
  attention computed from its own input (global average pool -> 1x1 conv ``Cin -> max(Cin // 16,
  16)`` without bias -> BN -> ReLU -> 1x1 conv with bias -> ``9 * 25`` values ->
  ``sigmoid(a / T)``) giving one weight per kernel tap and grid cell, shared by all channels
  and both branches.
  ``dynamic=False``: plain GridConv (no attention). Upstream's plain GridConv relied on PyTorch
  1.4 halving circular padding; here every branch pads by exactly 1, as D-GridConv does.
* ``padding``: the two branches' padding modes, ``c`` circular, ``z`` zeros, ``r`` replicate
  (``("c", "r")`` is the paper's choice for GT 2D, ``("c", "z")`` for HRNet 2D). One mode sets
  both branches. Unknown modes raise ``ValueError`` naming the valid ones.
* ``sgt="handcrafted"``: the fixed table of methods.md §2.1 (including the thorax-nose midpoint
  in cell (2, 2)). As in the paper, the L2 loss is computed on the 25 grid cells (targets are
  grid-transformed too, so duplicated joints weigh more and the midpoint is supervised). See the
  training contract below.
* ``sgt="learnable"`` ("AutoGrids"): a (25, 17) parameter initialised from the ``standard``
  prior (the handcrafted layout mirrored left<->right, with joint 9 in cell (2, 2)); each cell
  takes the joint of its row's argmax. The loss is on the 17 joints (the loop's default).

Training contract (the :class:`~lifting.models.base.Lifter` hooks ``lifting/train.py`` calls):

* ``model.set_epoch_progress(epoch)``: called before every training step with the fractional
  epoch ``epoch_index + step_in_epoch / steps_per_epoch`` (0 at the start of training). It sets
  the attention temperature ``T = max(1, T0 - (T0 - 1) * epoch / E)`` with ``T0 = 30`` and
  ``E = 10`` epochs (``temperature_at``): T(0) = 30, T(5) = 15.5, T(>= 10) = 1. Upstream anneals
  linearly per iteration over the first 10 epochs; the fractional epoch gives the same ramp.
  Under a budget the loop reports progress on the paper's 100-epoch clock (``lifting/train.py``),
  so the ramp keeps its share of the run, the first 10 %: a 3-epoch run reaches T = 1 after
  0.3 epochs. Kept at 10 real epochs, a short run would train its whole length at T > 20 with a
  near-constant attention of ~0.5, i.e. without the dynamic part of D-GridConv.
  The temperature is a buffer, so it is saved with the state dict and a model restored from a
  checkpoint evaluates with the temperature it was trained to; a freshly built model has
  T = T0 (epoch 0). A loop that never calls it trains the whole run at T = 30.
* ``model.loss(inputs, targets, schedule) -> scalar``: the handcrafted-SGT model
  (``HandcraftedGridLiftingNet``) overrides the default loss on the ``(B, J, 3)`` output with the
  paper's MSE on the 25 grid cells. ``forward`` always
  returns ``(B, 17, 3)`` joints for evaluation; ``forward_grid`` and ``grid_targets`` expose
  the grid-space tensors the loss compares.

Learnable SGT and the upstream bug: upstream's training step called the model with its default
``is_training=False``, so the hard one-hot mapping carried no gradient and the "learnable" SGT
never moved from its prior. Here the paper's intent is implemented, in the form of upstream's
own ``is_training=True`` code path: in ``train()`` mode the forward uses the hard one-hot of each
row's argmax and passes the gradient straight through to the raw assignment matrix
(``hard + S - S.detach()``: no softmax in the backward), in ``eval()`` mode the plain one-hot.
``Config.sgt_gradient="none"`` reproduces the released training script instead (no gradient:
the learnable SGT stays at its prior; labelled as such in the run's configuration). The inverse is the mean over
the cells assigned to each joint, divided by the column sums of the straight-through matrix as
upstream divides (``S_hard^T y / (S_hard.sum(0) + 1e-8)``), so the gradient also flows through
each joint's cell count (until 2026-12 ours detached the counts: a 46 % different logit gradient).
A joint that no cell selects is predicted at the origin (the root position, 0 m); there upstream's
1e-8 divides a zero count and scales that joint's gradient by 1e8, so here its count is a
constant 1 instead (same value, no exploding gradient); its error still reaches the logits
through the straight-through numerator, which pulls cells toward it.

Speed (DESIGN.md §6): activations are kept *cells-major*, ``(25, B, C)``, so a 3x3 tap shifted
over the grid reads whole ``(B, C)`` blocks of rows: each tap is a ``[rows * B, Cin] @ [Cin,
Cout]`` product, scaled row-wise by the attention (one weight per tap and cell, shared across
channels). No patch is unfolded. Two exact savings on top: where both branches read the same
source cell (every tap whose neighbour lies inside the grid: 169 of the 225 tap-cell pairs) the
two branches are one product with the summed kernel ``W1[k] + W2[k]``; only the 56 border pairs
are computed per branch (and none for a zero pad). For ``("c", "r")`` that is 281 row blocks
instead of 450 (0.62x the FLOPs of two separate convolutions), for ``("c", "z")`` 225 (0.5x).
Two execution strategies compute the same thing (``shifted_grid_conv``): on the CPU,
``segments`` runs one ``addmm`` per run of consecutive cells directly on views of the input and
output (no gather) with a hand-written backward that saves only the input, attention and
kernels; elsewhere (GPU), ``gather`` does one row gather, a handful of batched GEMMs and a
scatter-add with plain autograd (few kernel launches, autocast-friendly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from lifting.models.base import Lifter
from lifting.models.norm import BatchNorm1d
from lifting.models.spec import InputSpec, PaperSetup, Schedule

__all__ = [
    "Config",
    "INPUT_SPEC",
    "PAPER_SCHEDULE",
    "PAPER",
    "PADDING_MODES",
    "HANDCRAFTED_GRID",
    "STANDARD_PRIOR",
    "build",
    "temperature_at",
    "handcrafted_sgt_matrices",
    "HandcraftedSGT",
    "LearnableSGT",
    "GridAttention",
    "ShiftPlan",
    "shifted_grid_conv",
    "TwoBranchGridConv",
    "GridLiftingNet",
    "HandcraftedGridLiftingNet",
]

GRID = 5
NUM_JOINTS = 17
TAPS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))  # k = 3 * (dy + 1) + (dx + 1)

PADDING_MODES = {"c": "circular", "z": "zeros", "r": "replicate"}
_MODE_ALIASES = {"c": "c", "circular": "c", "z": "z", "zeros": "z", "zero": "z", "r": "r",
                 "replicate": "r"}

# Handcrafted SGT (methods.md §2.1), row-major over the 5x5 grid; None = mean of joints 8 and 9.
HANDCRAFTED_GRID: tuple[tuple[int | None, ...], ...] = (
    (7, 7, 7, 7, 7),
    (0, 8, 8, 8, 0),
    (1, 14, None, 11, 4),
    (2, 15, 9, 12, 5),
    (3, 16, 10, 13, 6),
)
# Learnable-SGT ``standard`` prior: the handcrafted grid mirrored left<->right, 9 in cell (2, 2).
STANDARD_PRIOR: tuple[tuple[int, ...], ...] = (
    (7, 7, 7, 7, 7),
    (0, 8, 8, 8, 0),
    (4, 11, 9, 14, 1),
    (5, 12, 9, 15, 2),
    (6, 13, 10, 16, 3),
)


def _normalise_padding(padding: str | Sequence[str]) -> tuple[str, str]:
    """``"c"``, ``"circular"``, ``"cr"``, ``("c", "r")`` or ``["c", "r"]`` -> ``("c", "r")``."""
    valid = ", ".join(f"{k!r} ({v})" for k, v in PADDING_MODES.items())
    if isinstance(padding, str):
        key = padding.strip().lower()
        if key in _MODE_ALIASES:
            modes: Sequence[str] = (key, key)
        elif len(key) == 2 and all(ch in PADDING_MODES for ch in key):
            modes = (key[0], key[1])
        else:
            raise ValueError(f"unknown GridConv padding {padding!r}: give one mode for both "
                             f"branches or a pair of modes; valid modes are {valid}")
    else:
        modes = tuple(padding)
        if len(modes) not in (1, 2):
            raise ValueError(f"GridConv padding needs one or two modes, got {padding!r}; "
                             f"valid modes are {valid}")
        if len(modes) == 1:
            modes = (modes[0], modes[0])
    out = []
    for mode in modes:
        key = str(mode).strip().lower()
        if key not in _MODE_ALIASES:
            raise ValueError(f"unknown GridConv padding mode {mode!r}; valid modes are {valid}")
        out.append(_MODE_ALIASES[key])
    return out[0], out[1]


@dataclass(frozen=True)
class Config:
    """GridConv configuration; the defaults are the paper's D-GridConv for GT 2D input.

    Attributes:
        padding: the two branches' padding modes (``c`` circular, ``z`` zeros, ``r``
            replicate). One mode (``"c"``) sets both; ``"cr"`` and ``["c", "r"]`` also work.
            Normalised to a tuple of two letters.
        sgt: ``"handcrafted"`` (fixed table, loss on the 25 grid cells) or ``"learnable"``.
        dynamic: True = D-GridConv (dynamic attention), False = plain GridConv.
        hidden: channels of the hidden grid layers. num_blocks: residual blocks.
        dropout: Dropout2d probability (whole channels are dropped per sample).
        grid: grid side; only the paper's 5 is defined (the SGT tables are 5x5).
        max_temperature, temperature_epochs: the attention temperature starts at
            ``max_temperature`` and reaches 1 after ``temperature_epochs`` of the paper's epochs
            (a budgeted run anneals over the same share of its length).
        sgt_gradient: learnable SGT only: ``"straight_through"`` (the paper's ``is_training=True``
            path: the gradient reaches the raw assignment matrix) or ``"none"`` (upstream's
            released training script: the SGT never leaves its prior).
    """

    padding: str | tuple[str, str] = ("c", "r")
    sgt: Literal["handcrafted", "learnable"] = "handcrafted"
    dynamic: bool = True
    hidden: int = 256
    num_blocks: int = 2
    dropout: float = 0.25
    grid: int = GRID
    max_temperature: float = 30.0
    temperature_epochs: float = 10.0
    sgt_gradient: Literal["straight_through", "none"] = "straight_through"

    def __post_init__(self) -> None:
        object.__setattr__(self, "padding", _normalise_padding(self.padding))
        if self.sgt not in ("handcrafted", "learnable"):
            raise ValueError(f"unknown GridConv sgt {self.sgt!r}; use 'handcrafted' or "
                             "'learnable'")
        if self.grid != GRID:
            raise ValueError(f"GridConv grid must be {GRID} (the SGT tables are 5x5), "
                             f"got {self.grid}")
        if self.hidden < 1 or self.num_blocks < 0:
            raise ValueError(f"GridConv needs hidden >= 1 and num_blocks >= 0, got "
                             f"hidden={self.hidden}, num_blocks={self.num_blocks}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GridConv dropout must be in [0, 1), got {self.dropout}")
        if self.max_temperature < 1.0 or self.temperature_epochs <= 0:
            raise ValueError("GridConv needs max_temperature >= 1 and temperature_epochs > 0")


INPUT_SPEC = InputSpec(joint_set="h36m17", input_norm="screen", target="metres", flip_test=False)

# Adam 1e-3, x0.96 every 10 epochs, batch 200, 100 epochs (README), MSE in metres. Upstream steps
# its StepLR when ``epoch % 10 == 0`` at the end of an epoch, so the first decay follows epoch 1
# and the later ones epochs 11, 21, ...
PAPER_SCHEDULE = Schedule(
    optimizer="adam",
    lr=1e-3,
    lr_decay=0.96,
    lr_decay_every=10,
    lr_decay_first=1,
    lr_decay_unit="epoch",
    batch_size=200,
    epochs=100,
    loss="mse",
)


#: README: ``(c, r)`` padding for GT 2D, ``(c, z)`` for detections (HRNet); otherwise the same.
PAPER = {
    "gt": PaperSetup(Config(padding=("c", "r")), INPUT_SPEC, PAPER_SCHEDULE, "D-GridConv, padding (c, r)"),
    "detected": PaperSetup(Config(padding=("c", "z")), INPUT_SPEC, PAPER_SCHEDULE, "D-GridConv, padding (c, z)"),
}

def temperature_at(epoch: float, max_temperature: float = 30.0, epochs: float = 10.0) -> float:
    """Attention temperature after ``epoch`` (fractional) epochs: ``max(1, T0 - (T0-1) e / E)``."""
    if epoch <= 0:
        return float(max_temperature)
    return float(max(1.0, max_temperature - (max_temperature - 1.0) * epoch / epochs))


# --------------------------------------------------------------------------------------------
# Semantic grid transformations. Both map (B, 17, C) joints to cells-major (25, B, C) grids and
# back; ``grid_cells(x)`` gives the (B, 25, C) view used for losses.


def handcrafted_sgt_matrices() -> tuple[torch.Tensor, torch.Tensor]:
    """The handcrafted SGT as matrices: forward (25, 17) and inverse (17, 25), float32.

    Forward: one-hot rows, except cell (2, 2) = 0.5 * (joint 8 + joint 9). Inverse: each joint is
    the mean of the cells holding it alone (joint 7: row 0; joint 0: cells (1, 0) and (1, 4);
    joint 8: cells (1, 1)-(1, 3)); the midpoint cell (2, 2) is discarded.
    """
    fwd = torch.zeros(GRID * GRID, NUM_JOINTS)
    for cell, joint in enumerate(j for row in HANDCRAFTED_GRID for j in row):
        if joint is None:
            fwd[cell, 8] = fwd[cell, 9] = 0.5
        else:
            fwd[cell, joint] = 1.0
    pure = (fwd == 1.0).float()  # cells holding a single joint
    inv = pure.t() / pure.sum(0).unsqueeze(1)
    return fwd, inv


def _to_cells(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``matrix`` (G, J) applied to joints (B, J, C) -> cells-major (G, B, C), one matmul."""
    b, j, c = x.shape
    return (matrix.to(x.dtype) @ x.transpose(0, 1).reshape(j, b * c)).view(-1, b, c)


def _from_cells(matrix: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``matrix`` (J, G) applied to a cells-major grid (G, B, C) -> joints (B, J, C)."""
    g, b, c = grid.shape
    return (matrix.to(grid.dtype) @ grid.reshape(g, b * c)).view(-1, b, c).transpose(0, 1)


class HandcraftedSGT(nn.Module):
    """Fixed 17-joint <-> 5x5 grid mapping (methods.md §2.1), as two constant matrices."""

    def __init__(self) -> None:
        super().__init__()
        fwd, inv = handcrafted_sgt_matrices()
        self.register_buffer("forward_matrix", fwd, persistent=False)
        self.register_buffer("inverse_matrix", inv, persistent=False)

    def to_grid(self, joints: torch.Tensor) -> torch.Tensor:
        """(B, 17, C) -> cells-major (25, B, C)."""
        return _to_cells(self.forward_matrix, joints)

    def from_grid(self, grid: torch.Tensor) -> torch.Tensor:
        """Cells-major (25, B, C) -> (B, 17, C)."""
        return _from_cells(self.inverse_matrix, grid)


class LearnableSGT(nn.Module):
    """Learnable SGT: logits (25, 17); cell g holds joint argmax_j logits[g, j].

    Initialised from the ``standard`` prior as one-hot logits (1 for the prior's joint, 0
    elsewhere). ``train()`` mode: hard one-hot forward; with ``gradient="straight_through"`` the
    gradient of the one-hot passes unchanged to the logits (so the mapping learns), with
    ``"none"`` it stops there. ``eval()`` mode: hard one-hot, no gradient path needed.
    """

    def __init__(self, prior: Sequence[Sequence[int]] = STANDARD_PRIOR,
                 gradient: Literal["straight_through", "none"] = "straight_through") -> None:
        super().__init__()
        self.gradient = gradient
        cells = torch.tensor([j for row in prior for j in row])
        if cells.numel() != GRID * GRID or cells.min() < 0 or cells.max() >= NUM_JOINTS:
            raise ValueError("a learnable-SGT prior is 5 rows of 5 joint indices in [0, 17)")
        self.logits = nn.Parameter(F.one_hot(cells, NUM_JOINTS).float())

    def mapping(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (25, 17) cell->joint matrix used in this mode, and the (17,) per-joint cell counts
        (its column sums, with their gradient; 1 for a joint without cells, read as the origin)."""
        hard = F.one_hot(self.logits.argmax(dim=1), NUM_JOINTS).to(self.logits.dtype)
        held = hard.sum(0)
        if self.training and self.gradient == "straight_through":
            hard = hard + (self.logits - self.logits.detach())  # value: the one-hot; gradient: identity
        return hard, torch.where(held > 0, hard.sum(0), torch.ones_like(held))

    def to_grid(self, joints: torch.Tensor) -> torch.Tensor:
        return _to_cells(self.mapping()[0], joints)

    def from_grid(self, grid: torch.Tensor) -> torch.Tensor:
        mat, counts = self.mapping()
        return _from_cells(mat.t() / counts.unsqueeze(1), grid)

    def assignment(self) -> torch.Tensor:
        """The current 5x5 layout as joint indices (the row argmax)."""
        return self.logits.detach().argmax(dim=1).view(GRID, GRID)


# --------------------------------------------------------------------------------------------
# Two-branch grid convolution as shifted GEMMs.


def _source_cell(mode: str, cell: int, dy: int, dx: int) -> int | None:
    """Cell read by tap (dy, dx) at ``cell`` after padding by 1 with ``mode`` (None: a zero)."""
    i, j = divmod(cell, GRID)
    a, b = i + dy, j + dx
    if 0 <= a < GRID and 0 <= b < GRID:
        return a * GRID + b
    if mode == "c":
        return (a % GRID) * GRID + b % GRID
    if mode == "r":
        return min(max(a, 0), GRID - 1) * GRID + min(max(b, 0), GRID - 1)
    return None


class ShiftPlan(nn.Module):
    """Which input cells each tap's product reads and which output cells it adds to.

    For every tap k and output cell p, each branch reads the source cell its padding mode gives
    (none for a zero pad). Where both branches read the same source (every in-grid neighbour)
    the pair is one product with the summed kernel ``W1[k] + W2[k]`` (weight 2); elsewhere a
    branch's own kernel (weight 0 or 1). The resulting *jobs* ``(weight, tap, output cells,
    source cells)`` are stored two ways:

    * ``segments``: runs ``(weight, tap, first output cell, first source cell, length)`` whose
      output and source cells are both consecutive, so that in the cells-major layout both are
      contiguous ``(length * B, C)`` matrices (the CPU path: views, no gather).
    * concatenated index tables in job order, jobs sorted by size so that equal-size jobs form
      one ``bmm`` (the gather path used on GPUs, where few large kernels beat many small ones):
      ``source`` (R,) rows gathered from the input, ``target`` (R,) output rows they add to,
      ``attention_rows`` (R,) = ``tap * 25 + target``, ``weight_index`` (jobs,) = ``weight * 9
      + tap`` into the stacked ``[W1; W2; W1 + W2]``, ``groups`` = [(cells per job, jobs)].
    """

    def __init__(self, modes: tuple[str, str]) -> None:
        super().__init__()
        jobs = []
        for k, (dy, dx) in enumerate(TAPS):
            groups: dict[int, list[tuple[int, int]]] = {w: [] for w in range(3)}
            for cell in range(GRID * GRID):
                s1, s2 = (_source_cell(m, cell, dy, dx) for m in modes)
                if s1 is not None and s1 == s2:
                    groups[2].append((cell, s1))
                    continue
                for w, s in ((0, s1), (1, s2)):
                    if s is not None:
                        groups[w].append((cell, s))
            jobs += [(w, k, pairs) for w, pairs in groups.items() if pairs]
        self.modes = modes
        self.rows = sum(len(pairs) for _, _, pairs in jobs)

        self.segments: list[tuple[int, int, int, int, int]] = []
        for w, k, pairs in jobs:
            for p, s in pairs:
                last = self.segments[-1] if self.segments else None
                extends = last is not None and last[:2] == (w, k) and (
                    last[2] + last[4] == p and last[3] + last[4] == s)
                if extends:
                    self.segments[-1] = (w, k, last[2], last[3], last[4] + 1)
                else:
                    self.segments.append((w, k, p, s, 1))

        jobs.sort(key=lambda job: (-len(job[2]), job[0], job[1]))
        self.groups: list[tuple[int, int]] = []
        for _, _, pairs in jobs:
            if self.groups and self.groups[-1][0] == len(pairs):
                self.groups[-1] = (len(pairs), self.groups[-1][1] + 1)
            else:
                self.groups.append((len(pairs), 1))
        tables = {
            "source": [s for _, _, pairs in jobs for _, s in pairs],
            "target": [p for _, _, pairs in jobs for p, _ in pairs],
            "attention_rows": [k * GRID * GRID + p for _, k, pairs in jobs for p, _ in pairs],
            "weight_index": [w * 9 + k for w, k, _ in jobs],
        }
        for name, values in tables.items():
            self.register_buffer(name, torch.tensor(values), persistent=False)

    def extra_repr(self) -> str:
        return (f"modes={self.modes}, rows={self.rows} of {2 * 9 * GRID * GRID}, "
                f"segments={len(self.segments)}")


def _tap_kernels(weight1: torch.Tensor, weight2: torch.Tensor) -> torch.Tensor:
    """(Cout, Cin, 3, 3) x 2 -> (3, 9, Cin, Cout): branch 1, branch 2 and their sum, per tap."""
    cout, cin = weight1.shape[:2]
    t1 = weight1.permute(2, 3, 1, 0).reshape(9, cin, cout)
    t2 = weight2.permute(2, 3, 1, 0).reshape(9, cin, cout)
    return torch.stack([t1, t2, t1 + t2])


class _SegmentConv(torch.autograd.Function):
    """CPU path: one ``addmm`` per segment on contiguous row blocks, hand-written backward.

    Saves only the input, the attention and the kernels (no per-tap intermediates). With
    attention, the narrower side of each product is scaled: ``(a * X) @ W`` when Cin <= Cout,
    else ``a * (X @ W)``; both equal the attention-scaled tap.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)
    def forward(ctx, x, attention, weight1, weight2, bias, plan):
        n, b, c = x.shape
        o = weight1.shape[0]
        kernels = _tap_kernels(weight1, weight2)
        xf = x.reshape(n * b, c)
        att = attention.reshape(9, n * b, 1) if attention is not None else None
        out = (bias.expand(n * b, o).contiguous() if bias is not None
               else x.new_zeros(n * b, o))
        for w, k, p, s, m in plan.segments:
            rows_in, rows_out = slice(s * b, (s + m) * b), slice(p * b, (p + m) * b)
            if att is None:
                out[rows_out].addmm_(xf[rows_in], kernels[w, k])
            elif c <= o:
                out[rows_out].addmm_(xf[rows_in] * att[k, rows_out], kernels[w, k])
            else:
                out[rows_out].addcmul_(xf[rows_in] @ kernels[w, k], att[k, rows_out])
        ctx.save_for_backward(x, attention, weight1, weight2)
        ctx.plan, ctx.has_bias = plan, bias is not None
        return out.view(n, b, o)

    @staticmethod
    @torch.autograd.function.once_differentiable
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad):
        x, attention, weight1, weight2 = ctx.saved_tensors
        need_x, need_att, need_w1, need_w2, need_bias = ctx.needs_input_grad[:5]
        n, b, c = x.shape
        o = weight1.shape[0]
        kernels = _tap_kernels(weight1, weight2)
        xf, gf = x.reshape(n * b, c), grad.reshape(n * b, o)
        att = attention.reshape(9, n * b, 1) if attention is not None else None
        gx = x.new_zeros(n * b, c) if need_x else None
        ga = torch.zeros_like(att) if att is not None and need_att else None
        gk = x.new_zeros(3, 9, c, o) if need_w1 or need_w2 else None
        for w, k, p, s, m in ctx.plan.segments:
            rows_in, rows_out = slice(s * b, (s + m) * b), slice(p * b, (p + m) * b)
            xs, gs = xf[rows_in], gf[rows_out]
            if att is None:
                if gx is not None:
                    gx[rows_in].addmm_(gs, kernels[w, k].t())
                if gk is not None:
                    gk[w, k].addmm_(xs.t(), gs)
                continue
            a = att[k, rows_out]
            if gx is not None or ga is not None:
                g_in = gs @ kernels[w, k].t()  # d loss / d (a * X) for these rows
                if ga is not None:
                    ga[k, rows_out] += (g_in * xs).sum(-1, keepdim=True)
                if gx is not None:
                    gx[rows_in].addcmul_(g_in, a)
            if gk is not None:
                if c <= o:
                    gk[w, k].addmm_((xs * a).t(), gs)
                else:
                    gk[w, k].addmm_(xs.t(), gs * a)
        g1 = g2 = None
        if gk is not None:
            g1 = (gk[0] + gk[2]).view(3, 3, c, o).permute(3, 2, 0, 1) if need_w1 else None
            g2 = (gk[1] + gk[2]).view(3, 3, c, o).permute(3, 2, 0, 1) if need_w2 else None
        gb = gf.sum(0) if ctx.has_bias and need_bias else None
        return (gx.view(n, b, c) if gx is not None else None,
                ga.view(attention.shape) if ga is not None else None, g1, g2, gb, None)


def _gather_conv(x: torch.Tensor, weight1: torch.Tensor, weight2: torch.Tensor,
                 bias: torch.Tensor | None, plan: ShiftPlan,
                 attention: torch.Tensor | None) -> torch.Tensor:
    """GPU path (plain autograd, autocast-friendly): one row gather, a few ``bmm``, scatter-add."""
    cells, batch, cin = x.shape
    cout = weight1.shape[0]
    weights = _tap_kernels(weight1, weight2).reshape(27, cin, cout)[plan.weight_index]
    rows = x[plan.source]  # (R, B, Cin): every job's shifted input
    scale = attention[plan.attention_rows] if attention is not None else None  # (R, B, 1)
    if scale is not None and cin <= cout:
        rows, scale = rows * scale, None
    sizes = [n * g for n, g in plan.groups]
    scales = scale.split(sizes) if scale is not None else [None] * len(sizes)
    out = None
    first_row, first_job = 0, 0
    for block, block_scale, (n, g) in zip(rows.split(sizes), scales, plan.groups):
        y = torch.bmm(block.reshape(g, n * batch, cin), weights[first_job:first_job + g])
        y = y.view(g * n, batch, cout)
        if block_scale is not None:
            y = y * block_scale
        if out is None:  # accumulate in at least fp32 (under autocast y is bf16)
            dtype = torch.promote_types(y.dtype, torch.float32)
            out = y.new_zeros(cells, batch, cout, dtype=dtype)
        out.index_add_(0, plan.target[first_row:first_row + g * n], y.to(out.dtype))
        first_row, first_job = first_row + g * n, first_job + g
    return out + bias if bias is not None else out


def shifted_grid_conv(x: torch.Tensor, weight1: torch.Tensor, weight2: torch.Tensor,
                      bias: torch.Tensor | None, plan: ShiftPlan,
                      attention: torch.Tensor | None = None,
                      method: Literal["auto", "segments", "gather"] = "auto") -> torch.Tensor:
    """Sum of two padded 3x3 convolutions of a cells-major grid, with optional tap attention.

    Args:
        x: (25, B, Cin), cells-major (cell = 5 * row + col).
        weight1, weight2: (Cout, Cin, 3, 3) kernels of the branches padded with ``plan.modes``.
        bias: (Cout,) summed bias of both branches, or None.
        attention: (225, B, 1) weight of tap k at cell p in row ``k * 25 + p`` (shared across
            channels and branches), or None for a plain convolution.
        method: ``segments`` (contiguous-block GEMMs, hand-written backward; the CPU default),
            ``gather`` (row gather + batched GEMMs + scatter-add; the default elsewhere).

    Returns (25, B, Cout), equal to ``conv2d(pad(x, m1), W1) + conv2d(pad(x, m2), W2) + bias``
    with each tap's contribution at each output cell scaled by its attention weight.
    """
    if method == "auto":
        method = "segments" if x.device.type == "cpu" else "gather"
    if attention is not None:
        attention = attention.contiguous()
    if method == "segments":
        return _SegmentConv.apply(x.contiguous(), attention, weight1, weight2, bias, plan)
    if method == "gather":
        return _gather_conv(x, weight1, weight2, bias, plan, attention)
    raise ValueError(f"unknown grid-conv method {method!r}; use 'auto', 'segments' or 'gather'")


class GridAttention(nn.Module):
    """Dynamic tap attention of D-GridConv: (25, B, Cin) -> (225, B, 1) in (0, 1).

    GAP over the cells -> 1x1 conv Cin -> max(Cin // 16, 16) without bias -> BN -> ReLU ->
    1x1 conv (with bias) -> 9 * 25 logits -> ``sigmoid(logits / T)``. (1x1 convolutions of a
    pooled 1x1 map are linear layers; the parameters are the same.)
    """

    def __init__(self, cin: int, cells: int = GRID * GRID) -> None:
        super().__init__()
        hidden = max(cin // 16, 16)
        self.reduce = nn.Linear(cin, hidden, bias=False)
        self.norm = BatchNorm1d(hidden)
        self.expand = nn.Linear(hidden, 9 * cells)

    def forward(self, x: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
        z = self.expand(F.relu(self.norm(self.reduce(x.mean(dim=0)))))  # (B, 9 * 25)
        return torch.sigmoid(z / temperature).t().contiguous().unsqueeze(-1)


class TwoBranchGridConv(nn.Module):
    """Two 3x3 kernels (own biases), each branch padded by 1 with its mode; outputs summed.

    With ``dynamic=True`` a ``GridAttention`` computed from the input scales every tap at every
    cell. Input and output are cells-major ``(25, B, C)``. Kernels are stored in ``nn.Conv2d``
    layout ``(Cout, Cin, 3, 3)`` with ``nn.Conv2d``'s default initialisation. ``method`` picks
    the execution strategy of ``shifted_grid_conv`` (``auto``: segments on CPU, gather else).
    """

    method: Literal["auto", "segments", "gather"] = "auto"

    def __init__(self, cin: int, cout: int, padding: str | Sequence[str] = ("c", "r"),
                 bias: bool = True, dynamic: bool = True) -> None:
        super().__init__()
        self.weight1 = nn.Parameter(torch.empty(cout, cin, 3, 3))
        self.weight2 = nn.Parameter(torch.empty(cout, cin, 3, 3))
        self.bias1 = nn.Parameter(torch.empty(cout)) if bias else None
        self.bias2 = nn.Parameter(torch.empty(cout)) if bias else None
        self.attention = GridAttention(cin) if dynamic else None
        self.plan = ShiftPlan(_normalise_padding(padding))
        for weight, b in ((self.weight1, self.bias1), (self.weight2, self.bias2)):
            nn.init.kaiming_uniform_(weight, a=5 ** 0.5)
            if b is not None:
                bound = 1.0 / (cin * 9) ** 0.5
                nn.init.uniform_(b, -bound, bound)

    def forward(self, x: torch.Tensor, temperature: torch.Tensor | float = 1.0) -> torch.Tensor:
        att = self.attention(x, temperature) if self.attention is not None else None
        bias = self.bias1 + self.bias2 if self.bias1 is not None else None
        return shifted_grid_conv(x, self.weight1, self.weight2, bias, self.plan, att, self.method)


class _Norm(BatchNorm1d):
    """BatchNorm2d of a cells-major grid: per-channel statistics over all cells and samples."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


def _channel_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout2d of a cells-major grid: zero whole channels of a sample, rescale the rest."""
    if not training or p == 0.0:
        return x
    keep = x.new_empty(1, x.shape[1], x.shape[2]).bernoulli_(1.0 - p).div_(1.0 - p)
    return x * keep


class GridLiftingNet(Lifter):
    """SGT -> GLN -> inverse SGT: (B, 17, 2) screen-normalised 2D -> (B, 17, 3) metres.

    GLN: ``w1`` two-branch conv 2 -> hidden, BN, ReLU, Dropout2d; ``num_blocks`` residual blocks
    of (conv -> BN -> ReLU -> Dropout2d) x 2 plus the skip; ``w2`` two-branch conv hidden -> 3
    without bias.
    """

    def __init__(self, cfg: Config, sgt: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        self.sgt = sgt

        def conv(cin: int, cout: int, bias: bool = True) -> TwoBranchGridConv:
            return TwoBranchGridConv(cin, cout, cfg.padding, bias=bias, dynamic=cfg.dynamic)

        self.w1 = conv(2, cfg.hidden)
        self.norm1 = _Norm(cfg.hidden)
        self.convs = nn.ModuleList(conv(cfg.hidden, cfg.hidden) for _ in range(2 * cfg.num_blocks))
        self.norms = nn.ModuleList(_Norm(cfg.hidden) for _ in range(2 * cfg.num_blocks))
        self.w2 = conv(cfg.hidden, 3, bias=False)
        self.register_buffer("temperature", torch.tensor(temperature_at(
            0.0, cfg.max_temperature, cfg.temperature_epochs)))

    def set_epoch_progress(self, epoch: float) -> float:
        """Set the attention temperature for fractional epoch ``epoch``; returns it."""
        t = temperature_at(epoch, self.cfg.max_temperature, self.cfg.temperature_epochs)
        self.temperature.fill_(t)
        return t

    def _gln(self, grid: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        p, training = self.cfg.dropout, self.training
        y = _channel_dropout(F.relu(self.norm1(self.w1(grid, t))), p, training)
        for i in range(0, len(self.convs), 2):
            h = _channel_dropout(F.relu(self.norms[i](self.convs[i](y, t))), p, training)
            h = _channel_dropout(F.relu(self.norms[i + 1](self.convs[i + 1](h, t))), p, training)
            y = y + h
        return self.w2(y, t)

    def _check(self, x: torch.Tensor, channels: int) -> None:
        if x.dim() != 3 or x.shape[1:] != (NUM_JOINTS, channels):
            raise ValueError(f"GridConv expects (B, {NUM_JOINTS}, {channels}) poses, "
                             f"got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, 2)
        return self.sgt.from_grid(self._gln(self.sgt.to_grid(x)))

    def forward_grid(self, x: torch.Tensor) -> torch.Tensor:
        """Grid-space prediction (B, 25, 3), cell = 5 * row + col."""
        self._check(x, 2)
        return self._gln(self.sgt.to_grid(x)).transpose(0, 1)


class HandcraftedGridLiftingNet(GridLiftingNet):
    """The handcrafted-SGT model: adds the paper's grid-space L2 loss for the training loop."""

    def grid_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """(B, 17, 3) targets -> the grid the loss compares with (B, 25, 3)."""
        self._check(targets, 3)
        return self.sgt.to_grid(targets).transpose(0, 1)

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor, schedule: Schedule | None = None,
             aux_targets: torch.Tensor | None = None, context=None) -> torch.Tensor:
        """MSE over the 25 grid cells x 3 coordinates (mean over all elements), in metres^2 (the
        paper's, whatever ``schedule.loss``)."""
        return F.mse_loss(self.forward_grid(inputs), self.grid_targets(targets))


def build(cfg: Config, num_joints: int) -> GridLiftingNet:
    """The GridConv model for ``cfg``; GridConv's grid is defined for the 17 H36M joints."""
    if num_joints != NUM_JOINTS:
        raise ValueError(f"GridConv's semantic grid is defined for the {NUM_JOINTS}-joint h36m17 "
                         f"set, got num_joints={num_joints}")
    if cfg.sgt == "handcrafted":
        return HandcraftedGridLiftingNet(cfg, HandcraftedSGT())
    return GridLiftingNet(cfg, LearnableSGT(gradient=cfg.sgt_gradient))
