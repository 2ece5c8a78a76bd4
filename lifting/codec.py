"""Per-method encoding of inputs and targets, kept apart from the networks.

A :class:`Codec` turns the aligned arrays (screen-normalised 2D, root-relative mm 3D) into what a
method's network sees (its :class:`~lifting.models.spec.InputSpec`), and turns the network's
outputs back into root-relative camera-frame millimetres.
"""

from __future__ import annotations

import numpy as np
import torch

from lifting.models.spec import InputSpec
from lifting.skeleton import get_joint_set

_MIN_STD = 1e-6


class Codec:
    """Encode (B, J, 2) inputs and (B, J, 3) targets for one method; decode its outputs.

    Args:
        spec: the method's input specification.
        input_mean, input_std: (J, 2) training statistics of the screen-normalised inputs.
        target_mean, target_std: (J, 3) training statistics of the root-relative targets (mm).
    """

    def __init__(self, spec: InputSpec, input_mean, input_std, target_mean, target_std):
        self.spec = spec
        self.input_mean = torch.as_tensor(np.asarray(input_mean), dtype=torch.float32)
        self.input_std = torch.as_tensor(np.maximum(np.asarray(input_std), _MIN_STD), dtype=torch.float32)
        self.target_mean = torch.as_tensor(np.asarray(target_mean), dtype=torch.float32)
        # The root is constant 0 after root alignment: its std is 0 and it must stay 0 when decoded.
        self.target_std = torch.as_tensor(np.where(np.asarray(target_std) < _MIN_STD, 1.0, target_std), dtype=torch.float32)
        self.flip = torch.as_tensor(get_joint_set(spec.joint_set).flip_permutation())

    def to(self, device: torch.device) -> "Codec":
        for name in ("input_mean", "input_std", "target_mean", "target_std", "flip"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def encode_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, J, 2) screen-normalised -> the network's input."""
        if self.spec.input_norm == "zscore":
            return (inputs - self.input_mean) / self.input_std
        return inputs

    def encode_targets(self, targets_mm: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) root-relative mm -> the network's target space."""
        if self.spec.target == "zscore":
            return (targets_mm - self.target_mean) / self.target_std
        return targets_mm / 1000.0

    def decode_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """The network's (B, J, 3) output -> root-relative camera-frame mm."""
        if self.spec.target == "zscore":
            return outputs * self.target_std + self.target_mean
        return outputs * 1000.0

    def mirror_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Mirror screen-normalised 2D ((..., J, 2)) about the image's vertical centre line and
        swap left and right."""
        return self.mirror_outputs(inputs)

    def mirror_outputs(self, poses: torch.Tensor) -> torch.Tensor:
        """Mirror (..., J, C) points in x and swap left and right: undoes :meth:`mirror_inputs` on a
        camera-frame prediction, and mirrors a 3D target with its 2D input."""
        mirrored = poses[..., self.flip, :].clone()
        mirrored[..., 0] = -mirrored[..., 0]
        return mirrored
