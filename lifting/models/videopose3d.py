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

from lifting.models.tcn import TemporalConvNet


@dataclass(frozen=True)
class Config:
    """VideoPose3D's configuration; the defaults are the paper's 243-frame model."""

    filter_widths: tuple[int, ...] = (3, 3, 3, 3, 3)
    channels: int = 1024
    dropout: float = 0.25


class VideoPose3D(nn.Module):
    """``forward((B, T_in, J, 2), strided) -> (B, T_out, J, 3)`` root-relative 3D.

    ``strided``: T_in = the receptive field, T_out = 1 (the centre frame); else T_out = T_in -
    receptive field + 1 (one output per frame of an edge-padded sequence).
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

    def forward(self, x: torch.Tensor, strided: bool = False) -> torch.Tensor:
        if x.dim() != 4 or x.shape[2:] != (self.num_joints, 2):
            raise ValueError(f"expected (B, T, {self.num_joints}, 2) inputs, got {tuple(x.shape)}")
        out = self.tcn(x.flatten(2).transpose(1, 2), strided)  # (B, 3J, T_out)
        return out.transpose(1, 2).reshape(x.shape[0], -1, self.num_joints, 3)


def build(cfg: Config, num_joints: int) -> VideoPose3D:
    return VideoPose3D(cfg, num_joints)
