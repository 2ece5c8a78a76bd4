"""The dilated temporal convolution network of VideoPose3D, in its two forms with shared weights.

Pavllo et al., "3D human pose estimation in video with temporal convolutions and semi-supervised
training", CVPR 2019 (methods.md §7.3); also the per-part encoder of Pose3D-RIE (§4.2).
Re-implemented from the description; no upstream code is copied.

With filter widths ``(w0, w1, ..., wn)`` the network is an expand convolution (width w0, no bias)
+ BN + activation + dropout, then n residual blocks, each a convolution of width ``wi`` (no bias)
+ BN + activation + dropout followed by a 1x1 convolution (no bias) + BN + activation + dropout,
added to the block's input; then a 1x1 "shrink" convolution (with bias). The receptive field is
``prod(w)`` frames (243 for ``(3, 3, 3, 3, 3)``).

The two forms use the same parameters:

* ``dilated`` (evaluation): block i's convolution has dilation ``w0 * ... * w(i-1)``; a sequence
  of ``T + receptive_field - 1`` frames gives ``T`` outputs, one per frame; the residual is the
  centre slice of the block's input.
* ``strided`` (training, upstream's "Optimize1f"): every convolution has stride = width and no
  dilation, so a window of exactly ``receptive_field`` frames gives the one output of its centre
  frame, without computing the outputs of its neighbours; the residual is every ``wi``-th frame
  starting at ``wi // 2``.

Both give the same output for the same window (``tests/models/test_tcn.py``). Shapes:
``forward((B, C_in, T_in), strided) -> (B, C_out, T_out)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lifting.models.base import Lifter
from lifting.models.dropout import Dropout
from lifting.models.norm import BatchNorm1d

#: BatchNorm momentum of the temporal networks, decayed exponentially over the run (VideoPose3D).
BN_MOMENTUM = (0.1, 0.001)


def bn_momentum(epoch: int, epochs: int) -> float:
    """The momentum of (0-based) ``epoch``: from 0.1 at the first to 0.001 after the last."""
    start, end = BN_MOMENTUM
    return start * (end / start) ** (epoch / epochs)


class TemporalLifter(Lifter):
    """A network over windows of frames (VideoPose3D, Pose3D-RIE): ``forward`` lifts each window to
    its centre frame, ``forward_sequence((B, T + R - 1, J, 2)) -> (B, T, J, 3)`` every frame of
    edge-padded sequences at once; its BatchNorm momentum decays over the run (:func:`bn_momentum`,
    through ``set_bn_momentum``)."""

    temporal = True

    def set_bn_momentum(self, momentum: float) -> None:
        raise NotImplementedError

    def forward_sequence(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def start_epoch(self, epoch: int, epochs: int) -> None:
        self.set_bn_momentum(bn_momentum(epoch, epochs))


class TemporalConvNet(nn.Module):
    """VideoPose3D's temporal network (see the module docstring).

    Args:
        in_channels, out_channels: C_in, C_out.
        filter_widths: convolution widths, e.g. ``(3, 3, 3, 3, 3)`` (243 frames). Odd.
        channels: hidden channels (VideoPose3D 1024, RIE's part encoders 256).
        dropout: dropout after every activation.
        negative_slope: 0 for ReLU (VideoPose3D), 0.2 for RIE's LeakyReLU.
        bn_momentum: initial BatchNorm momentum (decayed during training, :meth:`set_bn_momentum`).
    """

    def __init__(self, in_channels: int, out_channels: int, filter_widths: tuple[int, ...], channels: int,
                 dropout: float, negative_slope: float = 0.0, bn_momentum: float = 0.1) -> None:
        super().__init__()
        if not filter_widths or any(w < 1 or w % 2 == 0 for w in filter_widths):
            raise ValueError(f"filter widths must be odd and >= 1, got {filter_widths}")
        self.filter_widths = tuple(filter_widths)
        self.negative_slope = negative_slope
        self.expand_conv = nn.Conv1d(in_channels, channels, filter_widths[0], bias=False)
        self.expand_bn = BatchNorm1d(channels, momentum=bn_momentum)
        self.block_convs = nn.ModuleList([nn.Conv1d(channels, channels, w, bias=False) for w in filter_widths[1:]])
        self.block_bns = nn.ModuleList([BatchNorm1d(channels, momentum=bn_momentum) for _ in filter_widths[1:]])
        self.point_convs = nn.ModuleList([nn.Conv1d(channels, channels, 1, bias=False) for _ in filter_widths[1:]])
        self.point_bns = nn.ModuleList([BatchNorm1d(channels, momentum=bn_momentum) for _ in filter_widths[1:]])
        self.shrink = nn.Conv1d(channels, out_channels, 1)
        self.drop = Dropout(dropout)

    @property
    def receptive_field(self) -> int:
        return math.prod(self.filter_widths)

    def set_bn_momentum(self, momentum: float) -> None:
        for bn in (self.expand_bn, *self.block_bns, *self.point_bns):
            bn.momentum = momentum

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(F.leaky_relu(x, self.negative_slope) if self.negative_slope else F.relu(x))

    def forward(self, x: torch.Tensor, strided: bool) -> torch.Tensor:
        """``strided``: windows of exactly :attr:`receptive_field` frames -> one output frame each;
        else (dilated) ``T + receptive_field - 1`` frames -> ``T`` output frames."""
        if x.dim() != 3:
            raise ValueError(f"expected (B, C, T) inputs, got {tuple(x.shape)}")
        if strided and x.shape[-1] != self.receptive_field:
            raise ValueError(f"the strided form takes windows of {self.receptive_field} frames, got {x.shape[-1]}")
        if not strided and x.shape[-1] < self.receptive_field:
            raise ValueError(f"needs at least {self.receptive_field} frames, got {x.shape[-1]}")
        return self._strided(x) if strided else self._dilated(x)

    def _dilated(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act(self.expand_bn(F.conv1d(x, self.expand_conv.weight)))
        dilation = self.filter_widths[0]
        for width, conv, bn, point, point_bn in zip(self.filter_widths[1:], self.block_convs, self.block_bns,
                                                    self.point_convs, self.point_bns):
            pad = (width - 1) * dilation // 2
            h = self._act(bn(F.conv1d(x, conv.weight, dilation=dilation)))
            x = x[:, :, pad:x.shape[-1] - pad] + self._act(point_bn(point(h)))
            dilation *= width
        return self.shrink(x)

    def _strided(self, x: torch.Tensor) -> torch.Tensor:
        """The strided form with frames-major activations ``(B, T, C)``: a convolution whose stride
        is its width reads disjoint groups of frames, i.e. one matrix product over ``(B, T / w,
        w C)`` rows (faster on the CPU than the strided convolution, same weights)."""
        h = self._act(self._bn_rows(self.expand_bn, self._grouped(x.transpose(1, 2), self.expand_conv.weight)))
        for width, conv, bn, point, point_bn in zip(self.filter_widths[1:], self.block_convs, self.block_bns,
                                                    self.point_convs, self.point_bns):
            residual = h[:, width // 2::width]
            inner = self._act(self._bn_rows(bn, self._grouped(h, conv.weight)))
            h = residual + self._act(self._bn_rows(point_bn, inner @ point.weight[:, :, 0].T))
        return (h @ self.shrink.weight[:, :, 0].T + self.shrink.bias).transpose(1, 2)

    @staticmethod
    def _grouped(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``(B, T, C_in)`` through a ``(C_out, C_in, w)`` kernel at stride w: ``(B, T / w, C_out)``."""
        batch, frames, channels = h.shape
        width = weight.shape[-1]
        rows = h.reshape(batch, frames // width, width * channels)  # frame-major within each group
        return rows @ weight.permute(0, 2, 1).reshape(weight.shape[0], width * channels).T

    @staticmethod
    def _bn_rows(bn: BatchNorm1d, h: torch.Tensor) -> torch.Tensor:
        return bn(h.reshape(-1, h.shape[-1])).view(h.shape)
