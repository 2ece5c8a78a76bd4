"""VideoPose3D: the 243-frame temporal convolution baseline (Pavllo et al., CVPR 2019; methods.md §7.3).

The field's standard temporal anchor and the network Pose3D-RIE's encoders are built from:
:class:`~lifting.models.tcn.TemporalConvNet` over the 34 channels of a 17-joint 2D sequence (channel
``2j + c``), 1024 channels, ReLU, dropout 0.25, widths ``(3, 3, 3, 3, 3)``, a 1x1 convolution to
the 51 channels of the 17 3D joints. 16,952,371 parameters (the paper's ~16.95M; pinned in
``tests/models/test_videopose3d.py``). Re-implemented from the description; no upstream code is
copied. Training (Adam with AMSGrad, lr 1e-3 x0.95 per epoch, batch 1024, 80 epochs, BN momentum
0.1 -> 0.001, flip augmentation and flip test, MPJPE loss) is the sequence path's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lifting.models.dropout import check_dropout
from lifting.models.spec import InputSpec, PaperSetup, Schedule
from lifting.models.tcn import TemporalConvNet, TemporalLifter


@dataclass(frozen=True)
class Config:
    """VideoPose3D's configuration; the defaults are the paper's 243-frame model."""

    filter_widths: tuple[int, ...] = (3, 3, 3, 3, 3)
    channels: int = 1024
    dropout: float = 0.25

    def __post_init__(self) -> None:
        if not self.filter_widths or any(w < 1 or w % 2 == 0 for w in self.filter_widths):
            raise ValueError(f"filter_widths must be odd widths >= 1, got {list(self.filter_widths)}")
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        check_dropout(self.dropout)


#: Screen-normalised 17-joint 2D windows in, root-relative metres out; train flip and flip test.
INPUT_SPEC = InputSpec(joint_set="h36m17", input_norm="screen", target="metres", flip_test=True, temporal=True,
                       train_flip=True)

#: ``run.py`` with the README's 243-frame settings: Adam (AMSGrad) 1e-3, x0.95 every epoch,
#: batch 1024, 80 epochs, MPJPE loss; an epoch holds every window plain and mirrored.
PAPER_SCHEDULE = Schedule(optimizer="adam", amsgrad=True, lr=1e-3, lr_decay=0.95, lr_decay_every=1,
                          lr_decay_unit="epoch", batch_size=1024, epochs=80, loss="mpjpe", mirrored_pairs=True)

#: One model for GT and detected 2D (the README trains the same network on both).
PAPER = {kind: PaperSetup(Config(), INPUT_SPEC, PAPER_SCHEDULE, "243 frames, 1024 channels, 16.95M")
         for kind in ("gt", "detected")}


class VideoPose3D(TemporalLifter):
    """Windows to poses, and whole sequences to poses (the two forms of the network).

    ``forward((B, R, J, 2)) -> (B, J, 3)``: each window of R = :attr:`receptive_field` frames to
    its centre frame's root-relative 3D (the strided form, for training and windowed inference).
    ``forward_sequence((B, T + R - 1, J, 2)) -> (B, T, J, 3)``: every frame of edge-padded
    sequences at once (the dilated form, for evaluation).
    """

    def __init__(self, cfg: Config = Config(), num_joints: int = 17) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.tcn = TemporalConvNet(2 * num_joints, 3 * num_joints, cfg.filter_widths, cfg.channels, cfg.dropout)

    @property
    def receptive_field(self) -> int:
        return self.tcn.receptive_field

    def set_bn_momentum(self, momentum: float) -> None:
        self.tcn.set_bn_momentum(momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, strided=True)[:, 0]

    def forward_sequence(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, strided=False)

    def _run(self, x: torch.Tensor, strided: bool) -> torch.Tensor:
        if x.dim() != 4 or x.shape[2:] != (self.num_joints, 2):
            raise ValueError(f"expected (B, T, {self.num_joints}, 2) inputs, got {tuple(x.shape)}")
        out = self.tcn(x.flatten(2).transpose(1, 2), strided)  # (B, 3J, T_out)
        return out.transpose(1, 2).reshape(x.shape[0], -1, self.num_joints, 3)


def build(cfg: Config, num_joints: int) -> VideoPose3D:
    if num_joints != 17:
        raise ValueError(f"VideoPose3D is set up for the 17 h36m joints, got num_joints={num_joints}")
    return VideoPose3D(cfg, num_joints)
