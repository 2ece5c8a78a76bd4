"""Martinez simple baseline: paper parameter count, output contract, one training step."""

from __future__ import annotations

import pytest
import torch

from lifting.models import simple_baseline as sb


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_configuration_has_the_published_parameter_count():
    # 32 inputs (16 joints, no nose) -> 48 outputs (16 non-root joints): the paper's 4.29M.
    assert _num_params(sb.build(sb.Config(), 17)) == 4_291_632
    assert sb.PAPER["gt"].config == sb.PAPER["detected"].config == sb.Config(drop_nose_input=True)
    # The experiment that also feeds the nose: two more input columns into a 1024-wide layer.
    assert _num_params(sb.build(sb.Config(drop_nose_input=False), 17)) == 4_291_632 + 2 * 1024


def test_paper_schedule_and_input_spec():
    s = sb.PAPER_SCHEDULE
    assert (s.optimizer, s.lr, s.lr_decay, s.lr_decay_every, s.lr_decay_unit) == (
        "adam", 1e-3, 0.96, 100_000, "step")
    assert (s.batch_size, s.epochs, s.loss, s.grad_clip) == (64, 200, "mse", 1.0)
    assert (sb.INPUT_SPEC.joint_set, sb.INPUT_SPEC.input_norm, sb.INPUT_SPEC.target) == (
        "h36m17", "zscore", "zscore")


@pytest.mark.parametrize("num_joints,drop_nose", [(17, False), (17, True), (16, False)])
def test_forward_shape_and_zero_root(num_joints, drop_nose):
    torch.manual_seed(0)
    model = sb.build(sb.Config(hidden=64, drop_nose_input=drop_nose), num_joints)
    out = model(torch.randn(8, num_joints, 2))
    assert out.shape == (8, num_joints, 3)
    assert torch.equal(out[:, 0], torch.zeros(8, 3))
    assert out[:, 1:].abs().sum() > 0


def test_nose_is_ignored_only_when_dropped():
    torch.manual_seed(0)
    x = torch.randn(4, 17, 2)
    x_moved = x.clone()
    x_moved[:, 9] += 5.0
    for drop, same in ((True, True), (False, False)):
        model = sb.build(sb.Config(hidden=32, drop_nose_input=drop), 17).eval()
        assert torch.equal(model(x), model(x_moved)) is same


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="17-joint"):
        sb.build(sb.Config(drop_nose_input=True), 16)
    with pytest.raises(ValueError, match="expected"):
        sb.build(sb.Config(hidden=16), 17)(torch.randn(2, 16, 2))


def test_one_adam_step_lowers_the_loss():
    torch.manual_seed(0)
    model = sb.build(sb.Config(hidden=128), 17).train()
    x, y = torch.randn(32, 17, 2), torch.randn(32, 17, 3)
    y[:, 0] = 0.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_on_batch() -> torch.Tensor:
        torch.manual_seed(1)  # same dropout masks for the before/after comparison
        return torch.nn.functional.mse_loss(model(x), y)

    before = loss_on_batch()
    opt.zero_grad()
    before.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        after = loss_on_batch()
    assert after.item() < before.item() - 1e-3


def test_eval_mode_is_deterministic():
    torch.manual_seed(0)
    model = sb.build(sb.Config(hidden=64), 17)
    model.train()
    model(torch.randn(16, 17, 2))  # move the BatchNorm running statistics off their init
    model.eval()
    x = torch.randn(5, 17, 2)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        # no batch coupling in eval: a sample's output does not depend on its batch-mates
        torch.testing.assert_close(model(x[:1]), model(x)[:1])
