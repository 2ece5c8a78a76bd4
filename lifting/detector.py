"""The pipeline's own 2D detector: an HRNet trained on the rendered crops, then run on every view.

Training (``train_detector``) follows the HRNet recipe (Sun et al., CVPR 2019; the COCO
configuration of ``leoxiaobin/deep-high-resolution-net.pytorch``): Gaussian heatmap targets at 1/4
of the crop (:mod:`lifting.models.heatmaps`), a mean-squared error over the maps weighted by
whether the joint lies inside the crop, Adam at 1e-3, random horizontal flips (image and joints,
left and right swapped), and upstream's random rotation and scaling about the crop's centre
(:func:`rotate_and_scale`: with ``rotation: 45`` and ``scale: 0.35``, an angle ``N(0, 45°)``
clipped to ±90° on 60 % of the crops and a scale ``N(1, 0.35)`` clipped to 1 ± 0.35). Upstream's
half-body crops are left out: every crop here holds the whole body (the ground-truth-root box),
in training and test alike. What the budget changes is the length (a few epochs over every n-th
training frame instead of 210 over COCO), the learning rate and its decay (cosine to 0 with a short
warm-up instead of x0.1 at epochs 170 and 200) and the network's size (:class:`DetectorSettings`).

Detection (``detect2d``) decodes each joint's heatmap (argmax + Taylor refinement) and maps it back
to image pixels: the ``detected`` 2D source, with the heatmap peak as its confidence. With
``flip_test`` (``detector.flip_test``, on by default, as upstream tests) each heatmap is first
averaged with the mirrored crop's.

Coordinates: crop pixels ``u`` (``lifting.images.crop``: pixel ``i`` covers ``[i, i + 1)``) map to
heatmap pixels ``u / 4 - 0.5`` (heatmap pixel ``k``'s centre is the centre of the 4x4 crop
pixels it covers), and back by the inverse.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lifting import metrics
from lifting.config import ParamsError
from lifting.data.schema import POSES2D_KEYS, poses_from_frame, poses_to_frame, read_table
from lifting.errors import DataError
from lifting.images.context import VIEW_KEYS, context_rows
from lifting.images.crop import from_crop, to_crop
from lifting.images.store import RenderedViews
from lifting.io import atomic_path, write_csv
from lifting.models.heatmaps import decode_heatmaps, gaussian_heatmaps
from lifting.models.hrnet import PAPER_CONFIGS, HRNet, HRNetConfig, load_checkpoint, normalise_images
from lifting.skeleton import COCO17, H36M17, coco17_to_h36m17, get_joint_set
from lifting.device import autocast

#: Heatmaps are at 1/4 of the crop (HRNet's stride-4 stem).
STRIDE = 4
LOG_COLUMNS = ("epoch", "step", "samples_seen", "train_loss", "lr", "seconds", "samples_per_s")


@dataclass(frozen=True)
class DetectorSettings:
    """The detector's network and training budget (the ``detector`` section of params.yaml).

    Attributes:
        width, stem_width, layer1_blocks, stage_modules, blocks: the HRNet's sizes
            (:class:`~lifting.models.hrnet.HRNetConfig`; HRNet-W32 is 32, 64, 4, (1, 4, 3), 4).
        sigma: the Gaussian targets' standard deviation, heatmap pixels.
        epochs, batch_size, lr, warmup: Adam at ``lr`` with a linear warm-up over ``warmup`` of the
            steps, then a cosine decay to 0.
        train_stride: train on every n-th frame of each training sequence (all 4 cameras).
        rotation: the rotation augmentation's standard deviation, degrees (0: none; upstream 45).
        scale: the scale augmentation's standard deviation (0: none; upstream 0.35).
        colour: colour augmentation, each crop's channels scaled by gains drawn uniformly from
            ``1 ± colour`` (0: none; upstream has none).
        flip_test: average each heatmap with the mirrored crop's when detecting.
        bf16_cpu: bf16 autocast on the CPU (always on CUDA).
        seed: seeds the initialisation, the shuffling and the flips.
        checkpoint: instead of training, an official COCO HRNet-W32 or W48 checkpoint
            (``pose_hrnet_w32_256x192.pth``: Context-Aware PoseFormer's backbone); its COCO
            keypoints become h36m17 (:func:`lifting.skeleton.coco17_to_h36m17`). None: train.
    """

    width: int
    stem_width: int
    layer1_blocks: int
    stage_modules: tuple[int, int, int]
    blocks: int
    sigma: float
    epochs: int
    batch_size: int
    lr: float
    warmup: float
    train_stride: int
    rotation: float
    scale: float
    colour: float
    flip_test: bool
    bf16_cpu: bool
    seed: int
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        """One :class:`~lifting.config.ParamsError` naming the first value that cannot work (a field
        left None was not read: a stage that parses part of the section)."""
        positive = ("width", "stem_width", "layer1_blocks", "blocks", "epochs", "batch_size", "train_stride")
        for name in positive:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ParamsError(f"detector.{name} must be at least 1, got {value}")
        if self.stage_modules is not None and min(self.stage_modules) < 1:
            raise ParamsError(f"detector.stage_modules must all be at least 1, got {list(self.stage_modules)}")
        for name in ("sigma", "lr"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ParamsError(f"detector.{name} must be positive, got {value}")
        if self.warmup is not None and not 0.0 <= self.warmup < 1.0:
            raise ParamsError(f"detector.warmup is a share of the steps in [0, 1), got {self.warmup}")
        if self.colour is not None and not 0.0 <= self.colour < 1.0:
            raise ParamsError(f"detector.colour must lie in [0, 1), got {self.colour}")
        if self.scale is not None and not 0.0 <= self.scale < 1.0:
            raise ParamsError(f"detector.scale must lie in [0, 1), got {self.scale}")
        if self.rotation is not None and not 0.0 <= self.rotation <= 90.0:
            raise ParamsError(f"detector.rotation must lie in [0, 90] degrees, got {self.rotation}")

    def network(self) -> HRNetConfig:
        return HRNetConfig(stem_width=self.stem_width, layer1_blocks=self.layer1_blocks, width=self.width,
                           stage_modules=tuple(self.stage_modules), blocks=self.blocks, num_joints=len(H36M17.names))


def _network_input(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 crops -> the HRNet's standardised input, in the channels-last layout (its
    convolutions run 1.2x faster training, 1.6x detecting on the CPU)."""
    return normalise_images(images).contiguous(memory_format=torch.channels_last)


def crop_to_heatmap(crop_px: torch.Tensor) -> torch.Tensor:
    return crop_px / STRIDE - 0.5


def heatmap_to_crop(heatmap_px: torch.Tensor) -> torch.Tensor:
    return (heatmap_px + 0.5) * STRIDE


def mirror_crops(images: torch.Tensor, crop_px: torch.Tensor | None = None):
    """Mirror (B, 3, H, W) crops left to right, and their (B, J, 2) crop-pixel joints (x -> W - x,
    left and right swapped)."""
    flipped = images.flip(-1)
    if crop_px is None:
        return flipped
    mirrored = crop_px[:, list(H36M17.flip_permutation())].clone()
    mirrored[..., 0] = images.shape[-1] - mirrored[..., 0]
    return flipped, mirrored


def rotate_and_scale(images: torch.Tensor, crop_px: torch.Tensor, angle_deg: torch.Tensor,
                     scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate (B, 3, H, W) crops by ``angle_deg`` (B,) degrees and zoom them out by ``scale`` (B,)
    (> 1: the person looks smaller) about the crop's centre, bilinearly, black outside; their (B, J, 2)
    crop-pixel joints move with them. Returns float crops in [0, 255] and the moved joints."""
    batch, _, height, width = images.shape
    angle = torch.deg2rad(angle_deg.float())
    cos, sin = angle.cos(), angle.sin()
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    half = torch.tensor([width / 2.0, height / 2.0], device=images.device)
    # a crop pixel p (pixel i covers [i, i + 1)) is half * (n + 1) in grid_sample's coordinates n
    # (align_corners False); the output at p shows the input at centre + scale * rotation (p - centre)
    theta = scale.float()[:, None, None] * rotation / half[None, :, None] * half[None, None, :]
    grid = torch.nn.functional.affine_grid(torch.cat([theta, theta.new_zeros(batch, 2, 1)], -1),
                                           [batch, 3, height, width], align_corners=False)
    moved = torch.nn.functional.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros",
                                            align_corners=False)
    joints = (crop_px - half) @ rotation / scale.float()[:, None, None]  # rotation^T (p - centre) / scale
    return moved, joints + half


def _random_affine(settings: DetectorSettings, count: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(count,) angles (degrees) and scales drawn as upstream's HRNet (see the module docstring)."""
    angle = (torch.randn(count, generator=generator) * settings.rotation).clamp(-2 * settings.rotation,
                                                                                  2 * settings.rotation)
    angle = torch.where(torch.rand(count, generator=generator) <= 0.6, angle, 0.0)
    scale = (torch.randn(count, generator=generator) * settings.scale + 1.0).clamp(1.0 - settings.scale,
                                                                                     1.0 + settings.scale)
    return angle, scale


def _lr(settings: DetectorSettings, step: int, total: int) -> float:
    warm = max(1, int(round(settings.warmup * total)))
    if step < warm:
        return settings.lr * (step + 1) / warm
    return settings.lr * 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(total - warm, 1)))


