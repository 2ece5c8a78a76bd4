"""Context-Aware PoseFormer's lifting network (Zhao et al., NeurIPS 2023; methods.md §6.3).

A single 2D pose plus a frozen 2D detector's feature maps sampled around each joint:

* **Tokens** per joint, ``L + 1 = 5`` of width ``c = 128``: level 0 is ``Linear(2 -> c)`` of the
  joint's screen-normalised 2D; level ``l`` (1..4) is ``Linear(C_l -> c)`` of feature map ``l``
  sampled bilinearly (``grid_sample``, ``align_corners=True``, zero padding) at the joint's crop
  position (crop coordinates in ``[-1, 1]``). A learned positional embedding ``(1, 5, 17, c)``,
  initialised to zeros, is added.
* **Deformable context**: ``context_blocks`` (4) :class:`DeformableBlock`\\ s applied one after
  another; each updates the tokens of **all four** feature levels of every joint, with one set of
  projections shared by the levels (upstream's ``pose_dformer.DeformableBlock``). The query of
  level ``l`` is ``norm1(level-l token + level-0 token)``; per head (4) and sample (4) it gives a
  softmax attention weight (softmax over the head's samples; ``Linear(c -> 16)``, weight and bias
  initialised to 0, so the samples start equally weighted) and an offset ``tanh(Linear(query))``
  in crop coordinates added to the joint's crop position (weight 0, bias on circles of radius
  ``0.01 (i + 1)`` for sample ``i``, one direction per head). Level ``l`` samples its **own** map at
  the 16 positions (border padding), projects the samples with ``embed_proj[l] = Linear(C_l ->
  c / 4)`` (one per level, shared by the heads), and each head's weighted sum is concatenated back
  to ``c``. Then ``x = x + drop_path(context)`` and ``x = x + drop_path(mlp(norm2(x)))`` (MLP ratio
  2, GELU); the level-0 token passes through unchanged.
* **Pose-context interaction**: 4 transformer blocks (width ``c``, 8 heads, MLP ratio 2, qkv
  bias) across each joint's 5 level tokens, then the tokens concatenated to ``5c = 640`` per
  joint and 4 transformer blocks across the 17 joints. Stochastic depth of block ``i`` of each of
  the three stacks: ``linspace(0, 0.2, 4)[i]``.
* **Head**: LN + ``Linear(640 -> 3)`` per joint, root-relative metres.

LayerNorm eps as upstream: 1e-6 in the transformer blocks (``partial(nn.LayerNorm, eps=1e-6)``),
torch's default 1e-5 in the deformable blocks and the head. All other layers keep torch's default
initialisation (upstream applies none of its own).

Ablation ``Config(image_context=False)``: the same network (same parameters) with its image context
removed, i.e. its 2D tokens only. No feature map is read: every level token is as if its maps were
all zeros (its embedding bias plus the positional embedding, and in each deformable block the
value projections' biases, whatever the attention weights), so the output depends on the 2D alone,
and :class:`ContextAwareModel` does not run the backbone at all.

Lifting parameters: 14,094,147 with HRNet-W32's feature widths (32, 64, 128, 256; 352,448 of them in
the deformable blocks), 14,155,587 with HRNet-W48's, 14,233,411 with CPN's four 256-channel maps:
methods.md §9's 14.09M / 14.16M / 14.23M (pinned in ``tests/models/test_context_poseformer.py``).
The frozen backbone is not part of this module. Re-implemented from the paper's description and
upstream's structure (``ContextPose/mvn/models/pose_dformer.py``); no upstream code is copied.

The method (:class:`ContextAwareModel`, what :func:`build` returns) is the frozen backbone plus
this network; only the lifting network trains. On the embedded data the backbone is the pipeline's
own detector (``train_detector``: an HRNet trained on the rendered crops; its sizes replace the
paper's W32 in the config, and the run's label says so), with the Human3.6M videos the official
COCO HRNet-W32/W48 (:func:`lifting.models.hrnet.load_checkpoint`). The crop box comes from the
ground-truth root, as upstream's (:mod:`lifting.images.crop`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lifting.detector import load_detector
from lifting.images.context import ImageContext
from lifting.models.base import Lifter
from lifting.models.hrnet import HRNet, HRNetConfig, normalise_images
from lifting.models.spec import InputSpec, PaperSetup, Schedule

#: Channels of the four feature levels the paper samples (1/4 to 1/32 of the crop).
FEATURE_CHANNELS = {"hrnet_w32": (32, 64, 128, 256), "hrnet_w48": (48, 96, 192, 384), "cpn": (256, 256, 256, 256)}
#: LayerNorm eps of the transformer blocks (upstream's ``partial(nn.LayerNorm, eps=1e-6)``); the
#: deformable blocks and the head keep torch's default 1e-5.
BLOCK_NORM_EPS = 1e-6


@dataclass(frozen=True)
class Config:
    """CA-PF's lifting network and the HRNet it samples; the defaults are the paper's (HRNet-W32,
    :data:`lifting.models.hrnet.PAPER_CONFIGS`). ``feature_channels`` are the sampled maps'
    channels (the backbone's branch widths). ``context_blocks`` deformable blocks, each updating
    every level; ``level_blocks`` transformer blocks across each joint's level tokens;
    ``joint_blocks`` across the joints. ``image_context=False`` is the ablation without the image
    (the feature maps are not read, the backbone does not run; same parameters)."""

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
    context_blocks: int = 4
    level_blocks: int = 4
    joint_blocks: int = 4
    mlp_ratio: float = 2.0
    drop_path: float = 0.2
    image_context: bool = True

    def __post_init__(self) -> None:
        if not self.feature_channels or min(self.feature_channels) < 1:
            raise ValueError(f"feature_channels must be positive, got {list(self.feature_channels)}")
        if self.width % self.deform_heads or (self.width * (len(self.feature_channels) + 1)) % self.attention_heads:
            raise ValueError("width must divide into deform_heads, and the joint width into attention_heads")
        if min(self.context_blocks, self.level_blocks, self.joint_blocks) < 0:
            raise ValueError("context_blocks, level_blocks and joint_blocks must not be negative")
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
    """Pre-norm self-attention (qkv bias) and MLP, each residual with stochastic depth; LayerNorm
    eps 1e-6: ``(B, N, d) -> (B, N, d)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS), nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp, self.drop, self.heads = Mlp(dim, mlp_ratio), DropPath(drop_path), heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, tokens, dim)
        x = x + self.drop(self.proj(attended))
        return x + self.drop(self.mlp(self.norm2(x)))


