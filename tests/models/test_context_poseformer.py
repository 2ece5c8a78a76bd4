"""Context-Aware PoseFormer's lifting network: its structure against an independent functional
re-statement of upstream's forward (methods.md §6.3), parameter counts, initialisation, sampling,
that context reaches the output, and the ablation without image context."""

import math

import pytest
import torch
import torch.nn.functional as F

from lifting.images.context import ImageContext
from lifting.models import context_poseformer as capf
from lifting.models.hrnet import HRNetConfig

TINY_BACKBONE = HRNetConfig(stem_width=8, layer1_blocks=1, width=4, stage_modules=(1, 1, 1), blocks=1)
#: A small lifting network (the blocks' counts and widths shrunk) for the tests that need no full size.
TINY = dict(width=32, context_blocks=2, level_blocks=1, joint_blocks=1)


def features_for(cfg: capf.Config, batch: int, size=(64, 48), dtype=torch.float32) -> list[torch.Tensor]:
    """Random maps at 1/4, 1/8, 1/16 and 1/32 of a 256x192 crop."""
    return [torch.randn(batch, c, size[0] >> k, size[1] >> k, dtype=dtype) for k, c in enumerate(cfg.feature_channels)]


def perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every parameter moved off its initial value: the zero-initialised attention
    weights, offsets and positional embedding made clearly non-zero, the LayerNorms' ones and
    zeros made random, so that no part of the forward is trivially an identity."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "attention_weights" in name or name == "position":
                scale = 0.3
            else:
                scale = 0.1 if "sampling_offsets.weight" in name else 0.05
            p.add_(torch.randn_like(p) * scale)
    return model


# --- an independent re-statement of upstream's forward (methods.md §6.3), functional ---------------------------

