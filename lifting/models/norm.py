"""BatchNorm1d that can take its training statistics over every rank of a data-parallel run.

The same layer as ``nn.BatchNorm1d`` (same parameters, buffers and checkpoint names), used by
every model here. With ``across_ranks`` set (:func:`lifting.distributed.synchronise_batch_norm`,
only in a multi-process run) a training batch is normalised with the mean and variance of the
global batch: the per-channel sums, sums of squares and row count are summed over the ranks with
a differentiable all-reduce, so the gradient also flows through the other ranks' statistics, as
in a single process on the whole batch. torch's ``SyncBatchNorm`` does this on GPUs only.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class _SumOverRanks(torch.autograd.Function):
    """``x`` summed over every rank; the gradient of a sum is the gradients summed the same way."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        total = x.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class BatchNorm1d(nn.BatchNorm1d):
    """``(B, C)`` or ``(B, C, L)`` -> same shape; statistics over every rank's batch when ``across_ranks``."""

    across_ranks: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.across_ranks):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        rows = torch.full((1,), x.numel() // x.shape[1], dtype=torch.float32, device=x.device)
        xf = x.float()
        totals = _SumOverRanks.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), rows]))
        channels, count = x.shape[1], totals[-1].detach()
        mean = totals[:channels] / count
        var = (totals[channels:2 * channels] / count - mean * mean).clamp_min(0.0)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach() * count / max(float(count) - 1.0, 1.0))
        shape = (1, channels, *[1] * (x.dim() - 2))
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        """As ``nn.BatchNorm1d`` in training: an exponential average (``momentum``), or the
        cumulative one when ``momentum`` is None."""
        self.num_batches_tracked += 1
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1.0 - factor).add_(unbiased_var, alpha=factor)
