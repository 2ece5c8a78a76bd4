"""The codec: z-scored or screen inputs, z-scored or metre targets, left/right mirroring (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lifting.codec import Codec
from lifting.models.spec import InputSpec
from lifting.skeleton import H36M16, H36M17


def stats(joints: int = 17) -> dict[str, np.ndarray]:
    """Per-coordinate training statistics, different for every joint and coordinate."""
    rng = np.random.default_rng(0)
    return {"input_mean": rng.normal(0.0, 0.3, (joints, 2)), "input_std": rng.uniform(0.05, 0.4, (joints, 2)),
            "target_mean": rng.normal(0.0, 200.0, (joints, 3)), "target_std": rng.uniform(50.0, 400.0, (joints, 3))}


def codec(input_norm: str = "zscore", target: str = "zscore", joint_set: str = "h36m17", **overrides) -> Codec:
    arrays = {**stats(17 if joint_set == "h36m17" else 16), **overrides}
    return Codec(InputSpec(joint_set, input_norm, target), **arrays)


def poses(channels: int, batch: int = 5, joints: int = 17, seed: int = 1) -> torch.Tensor:
    scale = 0.5 if channels == 2 else 500.0
    values = np.random.default_rng(seed).normal(0.0, scale, (batch, joints, channels))
    return torch.as_tensor(values, dtype=torch.float32)


def test_zscored_inputs_use_the_given_means_and_stds():
    mean, std = np.zeros((17, 2)), np.ones((17, 2))
    mean[3], std[3] = (0.125, 0.25), (0.25, 0.5)
    inputs = torch.zeros(1, 17, 2)
    inputs[0, 3] = torch.tensor([0.5, -0.25])
    encoded = codec(input_mean=mean, input_std=std).encode_inputs(inputs)
    # (0.5 - 0.125) / 0.25 = 1.5 and (-0.25 - 0.25) / 0.5 = -1 (all exact in float32)
    assert encoded[0, 3].tolist() == [1.5, -1.0]
    assert encoded.dtype == torch.float32 and encoded.shape == (1, 17, 2)


def test_zscored_inputs_round_trip_through_the_codecs_statistics():
    # The codec has no input decoder (a network never outputs 2D): undo the z-score by its own mean and std.
    c = codec()
    inputs = poses(2)
    encoded = c.encode_inputs(inputs)
    torch.testing.assert_close(encoded * c.input_std + c.input_mean, inputs, rtol=0, atol=1e-6)
    expected = (inputs.double() - torch.as_tensor(stats()["input_mean"])) / torch.as_tensor(stats()["input_std"])
    torch.testing.assert_close(encoded.double(), expected, rtol=1e-6, atol=1e-6)


def test_screen_inputs_pass_through_unchanged():
    inputs = poses(2)
    assert torch.equal(codec(input_norm="screen").encode_inputs(inputs), inputs)


def test_an_input_std_of_zero_is_floored_at_one_millionth():
    std = np.ones((17, 2))
    std[5, 1] = 0.0
    mean = np.zeros((17, 2))
    inputs = torch.zeros(1, 17, 2)
    inputs[0, 5, 1] = 0.25
    encoded = codec(input_mean=mean, input_std=std).encode_inputs(inputs)
    assert encoded[0, 5, 1].item() == pytest.approx(0.25 / 1e-6, rel=1e-6)
    assert torch.isfinite(encoded).all()


def test_zscored_targets_use_the_given_means_and_stds_and_decode_back():
    mean, std = np.zeros((17, 3)), np.ones((17, 3))
    mean[14], std[14] = (20.0, 10.0, 1500.0), (40.0, 30.0, 250.0)
    c = codec(target_mean=mean, target_std=std)
    targets = torch.zeros(1, 17, 3)
    targets[0, 14] = torch.tensor([100.0, -50.0, 2000.0])
    encoded = c.encode_targets(targets)
    # (100 - 20) / 40, (-50 - 10) / 30, (2000 - 1500) / 250
    assert encoded[0, 14].tolist() == [2.0, -2.0, 2.0]
    assert c.decode_outputs(encoded)[0, 14].tolist() == [100.0, -50.0, 2000.0]


@pytest.mark.parametrize("target", ["zscore", "metres"])
def test_targets_round_trip_in_millimetres(target):
    c = codec(target=target)
    targets = poses(3)
    decoded = c.decode_outputs(c.encode_targets(targets))
    assert decoded.dtype == torch.float32 and decoded.shape == targets.shape
    torch.testing.assert_close(decoded, targets, rtol=1e-6, atol=1e-4)


def test_metre_targets_are_millimetres_over_a_thousand_whatever_the_statistics():
    c = codec(target="metres")
    targets = torch.zeros(1, 17, 3)
    targets[0, 2] = torch.tensor([1500.0, -250.0, 4000.0])
    assert c.encode_targets(targets)[0, 2].tolist() == [1.5, -0.25, 4.0]
    assert c.decode_outputs(torch.full((1, 17, 3), 0.125))[0].unique().tolist() == [125.0]


def test_a_target_std_of_zero_keeps_the_root_at_zero():
    # After root alignment the root's mean and std are 0: its std counts as 1, so 0 encodes and decodes to 0.
    mean, std = stats()["target_mean"], stats()["target_std"]
    mean[0], std[0] = 0.0, 0.0
    c = codec(target_mean=mean, target_std=std)
    assert c.target_std[0].tolist() == [1.0, 1.0, 1.0]
    targets = poses(3)
    targets[:, 0] = 0.0
    encoded = c.encode_targets(targets)
    assert torch.isfinite(encoded).all() and torch.equal(encoded[:, 0], torch.zeros(5, 3))
    assert torch.equal(c.decode_outputs(torch.zeros(2, 17, 3))[:, 0], torch.zeros(2, 3))
    outputs = poses(3, seed=2)
    assert torch.equal(c.decode_outputs(outputs)[:, 0], outputs[:, 0])


def test_mirroring_swaps_left_and_right_and_negates_x():
    c = codec()
    pose = torch.zeros(1, 17, 3)
    pose[0, H36M17.index("RShoulder")] = torch.tensor([0.3, -0.2, 4000.0])
    pose[0, H36M17.index("LShoulder")] = torch.tensor([-0.1, 0.7, 3900.0])
    pose[0, H36M17.index("Spine")] = torch.tensor([0.25, 0.5, 4100.0])
    mirrored = c.mirror_outputs(pose)
    assert mirrored[0, H36M17.index("LShoulder")].tolist() == pytest.approx([-0.3, -0.2, 4000.0])
    assert mirrored[0, H36M17.index("RShoulder")].tolist() == pytest.approx([0.1, 0.7, 3900.0])
    assert mirrored[0, H36M17.index("Spine")].tolist() == [-0.25, 0.5, 4100.0]  # a centre joint keeps its place


@pytest.mark.parametrize("joint_set", [H36M17, H36M16])
def test_mirroring_permutes_every_left_right_pair_of_the_joint_set(joint_set):
    c = codec(joint_set=joint_set.name)
    pose = poses(2, joints=joint_set.num_joints)
    mirrored = c.mirror_inputs(pose)
    twin = {name: name.replace("L", "R", 1) if name.startswith("L") else
            name.replace("R", "L", 1) if name.startswith("R") else name for name in joint_set.names}
    for k, name in enumerate(joint_set.names):
        j = joint_set.index(twin[name])
        assert torch.equal(mirrored[:, k, 0], -pose[:, j, 0]), name
        assert torch.equal(mirrored[:, k, 1], pose[:, j, 1]), name
    assert sum(twin[n] != n for n in joint_set.names) == 12


def test_screen_mirroring_is_about_the_images_vertical_centre_line():
    inputs = torch.zeros(1, 17, 2)
    inputs[0, 0] = torch.tensor([0.0, 0.3])  # on the centre line
    inputs[0, 7] = torch.tensor([1.0, -0.5])  # on the right edge
    mirrored = codec().mirror_inputs(inputs)
    assert mirrored[0, 0].tolist() == pytest.approx([0.0, 0.3])
    assert mirrored[0, 7].tolist() == [-1.0, -0.5]


def test_mirroring_twice_is_the_identity_and_leaves_its_argument_alone():
    c = codec()
    for pose in (poses(2), poses(3), poses(2).reshape(1, 5, 17, 2)):  # (B, J, C) and (B, R, J, 2) windows
        before = pose.clone()
        assert torch.equal(c.mirror_outputs(c.mirror_outputs(pose)), pose)
        assert torch.equal(c.mirror_inputs(c.mirror_inputs(pose)), pose)
        assert torch.equal(c.mirror_inputs(pose), c.mirror_outputs(pose))
        assert not torch.equal(c.mirror_inputs(pose), pose)
        assert torch.equal(pose, before)


def test_to_moves_every_statistic_and_returns_the_codec():
    c = codec()
    assert c.to(torch.device("meta")) is c
    for name in ("input_mean", "input_std", "target_mean", "target_std", "flip"):
        assert getattr(c, name).device.type == "meta", name
