"""HRNet (Sun et al., "Deep High-Resolution Representation Learning for Human Pose Estimation", CVPR 2019).

Re-implemented from the paper and from reading the official code
(``leoxiaobin/deep-high-resolution-net.pytorch``, commit 6f69e4676ad8d43d0d61b64b1b9726f0c369e7b1,
``lib/models/pose_hrnet.py`` with ``experiments/coco/hrnet/w{32,48}_256x192_adam_lr1e-3.yaml``);
no upstream code is copied. The module and attribute names are chosen so that the state dict has
exactly upstream's keys, shapes and order, so the official COCO checkpoints
``pose_hrnet_w32_256x192.pth`` / ``pose_hrnet_w48_256x192.pth`` load with :func:`load_checkpoint`
(pinned against upstream's key list in ``tests/models/test_hrnet.py``).

Network, for ``(B, 3, H, W)`` images (``C = stem_width``, ``w = width``, branch ``i`` has
``w * 2**i`` channels at ``1 / 2**(i + 2)`` of the input)::

    stem    conv1 3x3/2 (3 -> C) + bn1 + ReLU, conv2 3x3/2 (C -> C) + bn2 + ReLU      1/4
    layer1  layer1_blocks x Bottleneck (planes C, out 4C; 1x1 conv + BN shortcut on the first)
    transition1 -> stage2 (2 branches) -> transition2 -> stage3 (3) -> transition3 -> stage4 (4)
    final_layer 1x1 conv (w -> num_joints), with bias, on the stage-4 1/4 branch

* A *transition* keeps an existing branch (a 3x3 conv + BN + ReLU when its width changes, nothing
  otherwise: upstream's ``None`` entries) and adds the new, lowest-resolution branch with a 3x3
  stride-2 conv + BN + ReLU from the previous stage's lowest-resolution output.
* A stage is ``modules`` :class:`HighResolutionModule`\\ s. Each runs ``blocks`` BasicBlocks per
  branch (``branches.i.k``), then fuses: output ``i`` is ReLU of the sum over inputs ``j`` of
  input ``i`` itself, ``1x1 conv + BN`` then nearest upsampling for ``j > i``, and for ``j < i`` a
  chain of ``i - j`` 3x3 stride-2 conv + BN (+ ReLU except on the last; width ``w_j`` until the
  last, which maps to ``w_i``). The last stage-4 module outputs only the 1/4 branch.
* BatchNorm momentum 0.1 everywhere (upstream's ``BN_MOMENTUM`` and the torch default it uses in
  fusion and transitions).

The COCO 256x192 checkpoints (``PAPER_CONFIGS``): W32 has 28,536,113 parameters (the paper's 28.5M),
W48 has 63,595,745 (63.6M).

Deliberate differences from upstream:

* Fusion upsampling resizes to the target branch's exact size (``F.interpolate(size=...)``,
  nearest) instead of ``nn.Upsample(scale_factor=2**(j - i))``. For even sizes (any input whose
  sides are multiples of 32, e.g. 256x192) the two are the same nearest-neighbour indexing; odd
  branch sizes (a 64x48 input gives 16x12, 8x6, 4x3, 2x2) work here and fail upstream.
* :meth:`HRNet.features` returns the maps Context-Aware PoseFormer samples (methods.md §6.2)
  explicitly, instead of relying on the module mutating its input list in place.
* Only the configuration upstream uses for pose is supported: BasicBlocks in stages 2-4, SUM
  fusion, one new branch per stage, four branches, a 1x1 final layer.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lifting.errors import DataError

BN_MOMENTUM = 0.1
#: ImageNet's RGB mean and std, with which the COCO HRNets were trained (and our detector is).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def normalise_images(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 RGB -> float, standardised with ImageNet's mean and std: an HRNet's input."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1) * 255.0
    return (images.float() - mean) / std


@dataclass(frozen=True)
class HRNetConfig:
    """HRNet's sizes; the defaults are HRNet-W32 for COCO 256x192.

    Shapes: images ``(B, 3, H, W)``; heatmaps ``(B, num_joints, H/4, W/4)``; branch ``i`` in 0..3
    is ``(B, width * 2**i, H / 2**(i+2), W / 2**(i+2))`` (sizes rounded up at each stride-2 conv).

    Args:
        stem_width: channels of the two stride-2 stem convs and planes of the layer1 Bottlenecks
            (whose output has ``4 * stem_width`` channels). 64 upstream.
        layer1_blocks: Bottlenecks in layer1. 4 upstream.
        width: channels of the highest-resolution branch; branch ``i`` has ``width * 2**i``.
        stage_modules: HighResolutionModules in stages 2, 3 and 4. ``(1, 4, 3)`` upstream.
        blocks: BasicBlocks per branch in every module. 4 upstream.
        num_joints: heatmap channels. 17 (COCO) upstream.
    """

    stem_width: int = 64
    layer1_blocks: int = 4
    width: int = 32
    stage_modules: tuple[int, int, int] = (1, 4, 3)
    blocks: int = 4
    num_joints: int = 17

    def __post_init__(self):
        sizes = (self.stem_width, self.layer1_blocks, self.width, self.blocks, self.num_joints)
        if len(self.stage_modules) != 3 or min(*sizes, *self.stage_modules) < 1:
            raise ValueError(f"HRNetConfig needs positive sizes and three stage_modules, got {self}")

    @property
    def widths(self) -> tuple[int, int, int, int]:
        """Channels of the four branches, highest resolution first: ``width * 2**i``."""
        return tuple(self.width * 2**i for i in range(4))


#: The official COCO 256x192 models (``pose_hrnet_w32_256x192.pth``, ``pose_hrnet_w48_256x192.pth``).
PAPER_CONFIGS = {"w32": HRNetConfig(width=32), "w48": HRNetConfig(width=48)}


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    """``conv (no bias) + BN [+ ReLU]``: the ``.0`` / ``.1`` pairs of transitions and fusion."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)]
    return nn.Sequential(*layers, *([nn.ReLU(inplace=True)] if relu else []))


