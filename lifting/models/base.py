"""What the training loop (:func:`lifting.train.fit`) and the predictor rely on: every trained method's
network is a :class:`Lifter`.

The loop calls, and nothing else (no ``hasattr`` dispatch):

* ``start_epoch(epoch, epochs)`` before each epoch (0-based ``epoch`` of ``epochs``): the temporal
  networks decay their BatchNorm momentum here (:class:`lifting.models.tcn.TemporalLifter`);
* ``set_epoch_progress(epoch)`` before every step, ``epoch`` a float on the paper's clock (a budgeted
  run of ``E`` of the paper's ``P`` epochs reports ``(epoch + step / steps_per_epoch) * P / E``), for
  a schedule inside the network (GridConv's attention temperature);
* ``loss(inputs, targets, schedule, aux_targets, context)``: the training loss of one batch;
  the default is the paper's pose loss (:func:`pose_loss`) on ``forward``'s output; a method whose
  loss lives elsewhere (GridConv's grid cells, HGN's surface) overrides it.

Before training, ``initialise(weights)`` starts the network from given weights: a staged method's
previous stage (Pose3D-RIE) or a frozen backbone (Context-Aware PoseFormer's detector). The
predictor asks :attr:`Lifter.temporal` whether the network lifts whole sequences
(``forward_sequence``) or single frames. Each hook is a no-op (or a refusal) by default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from lifting.models.spec import Schedule

if TYPE_CHECKING:  # a type only: a lifter that ignores the image does not depend on the image code
    from lifting.images.context import ImageContext


def pose_loss(predicted: torch.Tensor, target: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """The paper's loss (``schedule.loss``: "mse", "mpjpe" or "l1", mixed with an L1 term of weight
    ``schedule.l1_weight``) between (B, J, 3) tensors in the network's target space."""
    if schedule.loss == "mse":
        loss = torch.mean((predicted - target) ** 2)
    elif schedule.loss == "mpjpe":
        loss = torch.mean(torch.linalg.vector_norm(predicted - target, dim=-1))
    else:
        loss = torch.mean(torch.abs(predicted - target))
    if schedule.l1_weight:
        loss = (1.0 - schedule.l1_weight) * loss + schedule.l1_weight * torch.mean(torch.abs(predicted - target))
    return loss


class Lifter(nn.Module):
    """A lifting network: ``forward(inputs)`` (or ``forward(inputs, context)`` for a method that
    looks at the image) maps encoded (B, ..., J, 2) inputs to (B, J, 3) outputs in its target space."""

    #: True for a network that also lifts whole sequences at once: ``forward_sequence``.
    temporal: ClassVar[bool] = False

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called before (0-based) ``epoch`` of ``epochs``; nothing by default."""

    def set_epoch_progress(self, epoch: float) -> None:
        """Called before every training step with the fractional epoch on the paper's clock; nothing by default."""

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor, schedule: Schedule,
             aux_targets: torch.Tensor | None = None, context: ImageContext | None = None) -> torch.Tensor:
        """Scalar training loss of one batch: encoded ``inputs``, ``targets`` (B, J, 3) in the target
        space, the batch's auxiliary targets (HGN's surface markers, (B, M, 3)) and image context
        when the data has them. Default: :func:`pose_loss` on the output (computed in float32)."""
        predicted = self(inputs) if context is None else self(inputs, context)
        return pose_loss(predicted.float(), targets, schedule)

    def initialise(self, weights: dict[str, torch.Tensor]) -> None:
        """Start from ``weights`` (a state dict) before training; a network that always starts from
        scratch refuses."""
        raise ValueError(f"{type(self).__name__} starts from scratch; it takes no initial weights")
