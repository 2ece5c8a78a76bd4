"""What every method module declares besides its network: its inputs and its paper's schedule.

A method module ``lifting/models/<name>.py`` exposes:

* ``Config``: a frozen dataclass whose defaults are the paper's configuration;
* ``build(cfg, num_joints) -> torch.nn.Module`` mapping ``(B, J, 2)`` inputs to ``(B, J, 3)``
  root-relative camera-frame outputs (units set by ``INPUT_SPEC.target``);
* ``INPUT_SPEC``: an :class:`InputSpec`;
* ``PAPER_SCHEDULE``: a :class:`Schedule` (used when ``budget.max_epochs`` is null).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class InputSpec:
    """How a method wants its data.

    Attributes:
        joint_set: "h36m17" or "h36m16" (inputs and targets use the same set).
        input_norm: "screen" (screen-normalised 2D, as stored) or "zscore" (screen-normalised,
            then z-scored per coordinate with training-set statistics).
        target: "metres" (root-relative camera-frame metres) or "zscore" (root-relative mm,
            z-scored per coordinate with training statistics; the root is then constant 0).
        flip_test: average the prediction with that of the mirrored input, as the paper does.
    """

    joint_set: Literal["h36m17", "h36m16"]
    input_norm: Literal["screen", "zscore"]
    target: Literal["metres", "zscore"]
    flip_test: bool = False


@dataclass(frozen=True)
class Schedule:
    """A paper's training recipe.

    Attributes:
        optimizer: "adam" or "adamw". amsgrad: Adam's AMSGrad variant.
        lr: initial learning rate. weight_decay: decoupled (adamw) or L2 (adam) decay.
        lr_decay: multiplicative factor applied every ``lr_decay_every`` ``lr_decay_unit``s;
            ``lr_decay_unit="cosine"`` instead decays the lr to 0 along a cosine over the whole run
            (the budgeted recipe; no paper uses it).
        lr_decay_first: the count (of completed epochs or steps) at which the first decay
            happens; later decays follow every ``lr_decay_every``. None: at ``lr_decay_every``.
        batch_size, epochs: as published (a budgeted copy has fewer epochs, see ``paper_epochs``).
        loss: "mse" (mean squared error over all coordinates), "mpjpe" (mean joint distance) or
            "l1"; ``l1_weight`` mixes in an L1 term: ``(1 - w) * loss + w * l1``.
        grad_clip: max gradient norm, or None.
        paper_epochs: set on a budgeted copy: the published epoch count, so that schedules
            inside a model (GridConv's attention temperature) keep their share of the run.
    """

    optimizer: Literal["adam", "adamw"]
    lr: float
    lr_decay: float
    lr_decay_every: int
    lr_decay_unit: Literal["step", "epoch", "cosine"]
    batch_size: int
    epochs: int
    loss: Literal["mse", "mpjpe", "l1"]
    l1_weight: float = 0.0
    grad_clip: float | None = None
    weight_decay: float = 0.0
    amsgrad: bool = False
    lr_decay_first: int | None = None
    paper_epochs: int | None = None