def train_detector(images: np.ndarray, crop_joints: np.ndarray, settings: DetectorSettings, device: torch.device,
                   log_path: Path) -> tuple[HRNet, dict]:
    """Train the detector on (N, H, W, 3) uint8 crops and their (N, J, 2) ground-truth joints in crop
    pixels; writes one CSV row (:data:`LOG_COLUMNS`) per tenth of the run to ``log_path``.
    Returns the trained network (eval mode) and its training record."""
    torch.manual_seed(settings.seed)
    model = HRNet(settings.network()).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    pixels = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)
    joints = torch.as_tensor(crop_joints, dtype=torch.float32, device=device)
    height, width = pixels.shape[-2:]
    size = (math.ceil(height / STRIDE), math.ceil(width / STRIDE))
    steps_per_epoch = math.ceil(len(pixels) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    log_every = max(1, total // 10)
    generator = torch.Generator().manual_seed(settings.seed)
    rows, step, started, loss_sum, count = [], 0, time.perf_counter(), 0.0, 0
    point_started = started
    model.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(pixels), generator=generator).to(device)
        flips = (torch.rand(len(pixels), generator=generator) < 0.5).to(device)
        augmented = settings.rotation > 0 or settings.scale > 0
        if augmented:
            angles, scales = (t.to(device) for t in _random_affine(settings, len(pixels), generator))
        if settings.colour > 0:
            gains = (1.0 + settings.colour * (2.0 * torch.rand(len(pixels), 3, 1, 1, generator=generator) - 1.0)).to(device)
        for start in range(0, len(pixels), settings.batch_size):
            index = order[start:start + settings.batch_size]
            batch, target_px = pixels[index], joints[index]
            flip = flips[index]
            mirrored, mirrored_px = mirror_crops(batch, target_px)
            batch = torch.where(flip[:, None, None, None], mirrored, batch)
            target_px = torch.where(flip[:, None, None], mirrored_px, target_px)
            if augmented:
                batch, target_px = rotate_and_scale(batch, target_px, angles[index], scales[index])
            if settings.colour > 0:
                batch = (batch.float() * gains[index]).clamp(0.0, 255.0)
            inside = ((target_px >= 0) & (target_px < torch.tensor([width, height], device=device))).all(-1)
            targets = gaussian_heatmaps(crop_to_heatmap(target_px), size, settings.sigma)
            for group in optimizer.param_groups:
                group["lr"] = _lr(settings, step, total)
            with autocast(device, settings.bf16_cpu):
                predicted = model(_network_input(batch)).float()
            loss = (((predicted - targets) ** 2).mean((-1, -2)) * inside).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum, count = loss_sum + loss.item(), count + 1
            if step % log_every == 0 or step == total:
                seconds = time.perf_counter() - point_started
                rows.append({"epoch": round(step / steps_per_epoch, 3), "step": step,
                             "samples_seen": min(step * settings.batch_size, settings.epochs * len(pixels)),
                             "train_loss": round(loss_sum / count, 7), "lr": _lr(settings, step - 1, total),
                             "seconds": round(seconds, 2),
                             "samples_per_s": round(count * settings.batch_size / max(seconds, 1e-9), 1)})
                write_csv(rows, log_path, LOG_COLUMNS)
                loss_sum, count, point_started = 0.0, 0, time.perf_counter()
    seconds = time.perf_counter() - started
    record = {"train_seconds": round(seconds, 1), "train_views": len(pixels), "epochs": settings.epochs,
              "steps": total, "samples_per_s": round(settings.epochs * len(pixels) / max(seconds, 1e-9), 1),
              "parameters": sum(p.numel() for p in model.parameters())}
    return model.eval(), record


@torch.no_grad()
def detect(model: HRNet, images: np.ndarray, device: torch.device, flip_test: bool = True, batch_size: int = 256,
           bf16_cpu: bool = False, joint_set: str = H36M17.name) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) uint8 crops -> ((N, J, 2) joints in crop pixels, (N, J) heatmap peaks), in the
    model's ``joint_set`` (whose left/right pairs the flip test swaps)."""
    model.eval().to(memory_format=torch.channels_last)
    coords, confidence = [], []
    flip = list(get_joint_set(joint_set).flip_permutation())
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size].transpose(0, 3, 1, 2)))
        batch = _network_input(batch.to(device))
        with autocast(device, bf16_cpu):
            heatmaps = model(batch).float()
            if flip_test:
                mirrored = mirror_crops(batch).contiguous(memory_format=torch.channels_last)
                heatmaps = 0.5 * (heatmaps + model(mirrored).float().flip(-1)[:, flip])
        xy, peak = decode_heatmaps(heatmaps)
        coords.append(heatmap_to_crop(xy).cpu().numpy())
        confidence.append(peak.cpu().numpy())
    return np.concatenate(coords), np.concatenate(confidence)