class BasicBlock(nn.Module):
    """``(B, C, h, w) -> (B, C, h, w)``: ReLU(x + BN(conv3x3(ReLU(BN(conv3x3(x)))))).

    The blocks of stages 2-4 keep their width, so there is never a shortcut projection.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(out)))


class Bottleneck(nn.Module):
    """``(B, cin, h, w) -> (B, 4 planes, h, w)``: 1x1 -> 3x3 -> 1x1 (x4) convs with BN, residual.

    ``downsample`` (1x1 conv + BN) projects the shortcut when ``cin != 4 planes``.
    """

    expansion = 4

    def __init__(self, cin: int, planes: int):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)
        self.downsample = _conv_bn(cin, cout, 1, 1, relu=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class HighResolutionModule(nn.Module):
    """Parallel branches, then multi-resolution fusion.

    ``forward(xs)`` with ``xs[i]`` of shape ``(B, widths[i], h_i, w_i)`` returns a new list: all
    fused branches, or only the fused 1/4 branch when ``multi_scale_output`` is False. It never
    modifies ``xs``.
    """

    def __init__(self, widths: Sequence[int], blocks: int, multi_scale_output: bool = True):
        super().__init__()
        n = len(widths)
        self.branches = nn.ModuleList(nn.Sequential(*(BasicBlock(c) for _ in range(blocks))) for c in widths)
        fuse_layers = []
        for i in range(n if multi_scale_output else 1):
            row: list[nn.Module | None] = []
            for j in range(n):
                if j > i:  # lower resolution: 1x1 projection, upsampled in fuse()
                    row.append(_conv_bn(widths[j], widths[i], 1, 1, relu=False))
                elif j == i:
                    row.append(None)
                else:  # higher resolution: i - j stride-2 convs, ReLU between them
                    steps = i - j
                    row.append(nn.Sequential(*(
                        _conv_bn(widths[j], widths[i] if k == steps - 1 else widths[j], 3, 2, relu=k < steps - 1)
                        for k in range(steps))))
            fuse_layers.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse_layers)

    def run_branches(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each branch's BasicBlocks, before fusion: a new list of the same shapes."""
        return [branch(x) for branch, x in zip(self.branches, xs, strict=True)]

    def fuse(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The fusion: output ``i`` at ``xs[i]``'s exact size (upsampling by ``size=``, see the module doc)."""
        out = []
        for i, row in enumerate(self.fuse_layers):
            size = xs[i].shape[-2:]
            total = None
            for j, (layer, x) in enumerate(zip(row, xs, strict=True)):
                if layer is None:
                    y = x
                elif j > i:
                    y = F.interpolate(layer(x), size=size, mode="nearest")
                else:
                    y = layer(x)
                total = y if total is None else total + y
            out.append(F.relu(total))
        return out

    def forward(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return self.fuse(self.run_branches(xs))


def _transition(previous: Sequence[int], current: Sequence[int]) -> nn.ModuleList:
    """Maps a stage's branches to the next stage's: existing ones by a 3x3 conv if the width
    changes (else None), new ones by 3x3 stride-2 convs from the previous lowest-resolution branch."""
    layers: list[nn.Module | None] = []
    for i, cout in enumerate(current):
        if i < len(previous):
            layers.append(_conv_bn(previous[i], cout, 3, 1, relu=True) if cout != previous[i] else None)
        else:
            steps = i + 1 - len(previous)
            cin = previous[-1]
            layers.append(nn.Sequential(*(
                _conv_bn(cin, cout if k == steps - 1 else cin, 3, 2, relu=True) for k in range(steps))))
    return nn.ModuleList(layers)


def _apply_transition(transition: nn.ModuleList, ys: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [ys[i] if layer is None else layer(ys[i] if i < len(ys) else ys[-1])
            for i, layer in enumerate(transition)]


class HRNet(nn.Module):
    """Top-down 2D pose HRNet: ``(B, 3, H, W)`` images -> ``(B, num_joints, H/4, W/4)`` heatmaps.

    Images are RGB, normalised with the ImageNet mean and std, as upstream. Weights start as
    upstream's ``init_weights``: convs normal(std 0.001) with zero bias, BatchNorm weight 1, bias 0.
    """

    def __init__(self, config: HRNetConfig = HRNetConfig()):
        super().__init__()
        self.config = config
        c, w = config.stem_width, config.widths
        m2, m3, m4 = config.stage_modules
        self.conv1 = nn.Conv2d(3, c, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(c, c, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c, momentum=BN_MOMENTUM)
        self.layer1 = nn.Sequential(*(Bottleneck(c if k == 0 else c * Bottleneck.expansion, c)
                                      for k in range(config.layer1_blocks)))
        self.transition1 = _transition([c * Bottleneck.expansion], w[:2])
        self.stage2 = nn.Sequential(*(HighResolutionModule(w[:2], config.blocks) for _ in range(m2)))
        self.transition2 = _transition(w[:2], w[:3])
        self.stage3 = nn.Sequential(*(HighResolutionModule(w[:3], config.blocks) for _ in range(m3)))
        self.transition3 = _transition(w[:3], w)
        self.stage4 = nn.Sequential(*(HighResolutionModule(w, config.blocks, multi_scale_output=k < m4 - 1)
                                      for k in range(m4)))
        self.final_layer = nn.Conv2d(w[0], config.num_joints, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Heatmaps and the four maps Context-Aware PoseFormer samples (methods.md §6.2).

        Args:
            images: ``(B, 3, H, W)``.

        Returns:
            ``(heatmaps, [f0, f1, f2, f3])``: heatmaps ``(B, num_joints, H/4, W/4)``;
            ``f0`` ``(B, w, H/4, W/4)`` is the final stage-4 1/4 branch, the tensor
            ``final_layer`` is applied to; ``f1, f2, f3`` ``(B, 2w / 4w / 8w, H/8 / H/16 / H/32, ...)``
            are the 1/8, 1/16 and 1/32 branches of the FIRST stage-4 module after its BasicBlocks
            and BEFORE its fusion. Channels: W32 32/64/128/256, W48 48/96/192/384.

        Upstream (CA-PF's ``pose_hrnet.py``) gets f1..f3 from ``x_list`` because
        ``HighResolutionModule.forward`` overwrites its input list with the branch outputs; here
        the first stage-4 module's branches and fusion are run as two explicit steps instead, and
        no list is mutated.
        """
        x = F.relu(self.bn1(self.conv1(images)))
        x = F.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        ys = self.stage2(_apply_transition(self.transition1, ys))
        ys = self.stage3(_apply_transition(self.transition2, ys))
        xs = _apply_transition(self.transition3, ys)
        first, *rest = self.stage4
        branched = first.run_branches(xs)
        ys = first.fuse(branched)
        for module in rest:
            ys = module(ys)
        return self.final_layer(ys[0]), [ys[0], *branched[1:]]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> heatmaps ``(B, num_joints, H/4, W/4)``."""
        return self.features(images)[0]


def _listed(keys: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_checkpoint(path: str | Path, config: HRNetConfig = PAPER_CONFIGS["w32"]) -> HRNet:
    """An :class:`HRNet` of ``config`` with the weights in ``path``, in eval mode, on the CPU.

    ``path`` holds a state dict, plain (the official ``pose_hrnet_w32_256x192.pth``) or under
    ``"state_dict"``; a ``module.`` prefix (DataParallel) is stripped. Loading is
    ``weights_only`` (no arbitrary pickles) and strict, except that missing BatchNorm
    ``num_batches_tracked`` counters (absent from checkpoints of old PyTorch versions; never used
    with momentum 0.1) are set to 0.

    Raises:
        DataError: the file is missing or not a weights-only checkpoint, or its keys or shapes
            differ from ``config``'s network (the first few offending keys are named).
    """
    path = Path(path)
    fix = (f"give the official HRNet COCO checkpoint for this config (pose_hrnet_w32_256x192.pth for "
           f"PAPER_CONFIGS['w32'], pose_hrnet_w48_256x192.pth for 'w48') or one saved from HRNet({config})")
    if not path.is_file():
        raise DataError(path, "no such checkpoint file", fix)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's text advises loading it unsafely: not repeated
        raise DataError(path, "not a weights-only checkpoint: it holds objects other than tensors and plain types "
                              "(refused, unpickling them could run code)", fix) from None
    except Exception as err:  # truncated zip, not a torch file, ...: torch raises many types
        raise DataError(path, f"not a readable torch checkpoint ({type(err).__name__}: {err})", fix) from err
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise DataError(path, "does not hold a state dict of tensors", fix)
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in loaded.items()}

    model = HRNet(config)
    expected = model.state_dict()
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = [f"{label}: {_listed(keys)}" for label, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)) if keys]
    if problems:
        raise DataError(path, "does not match the HRNet config; " + "; ".join(problems), fix)
    model.load_state_dict(state, strict=True)
    return model.eval()
