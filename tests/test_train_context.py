"""The training loop and prediction hand each sample's image context to a method that looks at it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lifting import train
from lifting.codec import Codec
from lifting.images.context import ImageContext
from lifting.models.base import Lifter
from lifting.models.spec import InputSpec, Schedule

SPEC = InputSpec("h36m17", "screen", "metres", flip_test=True, train_flip=True, images=True)
CODEC = Codec(SPEC, np.zeros((17, 2)), np.ones((17, 2)), np.zeros((17, 3)), np.ones((17, 3)))


class Brightness(Lifter):
    """Every joint at y = z = ``scale * mean brightness`` (metres) plus the 2D's mean, x = 0: only the
    image tells it the target (and a mirrored sample, its target and its crop have the same)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(()))

    def forward(self, inputs, context):
        brightness = context.images.float().mean((1, 2, 3)) / 255.0
        yz = (self.scale * brightness + inputs.mean((1, 2)))[:, None, None].expand(-1, 17, 2)
        return torch.cat([torch.zeros_like(yz[..., :1]), yz], dim=-1)


def contexts(count: int, seed: int = 0) -> tuple[ImageContext, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    levels = torch.randint(0, 256, (count, 1, 1, 1), generator=generator)
    images = (levels + torch.randint(-3, 4, (count, 3, 8, 6), generator=generator)).clamp(0, 255).to(torch.uint8)
    return ImageContext(images, torch.rand(count, 4, generator=generator) + 0.5), images.float().mean((1, 2, 3)) / 255


def test_the_image_reaches_the_loss(tmp_path):
    """Targets = 2 m x brightness: the loop fits the scale only if every batch brings its own crops."""
    context, brightness = contexts(256)
    targets = (2000.0 * brightness)[:, None, None].expand(-1, 17, 3).contiguous()
    targets[..., 0] = 0.0
    arrays = train.TrainArrays(torch.zeros(256, 17, 2), targets, torch.zeros(0, 17, 2), torch.zeros(0, 17, 3),
                               context=context, val_context=context.take(slice(0, 0)))
    schedule = Schedule(optimizer="adam", lr=0.05, lr_decay=1.0, lr_decay_every=1, lr_decay_unit="epoch",
                        batch_size=32, epochs=30, loss="mse")
    model = Brightness()
    train.fit(model, CODEC, arrays, schedule, seed=0, checkpoint_path=tmp_path / "ck.pt", log_path=tmp_path / "log.csv",
              snapshot={}, progress=False)
    assert float(model.scale) == pytest.approx(2.0, abs=0.05)


def test_flip_test_averages_the_mirrored_sample_with_its_mirrored_crop():
    class Spy(nn.Module):
        """Records what it is given; the output encodes the crop's box centre and the first joint's x."""

        def __init__(self):
            super().__init__()
            self.calls = []

        def forward(self, inputs, context):
            self.calls.append((inputs.clone(), context))
            out = torch.zeros(len(inputs), 17, 3)
            out[:, :, 0] = context.boxes[:, :1] + inputs[:, :1, 0]
            return out

    context, _ = contexts(3)
    inputs = torch.rand(3, 17, 2)
    spy = Spy()
    train.predict(spy, CODEC, inputs, flip_test=True, context=context)
    (plain_x, plain_context), (mirrored_x, mirrored_context) = spy.calls
    assert torch.equal(plain_context.images, context.images) and torch.equal(plain_x, inputs)
    assert torch.equal(mirrored_context.images, context.images.flip(-1))
    assert torch.equal(mirrored_context.boxes[:, 0], -context.boxes[:, 0])
    assert torch.equal(mirrored_x, CODEC.mirror_inputs(inputs))
