"""Context-Aware PoseFormer's lifting network (Zhao et al., NeurIPS 2023; methods.md §6.3).

A single 2D pose plus a frozen 2D detector's feature maps sampled around each joint:

* **Tokens** per joint, ``L + 1 = 5`` of width ``c = 128``: level 0 is ``Linear(2 -> c)`` of the
  joint's screen-normalised 2D; level ``l`` (1..4) is ``Linear(C_l -> c)`` of feature map ``l``
  sampled bilinearly (``grid_sample``, ``align_corners=True``) at the joint's crop position (crop
  coordinates in ``[-1, 1]``). A learned positional embedding ``(1, 5, 17, c)`` is added.
* **Deformable context**: one :class:`DeformableBlock` per feature level. Query = LN(level token
  + coordinate token); per head (4) and sample (4) a softmax attention weight and an offset
  ``tanh(Linear(query))`` in crop coordinates (bias initialised on circles of radius
  ``0.01 (i + 1)``); the level's own map is sampled at joint + offset (border padding), projected
  per head ``Linear(C_l -> c / 4)``, weighted and concatenated; residual, then a residual MLP
  (ratio 2).
* **Pose-context interaction**: 4 transformer blocks (width ``c``, 8 heads, MLP ratio 2, qkv
  bias) across each joint's 5 level tokens, then the tokens concatenated to ``5c = 640`` per
  joint and 4 transformer blocks across the 17 joints; stochastic depth rising linearly to 0.2
  over each stack.
* **Head**: LN + ``Linear(640 -> 3)`` per joint, root-relative metres.

Lifting parameters: 14,094,147 with HRNet-W32's feature widths (32, 64, 128, 256), 14,155,587
with HRNet-W48's, 14,233,411 with CPN's four 256-channel maps: methods.md §9's 14.09M / 14.16M /
14.23M (pinned in ``tests/models/test_context_poseformer.py``). The frozen backbone is not part
of this module. Re-implemented from the paper's description; no upstream code is copied.

The method (:class:`ContextAwareModel`, what :func:`build` returns) is the frozen backbone plus
this network; only the lifting network trains. On the embedded data the backbone is the pipeline's
own detector (``train_detector``: an HRNet trained on the rendered crops; its sizes replace the
paper's W32 in the config, and the run's label says so), with the Human3.6M videos the official
COCO HRNet-W32/W48 (:func:`lifting.models.hrnet.load_checkpoint`). The crop box comes from the
ground-truth root, as upstream's (:mod:`lifting.images.crop`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lifting.images.context import ImageContext
from lifting.models.hrnet import HRNet, HRNetConfig, normalise_images
from lifting.models.spec import InputSpec, PaperSetup, Schedule

#: Channels of the four feature levels the paper samples (1/4 to 1/32 of the crop).
FEATURE_CHANNELS = {"hrnet_w32": (32, 64, 128, 256), "hrnet_w48": (48, 96, 192, 384), "cpn": (256, 256, 256, 256)}


@dataclass(frozen=True)
class Config:
    """CA-PF's lifting network and the HRNet it samples; the defaults are the paper's (HRNet-W32,
    :data:`lifting.models.hrnet.PAPER_CONFIGS`). ``feature_channels`` are the sampled maps'
    channels (the backbone's branch widths)."""

    feature_channels: tuple[int, ...] = FEATURE_CHANNELS["hrnet_w32"]
    backbone_stem_width: int = 64
    backbone_layer1_blocks: int = 4
    backbone_width: int = 32
    backbone_modules: tuple[int, int, int] = (1, 4, 3)
    backbone_blocks: int = 4
    width: int = 128
    deform_heads: int = 4
    deform_samples: int = 4
    attention_heads: int = 8
    level_blocks: int = 4
    joint_blocks: int = 4
    mlp_ratio: float = 2.0
    drop_path: float = 0.2

    def __post_init__(self) -> None:
        if not self.feature_channels or min(self.feature_channels) < 1:
            raise ValueError(f"feature_channels must be positive, got {list(self.feature_channels)}")
        if self.width % self.deform_heads or (self.width * (len(self.feature_channels) + 1)) % self.attention_heads:
            raise ValueError("width must divide into deform_heads, and the joint width into attention_heads")
        if not 0.0 <= self.drop_path < 1.0:
            raise ValueError(f"drop_path is a probability in [0, 1), got {self.drop_path}")


def sample_at(feature_map: torch.Tensor, points: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Bilinear samples of ``(B, C, H, W)`` maps at ``(B, N, 2)`` crop coordinates in [-1, 1]
    (x right, y down; ``align_corners=True``) -> ``(B, N, C)``."""
    grid = points[:, :, None, :].to(feature_map.dtype)
    return F.grid_sample(feature_map, grid, align_corners=True, padding_mode=padding)[..., 0].transpose(1, 2)


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch for a whole sample with probability ``p`` (training)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], *[1] * (x.dim() - 1), device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)


class Mlp(nn.Sequential):
    """``Linear(d -> r d)``, GELU, ``Linear(r d -> d)``."""

    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__(nn.Linear(dim, int(dim * ratio)), nn.GELU(), nn.Linear(int(dim * ratio), dim))


class TransformerBlock(nn.Module):
    """Pre-norm self-attention and MLP, each residual with stochastic depth: ``(B, N, d) -> (B, N, d)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp, self.drop, self.heads = Mlp(dim, mlp_ratio), DropPath(drop_path), heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, tokens, dim)
        x = x + self.drop(self.proj(attended))
        return x + self.drop(self.mlp(self.norm2(x)))


class DeformableBlock(nn.Module):
    """One feature level's context: ``(B, J, c)`` level tokens, coordinate tokens, ``(B, J, 2)`` crop
    positions and the level's ``(B, C_l, H, W)`` map -> ``(B, J, c)``."""

    def __init__(self, channels: int, width: int, heads: int, samples: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads, self.samples = heads, samples
        self.norm, self.mlp_norm = nn.LayerNorm(width), nn.LayerNorm(width)
        self.weights = nn.Linear(width, heads * samples)
        self.offsets = nn.Linear(width, heads * samples * 2)
        self.values = nn.Linear(channels, width)  # the heads' Linear(C_l -> c / heads), side by side
        self.mlp = Mlp(width, mlp_ratio)
        nn.init.zeros_(self.offsets.weight)
        with torch.no_grad():  # each head's samples on circles of radius 0.01 (i + 1), heads at even angles
            angles = torch.arange(heads) * (2 * math.pi / heads)
            radii = 0.01 * torch.arange(1, samples + 1)
            circle = torch.stack([angles.cos(), angles.sin()], -1)[:, None, :] * radii[None, :, None]
            self.offsets.bias.copy_(circle.reshape(-1))

    def forward(self, level: torch.Tensor, coordinate: torch.Tensor, positions: torch.Tensor,
                feature_map: torch.Tensor) -> torch.Tensor:
        batch, joints, width = level.shape
        query = self.norm(level + coordinate)
        weights = self.weights(query).view(batch, joints, self.heads, self.samples).softmax(-1)
        offsets = torch.tanh(self.offsets(query)).view(batch, joints, self.heads, self.samples, 2)
        points = (positions[:, :, None, None, :] + offsets).reshape(batch, -1, 2)
        sampled = sample_at(feature_map, points, padding="border").view(batch, joints, self.heads, self.samples, -1)
        weight = self.values.weight.view(self.heads, width // self.heads, -1)  # head h: Linear(C_l -> c / heads)
        values = torch.einsum("bjhsc,hdc->bjhsd", sampled, weight) + self.values.bias.view(self.heads, 1, -1)
        context = (weights[..., None] * values).sum(3).reshape(batch, joints, width)
        level = level + context
        return level + self.mlp(self.mlp_norm(level))


def _linspace(end: float, count: int) -> list[float]:
    """``count`` evenly spaced values from 0 to ``end`` (stochastic depth rising over a stack)."""
    return [end * i / max(count - 1, 1) for i in range(count)]


class ContextPoseFormer(nn.Module):
    """``forward(joints_2d (B, J, 2) screen-normalised, crop_2d (B, J, 2) in [-1, 1], features
    [(B, C_l, H_l, W_l)] * L) -> (B, J, 3)`` root-relative metres."""

    def __init__(self, cfg: Config, num_joints: int = 17) -> None:
        super().__init__()
        levels, width = len(cfg.feature_channels), cfg.width
        self.coordinate = nn.Linear(2, width)
        self.embed = nn.ModuleList([nn.Linear(c, width) for c in cfg.feature_channels])
        self.position = nn.Parameter(torch.zeros(1, levels + 1, num_joints, width))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.deformable = nn.ModuleList([DeformableBlock(c, width, cfg.deform_heads, cfg.deform_samples, cfg.mlp_ratio)
                                         for c in cfg.feature_channels])
        rates = _linspace(cfg.drop_path, cfg.level_blocks)
        self.level_blocks = nn.ModuleList([TransformerBlock(width, cfg.attention_heads, cfg.mlp_ratio, r) for r in rates])
        joint_width = width * (levels + 1)
        rates = _linspace(cfg.drop_path, cfg.joint_blocks)
        self.joint_blocks = nn.ModuleList([TransformerBlock(joint_width, cfg.attention_heads, cfg.mlp_ratio, r)
                                           for r in rates])
        self.head = nn.Sequential(nn.LayerNorm(joint_width), nn.Linear(joint_width, 3))

    def forward(self, joints_2d: torch.Tensor, crop_2d: torch.Tensor, features: Sequence[torch.Tensor]) -> torch.Tensor:
        batch, joints, _ = joints_2d.shape
        coordinate = self.coordinate(joints_2d) + self.position[:, 0]
        levels = [embed(sample_at(fmap, crop_2d)) + self.position[:, l + 1]
                  for l, (embed, fmap) in enumerate(zip(self.embed, features))]
        levels = [block(level, coordinate, crop_2d, fmap)
                  for block, level, fmap in zip(self.deformable, levels, features)]
        tokens = torch.stack([coordinate, *levels], dim=2)  # (B, J, L + 1, c)
        x = tokens.reshape(batch * joints, *tokens.shape[2:])
        for block in self.level_blocks:
            x = block(x)
        x = x.reshape(batch, joints, -1)  # (B, J, (L + 1) c)
        for block in self.joint_blocks:
            x = block(x)
        return self.head(x)


class ContextAwareModel(nn.Module):
    """The frozen 2D detector and the lifting network: ``forward(joints_2d (B, J, 2)
    screen-normalised, context)`` with the samples' :class:`~lifting.images.context.ImageContext`
    -> ``(B, J, 3)`` root-relative metres.

    The crops are normalised with ImageNet's mean and std (as the COCO HRNets expect) and go through
    the backbone in eval mode without gradients (CA-PF does not train it); each joint's crop
    position follows from its 2D input and the crop's box, in upstream's convention (``x / (w/2)
    - 1`` of the crop pixel, read with ``align_corners=True``).
    """

    def __init__(self, cfg: Config, num_joints: int = 17) -> None:
        super().__init__()
        self.backbone = HRNet(backbone_config(cfg))
        if tuple(cfg.feature_channels) != self.backbone.config.widths:
            raise ValueError(f"feature_channels {list(cfg.feature_channels)} are not the backbone's branch widths "
                             f"{list(self.backbone.config.widths)}")
        self.backbone.requires_grad_(False)
        self.lifter = ContextPoseFormer(cfg, num_joints)

    def train(self, mode: bool = True) -> ContextAwareModel:
        super().train(mode)
        self.backbone.eval()  # frozen: its BatchNorm keeps the detector's statistics
        return self

    def forward(self, joints_2d: torch.Tensor, context: ImageContext) -> torch.Tensor:
        with torch.no_grad():
            _, features = self.backbone.features(normalise_images(context.images))
        return self.lifter(joints_2d, context.crop_coordinates(joints_2d), features)


def backbone_config(cfg: Config) -> HRNetConfig:
    """The HRNet whose feature maps ``cfg`` samples."""
    return HRNetConfig(stem_width=cfg.backbone_stem_width, layer1_blocks=cfg.backbone_layer1_blocks,
                       width=cfg.backbone_width, stage_modules=tuple(cfg.backbone_modules), blocks=cfg.backbone_blocks)


def backbone_overrides(detector: HRNetConfig) -> dict:
    """The Config fields that make CA-PF sample ``detector``'s feature maps (a run on our own
    detector instead of the paper's COCO HRNet-W32; its configuration label lists them)."""
    return {"backbone_stem_width": detector.stem_width, "backbone_layer1_blocks": detector.layer1_blocks,
            "backbone_width": detector.width, "backbone_modules": tuple(detector.stage_modules),
            "backbone_blocks": detector.blocks, "feature_channels": tuple(detector.widths)}


def load_backbone(model: ContextAwareModel, state_dict: dict) -> None:
    """Put the detector's weights (an :class:`HRNet` state dict) into the frozen backbone."""
    model.backbone.load_state_dict(state_dict)


def build(cfg: Config, num_joints: int = 17) -> ContextAwareModel:
    return ContextAwareModel(cfg, num_joints)


INPUT_SPEC = InputSpec(joint_set="h36m17", input_norm="screen", target="metres", flip_test=True, train_flip=True,
                       images=True)
#: methods.md §6.4: AdamW (weight decay 0.1), lr 6.4e-4 x0.99 per epoch, batch 512, MPJPE loss.
#: Upstream sets 9999 epochs and stops by hand (keeping the best epoch ON THE TEST SET); we take
#: 100 epochs and the last one.
PAPER_SCHEDULE = Schedule(optimizer="adamw", lr=6.4e-4, lr_decay=0.99, lr_decay_every=1, lr_decay_unit="epoch",
                          batch_size=512, epochs=100, loss="mpjpe", weight_decay=0.1)
_LABEL = "single frame + HRNet-W32 image context, 14.09M"
PAPER = {"gt": PaperSetup(Config(), INPUT_SPEC, PAPER_SCHEDULE, _LABEL),
         "detected": PaperSetup(Config(), INPUT_SPEC, PAPER_SCHEDULE, _LABEL)}