def _linear(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    return torch.matmul(x, sd[name + ".weight"].t()) + sd[name + ".bias"]


def _norm(sd: dict, name: str, x: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * sd[name + ".weight"] + sd[name + ".bias"]


def _mlp(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    hidden = _linear(sd, name + ".0", x)
    hidden = 0.5 * hidden * (1.0 + torch.erf(hidden / math.sqrt(2.0)))  # exact GELU
    return _linear(sd, name + ".2", hidden)


def _attention_block(sd: dict, name: str, x: torch.Tensor, heads: int) -> torch.Tensor:
    """timm's pre-norm ViT block (qkv bias, LayerNorm eps 1e-6) on (N, T, d), written per head."""
    n, t, d = x.shape
    qkv = _linear(sd, name + ".qkv", _norm(sd, name + ".norm1", x, 1e-6))
    q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
    hd = d // heads
    outs = []
    for h in range(heads):
        qh, kh, vh = (z[..., h * hd:(h + 1) * hd] for z in (q, k, v))
        att = torch.softmax(torch.einsum("ntc,nsc->nts", qh, kh) / math.sqrt(hd), dim=-1)
        outs.append(torch.einsum("nts,nsc->ntc", att, vh))
    x = x + _linear(sd, name + ".proj", torch.cat(outs, -1))
    return x + _mlp(sd, name + ".mlp", _norm(sd, name + ".norm2", x, 1e-6))


def _grid(fmap: torch.Tensor, points: torch.Tensor, padding: str) -> torch.Tensor:
    """(B, C, H, W) sampled at (B, J, S, 2) -> (B, J, S, C)."""
    return F.grid_sample(fmap, points, mode="bilinear", padding_mode=padding, align_corners=True).permute(0, 2, 3, 1)


def reference_forward(sd: dict, joints_2d, crop, maps, n_context: int, n_res: int, n_joint: int,
                      heads: int = 4, samples: int = 4, attention_heads: int = 8) -> torch.Tensor:
    """Upstream's PoseTransformer.forward, step by step from methods.md §6.3, on the weights of
    ``sd`` (shared by name with our module): (B, J, 2), (B, J, 2), [(B, C_l, H, W)] -> (B, J, 3)."""
    b, j, _ = joints_2d.shape
    # tokens: coordinate, then each level sampled (zero padding) at the joint and embedded; + pos embedding
    tokens = [_linear(sd, "coordinate", joints_2d)]
    for l, fmap in enumerate(maps):
        tokens.append(_linear(sd, f"embed.{l}", _grid(fmap, crop[:, :, None, :], "zeros")[:, :, 0]))
    tokens = [t + sd["position"][0, i] for i, t in enumerate(tokens)]  # each (B, J, c)
    for i in range(n_context):  # every block updates every level, with one set of projections
        p = f"context_blocks.{i}."
        new = [tokens[0]]
        for l, fmap in enumerate(maps):
            x = tokens[l + 1]
            query = _norm(sd, p + "norm1", x + tokens[0], 1e-5)
            logits = _linear(sd, p + "attention_weights", query)
            offsets = torch.tanh(_linear(sd, p + "sampling_offsets", query))
            per_head = []
            for h in range(heads):
                w = torch.softmax(logits[..., h * samples:(h + 1) * samples], dim=-1)  # (B, J, S)
                off = offsets[..., 2 * h * samples:2 * (h + 1) * samples].reshape(b, j, samples, 2)
                values = _linear(sd, p + f"embed_proj.{l}", _grid(fmap, crop[:, :, None, :] + off, "border"))
                per_head.append((w[..., None] * values).sum(2))  # (B, J, c / heads)
            x = x + torch.cat(per_head, -1)
            x = x + _mlp(sd, p + "mlp", _norm(sd, p + "norm2", x, 1e-5))
            new.append(x)
        tokens = new
    x = torch.stack(tokens, dim=2).reshape(b * j, len(tokens), -1)  # (B J, L + 1, c)
    for i in range(n_res):
        x = _attention_block(sd, f"level_blocks.{i}", x, attention_heads)
    x = x.reshape(b, j, -1)  # concatenated level-major to (L + 1) c
    for i in range(n_joint):
        x = _attention_block(sd, f"joint_blocks.{i}", x, attention_heads)
    return _linear(sd, "head.1", _norm(sd, "head.0", x, 1e-5))


def test_the_network_is_upstreams_structure():
    """Our module against the functional re-statement, full HRNet-W32 size, random weights and inputs
    (some joints outside the crop, offsets reaching beyond the maps' borders)."""
    torch.manual_seed(0)
    cfg = capf.Config()
    model = perturbed(capf.ContextPoseFormer(cfg).double()).eval()
    joints = torch.rand(2, 17, 2, dtype=torch.float64) * 2 - 1
    crop = torch.rand(2, 17, 2, dtype=torch.float64) * 2.4 - 1.2
    features = features_for(cfg, 2, dtype=torch.float64)
    with torch.no_grad():
        ours = model(joints, crop, features)
        expected = reference_forward(model.state_dict(), joints, crop, features, 4, 4, 4)
    assert ours.shape == expected.shape == (2, 17, 3)
    assert expected.std() > 0.1
    # random maps make the output very sensitive to rounding (a 1e-15 shift of the crop moves it by
    # ~1e-8); a structural mistake moves it by ~1, a LayerNorm eps of 1e-5 for 1e-6 by ~1e-5
    torch.testing.assert_close(ours, expected, rtol=1e-7, atol=1e-7)


def test_without_image_context_the_network_is_its_zero_map_self():
    """image_context=False: the re-statement with all-zero maps, and our network's own output on zero maps."""
    torch.manual_seed(1)
    cfg = capf.Config(**TINY)
    blind = perturbed(capf.ContextPoseFormer(capf.Config(**TINY, image_context=False)).double()).eval()
    seeing = capf.ContextPoseFormer(cfg).double().eval()
    seeing.load_state_dict(blind.state_dict())
    joints = torch.rand(2, 17, 2, dtype=torch.float64) * 2 - 1
    crop = torch.rand(2, 17, 2, dtype=torch.float64) * 2 - 1
    zeros = [torch.zeros_like(f) for f in features_for(cfg, 2, dtype=torch.float64)]
    with torch.no_grad():
        out = blind(joints, None, None)
        torch.testing.assert_close(out, reference_forward(blind.state_dict(), joints, crop, zeros, 2, 1, 1))
        torch.testing.assert_close(out, seeing(joints, crop, zeros))


@pytest.mark.parametrize("backbone, expected", [("hrnet_w32", 14_094_147), ("hrnet_w48", 14_155_587),
                                                ("cpn", 14_233_411)])
@pytest.mark.parametrize("image_context", [True, False])
def test_parameter_counts_are_the_papers(backbone, expected, image_context):
    """methods.md §9: 14.09M (HRNet-W32), 14.16M (HRNet-W48), 14.23M (CPN) lifting parameters, with or
    without image context."""
    with torch.device("meta"):
        model = capf.ContextPoseFormer(capf.Config(feature_channels=capf.FEATURE_CHANNELS[backbone],
                                                   image_context=image_context))
    assert sum(p.numel() for p in model.parameters()) == expected


def test_the_deformable_blocks_hold_upstreams_parameters():
    """Per block: weights 128x16+16, offsets 128x32+32, two LayerNorms, the ratio-2 MLP and one
    Linear(C_l -> 32) per level (shared by the heads); 352,448 for the four blocks on HRNet-W32."""
    with torch.device("meta"):
        model = capf.ContextPoseFormer(capf.Config())
    per_block = (128 * 16 + 16 + 128 * 32 + 32 + 2 * 2 * 128 + 128 * 256 + 256 + 256 * 128 + 128
                 + sum(c * 32 + 32 for c in (32, 64, 128, 256)))
    assert len(model.context_blocks) == 4
    assert [sum(p.numel() for p in block.parameters()) for block in model.context_blocks] == [per_block] * 4
    assert 4 * per_block == 352_448
    assert [tuple(p.weight.shape) for p in model.context_blocks[0].embed_proj] == [(32, c) for c in (32, 64, 128, 256)]


def test_initialisation_and_layer_norms_are_upstreams():
    model = capf.ContextPoseFormer(capf.Config(**(TINY | {"width": 128})))
    assert torch.equal(model.position, torch.zeros(1, 5, 17, 128))
    for block in model.context_blocks:
        assert not block.attention_weights.weight.any() and not block.attention_weights.bias.any()
        assert not block.sampling_offsets.weight.any()
        bias = block.sampling_offsets.bias.view(4, 4, 2)  # (head, sample, xy)
        torch.testing.assert_close(bias.norm(dim=-1), torch.tensor([0.01, 0.02, 0.03, 0.04]).expand(4, 4))
        directions = bias / bias.norm(dim=-1, keepdim=True)  # head h along angle h pi / 2, all its samples
        expected = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])[:, None].expand(4, 4, 2)
        torch.testing.assert_close(directions, expected, atol=1e-6, rtol=0)
        assert block.norm1.eps == block.norm2.eps == 1e-5
    for block in [*model.level_blocks, *model.joint_blocks]:
        assert block.norm1.eps == block.norm2.eps == 1e-6
    assert model.head[0].eps == 1e-5
    assert [b.drop.p for b in capf.ContextPoseFormer(capf.Config(width=32)).context_blocks] == pytest.approx(
        torch.linspace(0, 0.2, 4).tolist())


def test_sampling_reads_the_map_at_crop_coordinates():
    fmap = torch.arange(15.0).view(1, 1, 3, 5)  # rows y, columns x
    points = torch.tensor([[[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [0.5, -1.0]]])
    assert capf.sample_at(fmap, points)[0, :, 0].tolist() == pytest.approx([0.0, 14.0, 7.0, 3.0])


def test_the_sample_weights_start_equal_and_sum_to_one():
    block = capf.DeformableBlock((8, 16, 32, 64), 32, heads=4, samples=4, mlp_ratio=2.0)
    logits = block.attention_weights(torch.randn(2, 4, 17, 32)).view(2, 4, 17, 4, 4)
    assert torch.equal(logits.softmax(-1), torch.full((2, 4, 17, 4, 4), 0.25))
    with torch.no_grad():
        block.attention_weights.weight.normal_()
    weights = block.attention_weights(torch.randn(2, 4, 17, 32)).view(2, 4, 17, 4, 4).softmax(-1)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 17, 4))


