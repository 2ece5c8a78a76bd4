"""Context-Aware PoseFormer's lifting network: parameter counts, sampling, and that context reaches the output."""

import pytest
import torch

from lifting.models import context_poseformer as capf


def features_for(cfg: capf.Config, batch: int, size=(64, 48)) -> list[torch.Tensor]:
    """Random maps at 1/4, 1/8, 1/16 and 1/32 of a 256x192 crop."""
    return [torch.randn(batch, c, size[0] >> k, size[1] >> k) for k, c in enumerate(cfg.feature_channels)]


@pytest.mark.parametrize("backbone, expected", [("hrnet_w32", 14_094_147), ("hrnet_w48", 14_155_587),
                                                ("cpn", 14_233_411)])
def test_parameter_counts_are_the_papers(backbone, expected):
    """methods.md §9: 14.09M (HRNet-W32), 14.16M (HRNet-W48), 14.23M (CPN) lifting parameters."""
    model = capf.build(capf.Config(feature_channels=capf.FEATURE_CHANNELS[backbone]))
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
    model = capf.build(cfg).eval()
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
