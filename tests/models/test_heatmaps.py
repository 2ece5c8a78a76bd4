"""Heatmap targets and decoding: known answers in heatmap pixels (pixel-centre convention)."""

import math

import pytest
import torch

from lifting.models.heatmaps import decode_heatmaps, gaussian_heatmaps


def test_target_is_an_unnormalised_gaussian_of_peak_one_at_a_pixel_centre():
    maps = gaussian_heatmaps(torch.tensor([[[5.0, 3.0]]]), (8, 12), sigma=2.0)
    assert maps.shape == (1, 1, 8, 12)
    assert maps[0, 0, 3, 5] == 1.0 and maps.max() == 1.0
    assert maps[0, 0, 3, 7].item() == pytest.approx(math.exp(-4 / 8))  # two columns right
    assert maps[0, 0, 4, 6].item() == pytest.approx(math.exp(-2 / 8))  # one down, one right


def test_unannotated_joints_get_empty_maps():
    maps = gaussian_heatmaps(torch.tensor([[[float("nan"), 2.0], [4.0, 4.0]]]), (8, 8), sigma=1.0)
    assert maps[0, 0].abs().sum() == 0 and maps[0, 1].max() == 1.0


def test_subpixel_gaussians_decode_back_to_their_centres():
    torch.manual_seed(0)
    h, w = 64, 48
    centres = torch.rand(3, 17, 2) * torch.tensor([w - 6.0, h - 6.0]) + 3  # away from the border
    coords, confidence = decode_heatmaps(gaussian_heatmaps(centres, (h, w), sigma=2.0))
    assert coords.shape == (3, 17, 2) and confidence.shape == (3, 17)
    assert (coords - centres).abs().max() < 0.1
    # Confidence is the peak pixel's value: the Gaussian at the argmax, which is the rounded centre.
    rounded = centres.round()
    expected = torch.exp(-((rounded - centres) ** 2).sum(-1) / 8)
    assert torch.allclose(confidence, expected, atol=1e-6)


def test_a_gaussian_with_another_sigma_and_a_scale_decodes_too():
    centre = torch.tensor([[[10.37, 7.81]]])
    coords, confidence = decode_heatmaps(0.6 * gaussian_heatmaps(centre, (16, 20), sigma=1.5))
    assert (coords - centre).abs().max() < 0.1
    assert confidence.item() == pytest.approx(0.6 * math.exp(-(0.37**2 + 0.19**2) / (2 * 1.5**2)), rel=1e-5)


def test_peaks_on_the_border_or_in_empty_maps_stay_on_the_pixel_centre():
    maps = torch.zeros(1, 2, 6, 5)
    maps[0, 0, 0, 4] = 0.9  # top-right corner
    coords, confidence = decode_heatmaps(maps)
    assert coords[0, 0].tolist() == [4.0, 0.0] and confidence[0, 0].item() == pytest.approx(0.9)
    assert coords[0, 1].tolist() == [0.0, 0.0] and confidence[0, 1] == 0.0


def test_an_integer_peak_decodes_exactly_and_the_offset_is_bounded():
    maps = gaussian_heatmaps(torch.tensor([[[6.0, 2.0]]]), (10, 10), sigma=2.0)
    coords, confidence = decode_heatmaps(maps)
    assert torch.allclose(coords, torch.tensor([[[6.0, 2.0]]]), atol=1e-4) and confidence.item() == 1.0
    spike = torch.zeros(1, 1, 5, 5)
    spike[0, 0, 2, 2], spike[0, 0, 2, 3] = 1.0, 0.999  # nearly flat: the Newton step is clamped
    coords, _ = decode_heatmaps(spike)
    assert 2.0 <= coords[0, 0, 0].item() <= 2.5 and coords[0, 0, 1].item() == pytest.approx(2.0)
