"""CA-PF's crop: known-answer box, exact aspect ratio, crop <-> image round trip."""

import numpy as np
import pytest

from lifting.geometry import Camera
from lifting.images.crop import crop_boxes, from_crop, to_crop


def simple_camera(focal=1000.0, centre=(500.0, 500.0)) -> Camera:
    return Camera("test", 1000, 1000, (focal, focal), centre, (0.0, 0.0, 0.0), (0.0, 0.0),
                  (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0))


def test_known_answer_box_on_the_optical_axis():
    # root at 5 m on the axis: corners at x = ±1000 -> ±200 px, y = -900/+1100 -> -180/+220 px.
    centres, sizes = crop_boxes(np.array([[0.0, 0.0, 5000.0]]), simple_camera(), width=48, height=64)
    # box 400 x 400 px heightened to 3:4 about its centre (500, 520): 400 x 533.33 px.
    assert centres[0] == pytest.approx([500.0, 520.0])
    assert sizes[0] == pytest.approx([400.0, 400.0 * 4 / 3])
    # a wide crop widens the box instead
    _, wide = crop_boxes(np.array([[0.0, 0.0, 5000.0]]), simple_camera(), width=64, height=32)
    assert wide[0] == pytest.approx([800.0, 400.0])


def test_aspect_ratio_is_exact():
    rng = np.random.default_rng(0)
    roots = np.column_stack([rng.uniform(-1500, 1500, (50, 2)), rng.uniform(3000, 7000, 50)])
    for width, height in ((48, 64), (192, 256), (64, 48), (33, 33)):
        _, sizes = crop_boxes(roots, simple_camera(1145.0, (512.0, 515.0)), width, height)
        assert np.allclose(sizes[:, 0] / sizes[:, 1], width / height, rtol=1e-12)


def test_round_trip_and_convention():
    rng = np.random.default_rng(1)
    centres, sizes = rng.uniform(200, 800, (5, 2)), rng.uniform(100, 500, (5, 2))
    pixels = rng.uniform(0, 1000, (5, 17, 2))
    crop = to_crop(pixels, centres, sizes, 48, 64)
    assert np.allclose(from_crop(crop, centres, sizes, 48, 64), pixels)
    corners = np.stack([centres - sizes / 2, centres + sizes / 2], axis=1)
    assert np.allclose(to_crop(corners, centres, sizes, 48, 64), [[0, 0], [48, 64]])