def coco_detector(path: Path) -> HRNet:
    """The official COCO HRNet in ``path``: W32 or W48, whichever its weights fit."""
    try:
        return load_checkpoint(path, PAPER_CONFIGS["w32"])
    except DataError as w32_error:
        try:
            return load_checkpoint(path, PAPER_CONFIGS["w48"])
        except DataError:
            raise w32_error from None


def save_detector(path: Path, model: HRNet, crop: tuple[int, int], record: dict, settings: DetectorSettings,
                  joint_set: str = H36M17.name) -> None:
    """Write the detector (plain types and tensors only; loads with ``weights_only=True``);
    ``joint_set`` names its heatmaps' keypoints (``coco17`` for a COCO checkpoint)."""
    with atomic_path(path) as tmp:
        torch.save({"kind": "detector", "joint_set": joint_set, "config": dataclasses.asdict(model.config),
                    "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "crop": {"width": crop[0], "height": crop[1]}, "record": record,
                    "settings": dataclasses.asdict(settings)}, tmp)


def load_detector(path: Path) -> tuple[HRNet, dict]:
    """The saved detector (eval mode) and its file's contents; one clear error for a missing,
    foreign or hostile file."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(path, "the trained detector not found", "run `dvc repro train_detector`") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise DataError(path, f"not a loadable detector ({type(err).__name__}; a file holding objects other than "
                              "tensors and plain types is refused)", "delete it and re-run `dvc repro train_detector`"
                        ) from None
    if not isinstance(saved, dict) or saved.get("kind") != "detector":
        raise DataError(path, "not a detector written by this pipeline", "re-run `dvc repro train_detector`")
    config = HRNetConfig(**{**saved["config"], "stage_modules": tuple(saved["config"]["stage_modules"])})
    model = HRNet(config)
    model.load_state_dict(saved["state_dict"])
    return model.eval(), saved


def check_crop(saved: dict, crop_size: tuple[int, int], path: Path, images: Path) -> None:
    """Refuse a detector (``saved``: :func:`load_detector`'s file contents) made for crops of another
    size than the rendered views' ``crop_size`` (width, height): its heatmaps would be read on the
    wrong grid."""
    crop = saved.get("crop") or {}
    trained = (crop.get("width"), crop.get("height"))
    if trained != tuple(crop_size):
        raise DataError(path, f"the detector was made for {trained[0]} x {trained[1]} crops, and {images} holds "
                              f"{crop_size[0]} x {crop_size[1]} crops (render.width x render.height)",
                        "re-run `dvc repro train_detector` (or render the crops at the detector's size)")


def view_labels(views: RenderedViews, store_dir: Path, data_source: str, crop: bool = True) -> np.ndarray:
    """(N, J, 2) ground-truth joints of every view, in crop pixels (``crop``) or image pixels,
    from the store's ``gt`` 2D source."""
    path = store_dir / "poses2d.parquet"
    frame, _ = read_table(path, {"table": "poses2d", "joint_set": H36M17.name, "data_source": data_source},
                          filters=[("source", "==", "gt")])
    gt = poses_from_frame(frame, H36M17, "uv")[context_rows(frame, views.keys, path)]
    return to_crop(gt, views.centres, views.sizes, *views.crop_size) if crop else gt


def detected_table(views: RenderedViews, crop_px: np.ndarray, confidence: np.ndarray,
                   joint_set: str = H36M17.name) -> pd.DataFrame:
    """The ``detected`` 2D source in the store's poses2d layout: image pixels and confidences,
    COCO keypoints (``joint_set`` coco17) converted to h36m17."""
    pixels = from_crop(crop_px, views.centres, views.sizes, *views.crop_size)
    if joint_set == COCO17.name:
        pixels, confidence = coco17_to_h36m17(pixels), coco17_to_h36m17(confidence[..., None])[..., 0]
    keys = views.keys[VIEW_KEYS].reset_index(drop=True).assign(source="detected")[list(POSES2D_KEYS)]
    uvc = np.concatenate([pixels, confidence[..., None]], axis=-1)
    return pd.concat([keys, poses_to_frame(uvc, H36M17, "uvc")], axis=1)


def detection_metrics(detected: pd.DataFrame, gt_px: np.ndarray, train_subjects, test_subjects) -> dict:
    """The detector's 2D accuracy (:func:`lifting.metrics.keypoints_2d_summary`) on the test
    subjects' views and on the training subjects' (which it was trained on, every n-th frame)."""
    pixels = poses_from_frame(detected, H36M17, "uv")
    result = {}
    for split, subjects in (("test", test_subjects), ("train", train_subjects)):
        rows = detected["subject"].isin(subjects).to_numpy()
        result[split] = metrics.keypoints_2d_summary(pixels[rows], gt_px[rows], H36M17.names,
                                                     mirror=H36M17.flip_permutation())
    return result
