"""The pipeline's 2D detector: coordinates between crop and heatmap, training, detection, its file."""

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from lifting import detector
from lifting.errors import DataError
from lifting.models.heatmaps import gaussian_heatmaps
from lifting.skeleton import H36M17

TINY = detector.DetectorSettings(width=4, stem_width=8, layer1_blocks=1, stage_modules=(1, 1, 1), blocks=1, sigma=1.0,
                                 epochs=6, batch_size=8, lr=2e-3, warmup=0.05, train_stride=1, rotation=0.0,
                                 scale=0.0, colour=0.0, flip_test=True,
                                 bf16_cpu=False, seed=0)


def test_heatmap_cells_are_centred_on_their_crop_pixels():
    """Heatmap pixel k covers crop pixels [4k, 4k + 4): its centre is crop coordinate 4k + 2."""
    crop = torch.tensor([[2.0, 6.0], [0.0, 4.0]])
    assert detector.crop_to_heatmap(crop).tolist() == [[0.0, 1.0], [-0.5, 0.5]]
    assert torch.allclose(detector.heatmap_to_crop(detector.crop_to_heatmap(crop)), crop)


def test_mirroring_a_crop_moves_each_joint_to_its_mirror_pixel_and_swaps_sides():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    joints = torch.zeros(2, 17, 2)
    joints[:, H36M17.index("RWrist")] = torch.tensor([0.5, 1.5])  # the centre of pixel column 0
    flipped, mirrored = detector.mirror_crops(images, joints)
    assert torch.equal(flipped[..., 0], images[..., 5])
    assert mirrored[0, H36M17.index("LWrist")].tolist() == [5.5, 1.5]  # the centre of column 5
    assert mirrored[0, H36M17.index("RWrist")].tolist() == [6.0, 0.0]


def _blob(height: int, width: int, x: float, y: float, sigma: float = 2.0) -> torch.Tensor:
    """(1, 3, H, W) uint8: a Gaussian spot centred on crop coordinates (x, y)."""
    rows, cols = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    spot = 255.0 * torch.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma ** 2))
    return spot.round().to(torch.uint8).expand(1, 3, height, width)


@pytest.mark.parametrize("angle, scale", [(90.0, 1.0), (-30.0, 1.3), (0.0, 0.7), (45.0, 0.8)])
def test_rotation_and_scale_move_the_pixels_and_the_joints_alike(angle, scale):
    """A bright spot and a joint at its centre end up at the same place."""
    height, width, x, y = 64, 48, 30.5, 20.5
    image = _blob(height, width, x, y)
    joint = torch.tensor([[[x, y]]])
    moved, moved_joint = detector.rotate_and_scale(image, joint, torch.tensor([angle]), torch.tensor([scale]))
    # the spot's centroid in the output is the moved joint
    weight = moved[0, 0]
    rows, cols = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    centre = torch.stack([(weight * cols).sum(), (weight * rows).sum()]) / weight.sum()
    assert centre.tolist() == pytest.approx(moved_joint[0, 0].tolist(), abs=0.05)
    # about the crop's centre: (30.5, 20.5) is (6.5, -11.5) from (24, 32); +90 degrees turns it
    # anticlockwise on the screen (y down), to (-11.5, -6.5)
    if angle == 90.0:
        assert moved_joint[0, 0].tolist() == pytest.approx([24.0 - 11.5, 32.0 - 6.5])
    offset = moved_joint[0, 0] - torch.tensor([24.0, 32.0])
    assert offset.norm().item() == pytest.approx(np.hypot(6.5, 11.5) / scale, rel=1e-5)


def test_no_augmentation_leaves_the_crop_as_it_was():
    image = torch.randint(0, 256, (2, 3, 16, 12), dtype=torch.uint8)
    joints = torch.rand(2, 17, 2) * 12
    moved, moved_joints = detector.rotate_and_scale(image, joints, torch.zeros(2), torch.ones(2))
    assert torch.allclose(moved, image.float(), atol=1e-3) and torch.allclose(moved_joints, joints, atol=1e-5)


