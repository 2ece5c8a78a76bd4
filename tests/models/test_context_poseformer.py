"""Context-Aware PoseFormer's lifting network: parameter counts, sampling, and that context reaches the output."""

import pytest
import torch

from lifting.images.context import ImageContext
from lifting.models import context_poseformer as capf
from lifting.models.hrnet import HRNetConfig

TINY_BACKBONE = HRNetConfig(stem_width=8, layer1_blocks=1, width=4, stage_modules=(1, 1, 1), blocks=1)


def features_for(cfg: capf.Config, batch: int, size=(64, 48)) -> list[torch.Tensor]:
    """Random maps at 1/4, 1/8, 1/16 and 1/32 of a 256x192 crop."""
    return [torch.randn(batch, c, size[0] >> k, size[1] >> k) for k, c in enumerate(cfg.feature_channels)]


@pytest.mark.parametrize("backbone, expected", [("hrnet_w32", 14_094_147), ("hrnet_w48", 14_155_587),
                                                ("cpn", 14_233_411)])
def test_parameter_counts_are_the_papers(backbone, expected):
    """methods.md §9: 14.09M (HRNet-W32), 14.16M (HRNet-W48), 14.23M (CPN) lifting parameters."""
    model = capf.ContextPoseFormer(capf.Config(feature_channels=capf.FEATURE_CHANNELS[backbone]))
    assert sum(p.numel() for p in model.parameters()) == expected


def test_sampling_reads_the_map_at_crop_coordinates():
    fmap = torch.arange(15.0).view(1, 1, 3, 5)  # rows y, columns x
    points = torch.tensor([[[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [0.5, -1.0]]])
    assert capf.sample_at(fmap, points)[0, :, 0].tolist() == pytest.approx([0.0, 14.0, 7.0, 3.0])


def test_offsets_start_on_small_circles_and_weights_sum_to_one():
    block = capf.DeformableBlock(32, 128, heads=4, samples=4, mlp_ratio=2.0)
    radii = block.offsets.bias.view(4, 4, 2).norm(dim=-1)
    assert torch.allclose(radii, torch.tensor([0.01, 0.02, 0.03, 0.04]).expand(4, 4))
    weights = block.weights(torch.randn(2, 17, 128)).view(2, 17, 4, 4).softmax(-1)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 17, 4))


def test_the_output_depends_on_the_features_near_each_joint_and_gradients_reach_every_part():
    torch.manual_seed(0)
    cfg = capf.Config()
    model = capf.ContextPoseFormer(cfg).eval()
    joints = torch.rand(2, 17, 2) * 2 - 1
    crop = torch.rand(2, 17, 2) * 1.6 - 0.8
    features = features_for(cfg, 2)
    out = model(joints, crop, features)
    assert out.shape == (2, 17, 3)
    # changing the finest map around sample 0's joints changes sample 0 only
    changed = [f.clone() for f in features]
    changed[0][0] += 5.0
    moved = model(joints, crop, changed)
    assert (moved[0] - out[0]).abs().max() > 1e-3 and torch.allclose(moved[1], out[1], atol=1e-5)

    model.train()
    model(joints, crop, features).square().mean().backward()
    for name in ("coordinate.weight", "embed.3.weight", "deformable.0.offsets.weight", "deformable.2.values.weight",
                 "level_blocks.0.qkv.weight", "joint_blocks.3.mlp.2.weight", "head.1.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_the_method_trains_the_lifting_network_on_a_frozen_backbone():
    """build() is the paper's method: 14,094,147 trainable parameters on a frozen HRNet-W32."""
    with torch.device("meta"):
        model = capf.build(capf.Config())
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 14_094_147
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_the_image_reaches_the_output_and_gradients_stop_at_the_backbone():
    torch.manual_seed(0)
    cfg = capf.Config(**capf.backbone_overrides(TINY_BACKBONE), level_blocks=1, joint_blocks=1)
    model = capf.build(cfg)
    capf.load_backbone(model, {k: v + 0.01 for k, v in model.backbone.state_dict().items()} | {
        k: v for k, v in model.backbone.state_dict().items() if k.endswith("num_batches_tracked")})
    model.train()
    assert not model.backbone.training  # its BatchNorm keeps the detector's statistics
    context = ImageContext(torch.randint(0, 255, (2, 3, 64, 48), dtype=torch.uint8),
                           torch.tensor([[0.0, 0.0, 0.6, 0.8], [0.1, 0.1, 0.5, 0.7]]))
    joints = torch.rand(2, 17, 2) * 0.4 - 0.2
    model(joints, context).square().mean().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.lifter.embed[0].weight.grad.abs().sum() > 0
    model.eval()
    out = model(joints, context)
    changed = ImageContext(context.images.clone(), context.boxes)
    changed.images[0] = 255 - changed.images[0]
    moved = model(joints, changed)
    assert (moved[0] - out[0]).abs().max() > 1e-4 and torch.allclose(moved[1], out[1], atol=1e-6)


def test_feature_channels_must_be_the_backbones():
    with pytest.raises(ValueError, match="not the backbone's branch widths"):
        capf.build(capf.Config(feature_channels=(8, 16, 32, 64)))