def offset_bias(heads: int, samples: int) -> torch.Tensor:
    """The sampling offsets' initial bias, ``(heads * samples * 2,)`` ordered (head, sample, xy):
    head ``h`` points along angle ``2 pi h / heads``, its sample ``i`` at ``0.01 (i + 1)`` along it.
    As upstream (Deformable DETR's rule), the direction is scaled so that its larger coordinate is
    1; with 4 heads (the axes) the samples lie on circles of radius ``0.01 (i + 1)``."""
    angles = torch.arange(heads, dtype=torch.float32) * (2 * math.pi / heads)
    directions = torch.stack([angles.cos(), angles.sin()], -1)
    directions = directions / directions.abs().amax(-1, keepdim=True)
    steps = 0.01 * torch.arange(1, samples + 1, dtype=torch.float32)
    return (directions[:, None, :] * steps[None, :, None]).reshape(-1)


class DeformableBlock(nn.Module):
    """One step of deformable context, updating every feature level's tokens with projections
    shared by the levels: ``forward(tokens (B, L + 1, J, c)`` (level 0 the coordinate tokens),
    ``positions (B, J, 2)`` crop coordinates in [-1, 1], ``feature_maps [(B, C_l, H_l, W_l)] * L``
    or None for all-zero maps ``) -> (B, L + 1, J, c)``; level 0 passes through unchanged.

    ``embed_proj[l]`` is level ``l``'s value projection ``Linear(C_l -> c / heads)``, shared by the
    heads; head ``h``'s weighted sum of its samples fills channels ``h c / heads ...`` of the update.
    """

    def __init__(self, channels: Sequence[int], width: int, heads: int, samples: int, mlp_ratio: float,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.heads, self.samples = heads, samples
        self.norm1 = nn.LayerNorm(width)
        self.attention_weights = nn.Linear(width, heads * samples)
        self.sampling_offsets = nn.Linear(width, heads * samples * 2)
        self.embed_proj = nn.ModuleList([nn.Linear(c, width // heads) for c in channels])
        self.norm2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, mlp_ratio)
        self.drop = DropPath(drop_path)
        with torch.no_grad():
            self.attention_weights.weight.zero_()
            self.attention_weights.bias.zero_()
            self.sampling_offsets.weight.zero_()
            self.sampling_offsets.bias.copy_(offset_bias(heads, samples))

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor | None,
                feature_maps: Sequence[torch.Tensor] | None) -> torch.Tensor:
        coordinate, levels = tokens[:, :1], tokens[:, 1:]
        context = self.context(self.norm1(levels + coordinate), positions, feature_maps)
        levels = levels + self.drop(context)
        levels = levels + self.drop(self.mlp(self.norm2(levels)))
        return torch.cat([coordinate, levels], dim=1)

    def context(self, query: torch.Tensor, positions: torch.Tensor | None,
                feature_maps: Sequence[torch.Tensor] | None) -> torch.Tensor:
        """``(B, L, J, c)`` queries -> ``(B, L, J, c)`` sampled context. Without maps (None: all
        zeros), every sample projects to its level's bias and the weights sum to one per head, so
        the context is the biases, repeated per head, whatever the query."""
        batch, n_levels, joints, width = query.shape
        if feature_maps is None:
            biases = torch.stack([proj.bias.repeat(self.heads) for proj in self.embed_proj])  # (L, c)
            return biases[None, :, None, :].to(query.dtype).expand(batch, n_levels, joints, width)
        weights = self.attention_weights(query).view(batch, n_levels, joints, self.heads, self.samples).softmax(-1)
        offsets = torch.tanh(self.sampling_offsets(query)).view(batch, n_levels, joints, self.heads * self.samples, 2)
        points = positions[:, None, :, None, :] + offsets  # (B, L, J, heads * samples, 2)
        values = torch.stack([proj(sample_at(fmap, points[:, l].reshape(batch, -1, 2), padding="border"))
                              for l, (proj, fmap) in enumerate(zip(self.embed_proj, feature_maps))], dim=1)
        values = values.view(batch, n_levels, joints, self.heads, self.samples, width // self.heads)
        return (weights[..., None] * values).sum(4).reshape(batch, n_levels, joints, width)


def _linspace(end: float, count: int) -> list[float]:
    """``count`` evenly spaced values from 0 to ``end`` (stochastic depth rising over a stack)."""
    return [end * i / max(count - 1, 1) for i in range(count)]


class ContextPoseFormer(nn.Module):
    """``forward(joints_2d (B, J, 2) screen-normalised, crop_2d (B, J, 2) in [-1, 1], features
    [(B, C_l, H_l, W_l)] * L) -> (B, J, 3)`` root-relative metres. With ``image_context=False``
    ``crop_2d`` and ``features`` are not read (None is fine): every map counts as all zeros."""

    def __init__(self, cfg: Config, num_joints: int = 17) -> None:
        super().__init__()
        levels, width = len(cfg.feature_channels), cfg.width
        self.image_context = cfg.image_context
        self.coordinate = nn.Linear(2, width)
        self.embed = nn.ModuleList([nn.Linear(c, width) for c in cfg.feature_channels])
        self.position = nn.Parameter(torch.zeros(1, levels + 1, num_joints, width))  # upstream's Spatial_pos_embed
        self.context_blocks = nn.ModuleList([
            DeformableBlock(cfg.feature_channels, width, cfg.deform_heads, cfg.deform_samples, cfg.mlp_ratio, r)
            for r in _linspace(cfg.drop_path, cfg.context_blocks)])
        self.level_blocks = nn.ModuleList([TransformerBlock(width, cfg.attention_heads, cfg.mlp_ratio, r)
                                           for r in _linspace(cfg.drop_path, cfg.level_blocks)])
        joint_width = width * (levels + 1)
        self.joint_blocks = nn.ModuleList([TransformerBlock(joint_width, cfg.attention_heads, cfg.mlp_ratio, r)
                                           for r in _linspace(cfg.drop_path, cfg.joint_blocks)])
        self.head = nn.Sequential(nn.LayerNorm(joint_width), nn.Linear(joint_width, 3))

    def level_tokens(self, crop_2d: torch.Tensor | None, features: Sequence[torch.Tensor] | None,
                     like: torch.Tensor) -> torch.Tensor:
        """``(B, L, J, c)`` feature-level tokens before the positional embedding: each level's map
        sampled at the joints and embedded; without maps (None) the embeddings' biases, shaped as
        ``like``'s ``(B, J, c)``."""
        if features is None:
            biases = torch.stack([embed.bias for embed in self.embed]).to(like.dtype)  # (L, c)
            return biases[None, :, None, :].expand(like.shape[0], -1, like.shape[1], -1)
        return torch.stack([embed(sample_at(fmap, crop_2d)) for embed, fmap in zip(self.embed, features)], dim=1)

    def forward(self, joints_2d: torch.Tensor, crop_2d: torch.Tensor | None,
                features: Sequence[torch.Tensor] | None) -> torch.Tensor:
        batch, joints, _ = joints_2d.shape
        if not self.image_context:
            crop_2d, features = None, None
        coordinate = self.coordinate(joints_2d)
        tokens = torch.cat([coordinate[:, None], self.level_tokens(crop_2d, features, coordinate)], dim=1)
        tokens = tokens + self.position  # (B, L + 1, J, c)
        for block in self.context_blocks:
            tokens = block(tokens, crop_2d, features)
        x = tokens.transpose(1, 2).reshape(batch * joints, tokens.shape[1], -1)  # each joint's L + 1 tokens
        for block in self.level_blocks:
            x = block(x)
        x = x.reshape(batch, joints, -1)  # (B, J, (L + 1) c), level-major
        for block in self.joint_blocks:
            x = block(x)
        return self.head(x)


class ContextAwareModel(Lifter):
    """The frozen 2D detector and the lifting network: ``forward(joints_2d (B, J, 2)
    screen-normalised, context)`` with the samples' :class:`~lifting.images.context.ImageContext`
    -> ``(B, J, 3)`` root-relative metres.

    The crops are normalised with ImageNet's mean and std (as the COCO HRNets expect) and go through
    the backbone in eval mode without gradients (CA-PF does not train it); each joint's crop
    position follows from its 2D input and the crop's box, in upstream's convention (``x / (w/2)
    - 1`` of the crop pixel, read with ``align_corners=True``). With ``image_context=False`` the
    backbone is kept (its weights load as usual) but never run, and ``context`` is not read (None
    is fine).
    """

    def __init__(self, cfg: Config, num_joints: int = 17) -> None:
        super().__init__()
        self.backbone = HRNet(backbone_config(cfg))
        if tuple(cfg.feature_channels) != self.backbone.config.widths:
            raise ValueError(f"feature_channels {list(cfg.feature_channels)} are not the backbone's branch widths "
                             f"{list(self.backbone.config.widths)}")
        self.backbone.requires_grad_(False)
        self.lifter = ContextPoseFormer(cfg, num_joints)

    def initialise(self, weights: dict[str, torch.Tensor]) -> None:
        """Put the detector's weights (an :class:`HRNet` state dict, :func:`backbone_weights`) into
        the frozen backbone."""
        self.backbone.load_state_dict(weights)

    def train(self, mode: bool = True) -> ContextAwareModel:
        super().train(mode)
        self.backbone.eval()  # frozen: its BatchNorm keeps the detector's statistics
        return self

    def forward(self, joints_2d: torch.Tensor, context: ImageContext | None = None) -> torch.Tensor:
        if not self.lifter.image_context:
            return self.lifter(joints_2d, None, None)
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


def with_backbone(cfg: Config, detector_path: Path | None) -> Config:
    """``cfg`` set to sample the feature maps of the detector at ``detector_path`` (the training
    stage's ``--detector``; its sizes replace the paper's HRNet-W32; the run's label lists them)."""
    detector, _ = load_detector(_detector_path(detector_path))
    return dataclasses.replace(cfg, **backbone_overrides(detector.config))


def backbone_weights(detector_path: Path | None) -> dict:
    """The state dict of the detector at ``detector_path`` (for :meth:`ContextAwareModel.initialise`)."""
    return load_detector(_detector_path(detector_path))[1]["state_dict"]


def _detector_path(path: Path | None) -> Path:
    if path is None:
        raise ValueError("this method samples a detector's feature maps: give the detector's model.pt (--detector)")
    return path


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