class FixedHeatmaps(nn.Module):
    """Ignores the image: Gaussians at fixed heatmap coordinates."""

    def __init__(self, coords):
        super().__init__()
        self.coords = coords

    def forward(self, images):
        return gaussian_heatmaps(self.coords.expand(len(images), -1, -1), (images.shape[2] // 4, images.shape[3] // 4))


def test_detection_decodes_heatmaps_to_crop_pixels():
    coords = torch.rand(1, 17, 2) * torch.tensor([9.0, 13.0]) + 1.0  # inside a 12 x 16 heatmap
    images = np.zeros((3, 64, 48, 3), np.uint8)
    crop_px, confidence = detector.detect(FixedHeatmaps(coords), images, torch.device("cpu"), flip_test=False)
    assert crop_px == pytest.approx(np.repeat(((coords + 0.5) * 4).numpy(), 3, axis=0), abs=1e-3)
    assert (confidence > 0.9).all() and (confidence <= 1.0).all()  # the peak pixel of a Gaussian off its centre


def blobs(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Crops with one coloured square per joint, at random positions (the joints, in crop pixels)."""
    joints = rng.uniform(4, [44, 60], (count, 17, 2)).astype(np.float32)
    colours = (np.stack(np.meshgrid([60, 140, 220], [60, 140, 220], [0, 255], indexing="ij"), -1).reshape(-1, 3))[:17]
    images = np.full((count, 64, 48, 3), 30, np.uint8)
    for n in range(count):
        for j, (x, y) in enumerate(joints[n].astype(int)):
            images[n, y - 2:y + 2, x - 2:x + 2] = colours[j]
    return images, joints


def test_training_lowers_the_loss_and_the_detection_error(tmp_path):
    """A small HRNet learns where 17 coloured squares are (~5 s): better than guessing the crop's centre."""
    torch.set_num_threads(1)
    images, joints = blobs(48, np.random.default_rng(0))
    settings = dataclasses.replace(TINY, epochs=30, lr=5e-3, width=8, stem_width=16)
    model, record = detector.train_detector(images, joints, settings, torch.device("cpu"), tmp_path / "curve.csv")
    rows = (tmp_path / "curve.csv").read_text().splitlines()
    losses = [float(line.split(",")[3]) for line in rows[1:]]
    assert rows[0].split(",") == list(detector.LOG_COLUMNS)
    assert losses[-1] < 0.9 * losses[0]
    assert record["train_views"] == 48 and record["steps"] == 180 and not model.training
    guess = np.linalg.norm(joints - np.array([24.0, 32.0]), axis=-1).mean()  # ~18.6 px
    found = np.linalg.norm(detector.detect(model, images, torch.device("cpu"))[0] - joints, axis=-1).mean()
    assert found < 0.8 * guess  # measured 12.4 px


def test_the_detector_file_round_trips_and_a_hostile_one_is_refused(tmp_path):
    torch.manual_seed(0)
    model = detector.HRNet(TINY.network()).eval()
    detector.save_detector(tmp_path / "model.pt", model, (48, 64), {"parameters": 1}, TINY)
    loaded, saved = detector.load_detector(tmp_path / "model.pt")
    images = torch.rand(2, 3, 64, 48)
    assert torch.equal(loaded(images), model(images)) and saved["crop"] == {"width": 48, "height": 64}

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "hostile.pt").write_bytes(pickle.dumps({"kind": "detector", "x": Payload()}))
    with pytest.raises(DataError, match="hostile.pt.*refused.*dvc repro train_detector"):
        detector.load_detector(tmp_path / "hostile.pt")
    with pytest.raises(DataError, match="not found"):
        detector.load_detector(tmp_path / "absent.pt")


def test_a_coco_checkpoint_replaces_training_and_its_keypoints_become_h36m17(tmp_path):
    """train_detector with detector.checkpoint: the official W32's weights (here random, same names),
    no training; detect2d maps its COCO keypoints to h36m17."""
    torch.manual_seed(0)
    coco = detector.HRNet(detector.PAPER_CONFIGS["w32"])
    torch.save({"state_dict": {f"module.{k}": v for k, v in coco.state_dict().items()}}, tmp_path / "coco.pth")
    loaded = detector.coco_detector(tmp_path / "coco.pth")
    assert loaded.config == detector.PAPER_CONFIGS["w32"]
    crop_px = np.random.default_rng(0).uniform(0, 48, (2, 17, 2))
    confidence = np.full((2, 17), 0.5)

    class Views:
        keys = __import__("pandas").DataFrame({"subject": ["S9", "S9"], "sequence": ["walk", "walk"],
                                               "camera": ["1", "1"], "frame": [0, 1]})
        centres, sizes, crop_size = np.full((2, 2), 500.0), np.full((2, 2), 480.0), (48, 64)

    table = detector.detected_table(Views, crop_px, confidence, "coco17")
    pixels = detector.poses_from_frame(table, H36M17, "uv")
    image = detector.from_crop(crop_px, Views.centres, Views.sizes, 48, 64)
    hips = [detector.COCO17.index("left_hip"), detector.COCO17.index("right_hip")]
    assert pixels[:, H36M17.index("Hip")] == pytest.approx(image[:, hips].mean(axis=1))
    assert pixels[:, H36M17.index("LWrist")] == pytest.approx(image[:, detector.COCO17.index("left_wrist")])
    (tmp_path / "other.pth").write_bytes(b"junk")
    with pytest.raises(DataError, match="other.pth"):
        detector.coco_detector(tmp_path / "other.pth")


def test_a_detector_made_for_other_crops_is_refused_naming_both_sizes(tmp_path):
    model = detector.HRNet(TINY.network())
    detector.save_detector(tmp_path / "model.pt", model, (48, 64), {"parameters": 1}, TINY)
    _, saved = detector.load_detector(tmp_path / "model.pt")
    detector.check_crop(saved, (48, 64), tmp_path / "model.pt", tmp_path / "images")  # the same size passes
    with pytest.raises(DataError, match=r"made for 48 x 64 crops, and .*images holds 96 x 128 crops"):
        detector.check_crop(saved, (96, 128), tmp_path / "model.pt", tmp_path / "images")
