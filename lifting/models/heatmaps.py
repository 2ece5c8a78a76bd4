"""Keypoint heatmaps: Gaussian training targets and sub-pixel decoding, for the HRNet detector.

Coordinates are ``(x, y)`` in heatmap pixels with the pixel-centre convention: integer
coordinates are pixel centres, so pixel ``(row r, column c)`` covers ``[c - 0.5, c + 0.5] x
[r - 0.5, r + 0.5]`` and a peak at pixel ``(r, c)`` decodes to ``(c, r)``. Image pixels map to
heatmap pixels by dividing by the stride (4 for HRNet), as upstream (``joint / feat_stride``).

Targets, as upstream (``leoxiaobin/deep-high-resolution-net.pytorch``, ``JointsDataset.generate_target``):
unnormalised Gaussians of peak 1, ``exp(-((x - cx)^2 + (y - cy)^2) / (2 sigma^2))`` (sigma 2 for
the 64x48 COCO heatmaps). Differences: the centre is not rounded to a whole pixel and the
Gaussian is not cut off at 3 sigma.

Decoding: the argmax pixel, refined by one second-order Taylor (Newton) step on the log-heatmap,
the core of DARK (Zhang et al., "Distribution-Aware Coordinate Representation for Human Pose
Estimation", CVPR 2020) without its Gaussian smoothing of the prediction. Gradient and Hessian are
central finite differences over the 3x3 neighbourhood; the log of a Gaussian is quadratic, so a
rendered Gaussian decodes to its centre exactly (up to float rounding). This replaces upstream's
quarter-pixel shift towards the higher neighbour, whose error can reach 0.25 px.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Floor before the log, so that zeros next to the peak give a large negative finite log.
_LOG_FLOOR = 1e-10


def gaussian_heatmaps(coords: torch.Tensor, size: tuple[int, int], sigma: float = 2.0) -> torch.Tensor:
    """Target heatmaps ``(B, J, h, w)`` of peak 1 for ``(B, J, 2)`` ``(x, y)`` heatmap-pixel coordinates.

    A joint with a non-finite coordinate (not annotated) gets an all-zero map.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    h, w = size
    valid = torch.isfinite(coords).all(-1)[..., None, None]
    safe = torch.nan_to_num(coords, nan=0.0, posinf=0.0, neginf=0.0)
    xs = torch.arange(w, dtype=coords.dtype, device=coords.device)
    ys = torch.arange(h, dtype=coords.dtype, device=coords.device)
    gx = torch.exp(-(xs - safe[..., 0:1]) ** 2 / (2 * sigma**2))  # (B, J, w)
    gy = torch.exp(-(ys - safe[..., 1:2]) ** 2 / (2 * sigma**2))  # (B, J, h)
    return (gy[..., :, None] * gx[..., None, :]).masked_fill(~valid, 0.0)


def decode_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, J, h, w)`` heatmaps -> ``(coords (B, J, 2) (x, y) heatmap pixels, confidence (B, J))``.

    ``confidence`` is the heatmap's maximum (upstream's ``maxvals``). The Taylor refinement (module
    doc) is applied only where the argmax is not on the border, the peak is positive and the local
    log-quadratic is concave; its offset is clamped to half a pixel per axis. Elsewhere the
    coordinates are the argmax pixel's centre.
    """
    b, j, h, w = heatmaps.shape
    confidence, index = heatmaps.reshape(b, j, h * w).max(-1)
    x, y = index % w, index // w

    logs = F.pad(heatmaps.clamp_min(_LOG_FLOOR).log(), (1, 1, 1, 1), mode="replicate").reshape(b, j, -1)

    def at(dy: int, dx: int) -> torch.Tensor:
        return logs.gather(-1, ((y + 1 + dy) * (w + 2) + x + 1 + dx)[..., None])[..., 0]

    centre = at(0, 0)
    gx, gy = (at(0, 1) - at(0, -1)) / 2, (at(1, 0) - at(-1, 0)) / 2
    gxx, gyy = at(0, 1) - 2 * centre + at(0, -1), at(1, 0) - 2 * centre + at(-1, 0)
    gxy = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / 4
    det = gxx * gyy - gxy**2
    ok = (x > 0) & (x < w - 1) & (y > 0) & (y < h - 1) & (confidence > 0) & (gxx < 0) & (det > 0)
    det = torch.where(ok, det, torch.ones_like(det))
    dx = torch.where(ok, -(gyy * gx - gxy * gy) / det, torch.zeros_like(det)).clamp(-0.5, 0.5)
    dy = torch.where(ok, -(gxx * gy - gxy * gx) / det, torch.zeros_like(det)).clamp(-0.5, 0.5)
    coords = torch.stack([x.to(heatmaps.dtype) + dx, y.to(heatmaps.dtype) + dy], dim=-1)
    return coords, confidence
