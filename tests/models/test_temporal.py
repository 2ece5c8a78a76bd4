"""VideoPose3D's temporal network in both forms, and Pose3D-RIE: parameter counts and equivalences."""

import pytest
import torch

from lifting.models import rie, videopose3d
from lifting.models.tcn import TemporalConvNet


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _with_running_stats(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode with non-trivial BatchNorm statistics, so the test sees them applied."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


@pytest.mark.parametrize("widths", [(3, 3, 3), (3, 3, 3, 3, 3), (5, 3)])
def test_strided_and_dilated_forms_agree_on_every_window(widths):
    torch.manual_seed(0)
    net = _with_running_stats(TemporalConvNet(6, 4, widths, channels=8, dropout=0.25, negative_slope=0.2))
    field = net.receptive_field
    sequence = torch.randn(2, 6, field + 9)
    with torch.no_grad():
        dilated = net(sequence, strided=False)  # (2, 4, 10)
        windows = sequence.unfold(2, field, 1).permute(0, 2, 1, 3).reshape(-1, 6, field)
        strided = net(windows, strided=True).view(2, 10, 4).transpose(1, 2)
    assert dilated.shape == (2, 4, 10)
    assert torch.allclose(dilated, strided, atol=1e-5)


def test_videopose3d_has_the_papers_parameter_count_and_receptive_field():
    model = videopose3d.VideoPose3D()
    assert _params(model) == 16_952_371  # methods.md §7.3: ~16.95M
    assert model.receptive_field == 243
    with pytest.raises(ValueError, match="windows of 243 frames"):
        model(torch.zeros(1, 242, 17, 2))


@pytest.mark.parametrize("latent, stage, expected", [(256, 1, 23_385_651), (256, 3, 41_783_091), (512, 3, 52_861_491)])
def test_rie_parameter_counts_are_the_papers(latent, stage, expected):
    # methods.md §4.2: stage 1 (latent 256) 23.4M, stages 2-3: 41.8M (latent 256, GT) and 52.9M (512, CPN)
    assert _params(rie.RIE(rie.Config(latent=latent, stage=stage))) == expected


def _small_rie(stage: int = 3) -> rie.RIE:
    torch.manual_seed(1)
    return _with_running_stats(rie.RIE(rie.Config(latent=8, channels=8, filter_widths=(3, 3), fc_hidden=16,
                                                  stage=stage)))


def _small_videopose3d() -> videopose3d.VideoPose3D:
    torch.manual_seed(0)
    return _with_running_stats(videopose3d.VideoPose3D(videopose3d.Config(filter_widths=(3, 3), channels=16)))


@pytest.mark.parametrize("small_model", [_small_videopose3d, _small_rie])
def test_sequence_form_is_the_window_form_frame_by_frame(small_model):
    model = small_model()
    sequence = torch.randn(2, 9 + 6, 17, 2)
    with torch.no_grad():
        whole = model.forward_sequence(sequence)
        one_by_one = torch.stack([model(sequence[:, t:t + 9]) for t in range(7)], dim=1)
    assert whole.shape == (2, 7, 17, 3) and torch.allclose(whole, one_by_one, atol=1e-5)


def test_rie_puts_each_parts_decoder_on_its_own_joints():
    model = _small_rie(stage=1)
    x = torch.randn(3, 9, 17, 2)
    with torch.no_grad():
        before = model(x)
        model.decoders["left_arm"].fc_out.bias.add_(1.0)
        moved = (model(x) - before).abs().amax(dim=(0, 2)) > 0.5
    assert moved.nonzero().flatten().tolist() == list(rie.PARTS["left_arm"]) == [11, 12, 13]


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    model = videopose3d.VideoPose3D(videopose3d.Config(filter_widths=(3, 3), channels=32, dropout=0.0))
    x, y = torch.randn(64, 9, 17, 2), torch.randn(64, 17, 3)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        optimiser.zero_grad()
        loss = torch.linalg.norm(model(x) - y, dim=-1).mean()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_stage_two_takes_and_freezes_the_encoders_and_stage_three_takes_everything():
    first, second, third = _small_rie(1), _small_rie(2), _small_rie(3)
    second.initialise(first.state_dict())
    for name, tensor in second.state_dict().items():
        if name.startswith(("local.", "global_encoder.")):
            assert torch.equal(tensor, first.state_dict()[name]), name
    frozen = {n for n, p in second.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in second.named_parameters() if n.startswith(("local.", "global_encoder."))}
    assert any(n.startswith("fusion.") for n, p in second.named_parameters() if p.requires_grad)
    third.initialise(second.state_dict())
    assert all(torch.equal(t, second.state_dict()[n]) for n, t in third.state_dict().items())
    assert all(p.requires_grad for p in third.parameters())
    with pytest.raises(ValueError, match="from scratch"):
        _small_rie(1).initialise(first.state_dict())
