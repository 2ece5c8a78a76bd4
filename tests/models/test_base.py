"""The Lifter interface: every trained method's network is one, and its defaults do what the loop expects."""

from __future__ import annotations

import typing

import pytest
import torch

from lifting.models import METHOD_NAMES, method_module
from lifting.models.base import Lifter, pose_loss
from lifting.models.spec import Schedule
from lifting.runner import is_lookup

TRAINED = [method for method in METHOD_NAMES if not is_lookup(method)]


@pytest.mark.parametrize("method", TRAINED)
def test_every_trained_method_builds_a_lifter_that_says_whether_it_is_temporal(method):
    module = method_module(method)
    network = typing.get_type_hints(module.build)["return"]
    assert issubclass(network, Lifter), network
    assert network.temporal == any(setup.input_spec.temporal for setup in module.PAPER.values())
    assert hasattr(network, "forward_sequence") == network.temporal


class _Linear(Lifter):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def test_the_default_loss_is_the_papers_pose_loss_on_the_output_and_the_hooks_change_nothing():
    torch.manual_seed(0)
    model, x, y = _Linear(), torch.randn(4, 17, 2), torch.randn(4, 17, 3)
    schedule = Schedule(optimizer="adam", lr=1e-3, lr_decay=1.0, lr_decay_every=1, lr_decay_unit="epoch",
                        batch_size=4, epochs=1, loss="mpjpe", grad_clip=None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.start_epoch(0, 10)
    model.set_epoch_progress(0.5)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    expected = torch.linalg.vector_norm(model(x) - y, dim=-1).mean()
    assert torch.allclose(model.loss(x, y, schedule), expected)
    assert torch.allclose(pose_loss(model(x), y, schedule), expected)


def test_a_network_that_starts_from_scratch_refuses_initial_weights():
    model = _Linear()
    with pytest.raises(ValueError, match="_Linear starts from scratch"):
        model.initialise(model.state_dict())