def test_the_output_depends_on_the_features_near_each_joint_and_gradients_reach_every_part():
    torch.manual_seed(0)
    cfg = capf.Config(**TINY)
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
    for name in ("coordinate.weight", "embed.3.weight", "position", "context_blocks.0.attention_weights.weight",
                 "context_blocks.1.sampling_offsets.weight", "context_blocks.0.embed_proj.2.weight",
                 "context_blocks.1.mlp.2.weight", "level_blocks.0.qkv.weight", "joint_blocks.0.mlp.2.weight",
                 "head.1.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_without_image_context_the_output_ignores_the_maps_and_gradients_reach_the_coordinates():
    torch.manual_seed(2)
    cfg = capf.Config(**TINY, image_context=False)
    model = perturbed(capf.ContextPoseFormer(cfg)).eval()
    joints = torch.rand(2, 17, 2) * 2 - 1
    crop = torch.rand(2, 17, 2) * 2 - 1
    out = model(joints, None, None)
    for _ in range(2):
        assert torch.equal(model(joints, crop, features_for(cfg, 2)), out)
    assert torch.equal(model(joints, crop.flip(1), features_for(cfg, 2)), out)
    assert (model(joints.flip(1), None, None) - out).abs().max() > 1e-3

    model.train()
    model(joints, None, None).square().mean().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    for name in ("coordinate.weight", "embed.3.bias", "position", "context_blocks.1.embed_proj.0.bias",
                 "context_blocks.0.mlp.0.weight", "level_blocks.0.qkv.weight", "joint_blocks.0.proj.weight",
                 "head.1.weight"):
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
    for name in ("embed.0.weight", "context_blocks.0.attention_weights.weight",
                 "context_blocks.1.sampling_offsets.bias", "context_blocks.0.embed_proj.3.weight"):  # image parts: unused
        assert grads[name] is None or not grads[name].any(), name


def test_the_method_trains_the_lifting_network_on_a_frozen_backbone():
    """build() is the paper's method: 14,094,147 trainable parameters on a frozen HRNet-W32."""
    with torch.device("meta"):
        model = capf.build(capf.Config())
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 14_094_147
    assert not any(p.requires_grad for p in model.backbone.parameters())


def _tiny_method(**overrides) -> capf.ContextAwareModel:
    cfg = capf.Config(**capf.backbone_overrides(TINY_BACKBONE), **(TINY | overrides))
    model = capf.build(cfg)
    model.initialise({k: v + 0.01 for k, v in model.backbone.state_dict().items()} | {
        k: v for k, v in model.backbone.state_dict().items() if k.endswith("num_batches_tracked")})
    return model


def _contexts() -> tuple[ImageContext, ImageContext]:
    """Two batches of two crops that differ in sample 0's image only."""
    context = ImageContext(torch.randint(0, 255, (2, 3, 64, 48), dtype=torch.uint8),
                           torch.tensor([[0.0, 0.0, 0.6, 0.8], [0.1, 0.1, 0.5, 0.7]]))
    changed = ImageContext(context.images.clone(), context.boxes)
    changed.images[0] = 255 - changed.images[0]
    return context, changed


def test_the_image_reaches_the_output_and_gradients_stop_at_the_backbone():
    torch.manual_seed(0)
    model = _tiny_method()
    model.train()
    assert not model.backbone.training  # its BatchNorm keeps the detector's statistics
    context, changed = _contexts()
    joints = torch.rand(2, 17, 2) * 0.4 - 0.2
    model(joints, context).square().mean().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.lifter.embed[0].weight.grad.abs().sum() > 0
    model.eval()
    out = model(joints, context)
    moved = model(joints, changed)
    assert (moved[0] - out[0]).abs().max() > 1e-4 and torch.allclose(moved[1], out[1], atol=1e-6)


def test_without_image_context_the_backbone_never_runs(monkeypatch):
    torch.manual_seed(0)
    model = _tiny_method(image_context=False)

    def refuse(*args, **kwargs):
        raise AssertionError("the backbone ran")

    monkeypatch.setattr(model.backbone, "forward", refuse)
    monkeypatch.setattr(model.backbone, "features", refuse)
    context, changed = _contexts()
    joints = torch.rand(2, 17, 2) * 0.4 - 0.2
    model.train()
    model(joints, context).square().mean().backward()
    assert model.lifter.coordinate.weight.grad.abs().sum() > 0
    model.eval()
    out = model(joints, context)
    assert torch.equal(model(joints, changed), out) and torch.equal(model(joints, None), out)
    assert sum(p.numel() for p in model.lifter.parameters()) == sum(
        p.numel() for p in _tiny_method().lifter.parameters())


def test_feature_channels_must_be_the_backbones():
    with pytest.raises(ValueError, match="not the backbone's branch widths"):
        capf.build(capf.Config(feature_channels=(8, 16, 32, 64)))
