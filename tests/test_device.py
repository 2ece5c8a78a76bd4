"""The device and precision helpers: bf16 autocast only where the CPU runs it at speed."""

import pytest
import torch

from lifting import device


@pytest.mark.parametrize("fast", [True, False])
def test_cpu_bf16_is_used_only_where_the_cpu_has_fast_bf16(monkeypatch, caplog, fast):
    """An AVX2-only CPU emulates bf16 ~60x slower than fp32: a budget's bf16_cpu then trains in
    fp32, says so, and autocast stays off; where oneDNN has bf16 kernels both are on."""
    monkeypatch.setattr(device, "fast_cpu_bf16", lambda: fast)
    cpu = torch.device("cpu")
    with caplog.at_level("WARNING", logger="lifting.device"):
        assert device.bf16_cpu_for(True, "simple_baseline-gt") is fast
    assert ("simple_baseline-gt: bf16 autocast on the CPU was asked for" in caplog.text) is not fast
    assert device.bf16_cpu_for(False, "simple_baseline-gt") is False
    with device.autocast(cpu, bf16_cpu=True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == (torch.bfloat16 if fast else torch.float32)
    with device.autocast(cpu, bf16_cpu=False):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
