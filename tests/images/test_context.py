"""The image context of a sample: crop coordinates, mirroring with the 2D, row selection."""

import numpy as np
import pandas as pd
import pytest
import torch

from lifting.codec import Codec
from lifting.errors import DataError
from lifting.images.context import ImageContext, context_rows, screen_boxes
from lifting.models.spec import InputSpec


def test_screen_boxes_use_the_2d_normalisation():
    """A 1000 x 1002 image: x / w * 2 - 1, y / w * 2 - h / w, sizes * 2 / w."""
    boxes = screen_boxes(np.array([[500.0, 501.0], [0.0, 0.0]]), np.array([[300.0, 400.0], [100.0, 50.0]]),
                         np.array([[1000, 1002], [1000, 1002]]))
    assert boxes == pytest.approx(np.array([[0.0, 0.0, 0.6, 0.8], [-1.0, -1.002, 0.2, 0.1]]))


def test_crop_coordinates_are_minus_one_and_one_at_the_box_edges():
    context = ImageContext(torch.zeros(1, 3, 4, 3, dtype=torch.uint8), torch.tensor([[0.1, -0.2, 0.4, 0.8]]))
    points = torch.tensor([[[-0.1, -0.6], [0.3, 0.2], [0.1, -0.2]]])
    assert context.crop_coordinates(points)[0].numpy() == pytest.approx(np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))


def test_mirroring_moves_image_box_and_2d_together():
    """A joint's position in the mirrored crop is the mirror image of its position in the crop."""
    torch.manual_seed(0)
    images = torch.randint(0, 255, (2, 3, 8, 6), dtype=torch.uint8)
    context = ImageContext(images, torch.tensor([[0.3, 0.1, 0.5, 0.7], [-0.2, 0.0, 0.3, 0.4]]))
    codec = Codec(InputSpec("h36m17", "screen", "metres"), np.zeros((17, 2)), np.ones((17, 2)),
                  np.zeros((17, 3)), np.ones((17, 3)))
    points = torch.rand(2, 17, 2) * 0.2
    mirrored = context.mirrored()
    before, after = context.crop_coordinates(points), mirrored.crop_coordinates(codec.mirror_inputs(points))
    expected = codec.mirror_inputs(before)
    assert torch.allclose(after, expected, atol=1e-6)
    assert torch.equal(mirrored.images[..., 0], images[..., -1])
    mixed = context.where(torch.tensor([True, False]), mirrored)
    assert torch.equal(mixed.images[0], mirrored.images[0]) and torch.equal(mixed.images[1], images[1])


def test_rows_are_found_by_view_keys_and_a_missing_view_is_one_clear_error():
    keys = pd.DataFrame({"subject": ["S1", "S1", "S9"], "sequence": ["walk", "walk", "run"],
                         "camera": ["54138969", "55011271", "54138969"], "frame": [0, 0, 3]})
    meta = pd.DataFrame({"subject": ["S9", "S1"], "action": ["Walking", "Walking"], "sequence": ["run", "walk"],
                         "camera": ["54138969", "55011271"], "frame": [3, 0]})
    assert context_rows(keys, meta, "views.parquet").tolist() == [2, 1]
    meta.loc[0, "frame"] = 4
    with pytest.raises(DataError, match="no image for 1 of the 2 samples.*dvc repro render"):
        context_rows(keys, meta, "views.parquet")
