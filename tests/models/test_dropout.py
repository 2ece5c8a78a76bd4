"""Our dropout layer computes the papers' dropout: Bernoulli keep-mask, inverted scaling, identity at eval."""

import pytest
import torch

from lifting.models.dropout import Dropout


def test_dropout_zeros_a_share_p_and_scales_the_rest_by_one_over_keep():
    torch.manual_seed(0)
    layer = Dropout(0.3).train()
    x = torch.ones(400, 1000, requires_grad=True)
    y = layer(x)
    dropped = (y == 0).float().mean().item()
    assert dropped == pytest.approx(0.3, abs=0.005)  # 400k draws: std of the share ~0.0007
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.7))
    y.sum().backward()  # d y / d x = mask / (1 - p)
    assert torch.equal(x.grad, y.detach())


def test_dropout_passes_the_input_unchanged_in_eval_and_at_zero():
    x = torch.randn(8, 16)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x


def test_dropout_keeps_the_dtype_under_bf16():
    x = torch.randn(64, 32, dtype=torch.bfloat16)
    assert Dropout(0.5).train()(x).dtype == torch.bfloat16


def test_dropout_refuses_a_probability_outside_zero_to_one():
    with pytest.raises(ValueError, match=r"in \[0, 1\), got 1.5"):
        Dropout(1.5)
