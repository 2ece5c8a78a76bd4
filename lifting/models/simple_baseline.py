"""Martinez et al., "A simple yet effective baseline for 3d human pose estimation", ICCV 2017.

Re-implemented from the paper and from the description of its PyTorch port
(``weigq/3d_pose_baseline_pytorch``, ``src/model.py``; methods.md §7.1), not copied.

Network, on flattened poses::

    Linear(2·J_in -> 1024) + BatchNorm + ReLU + Dropout(0.5)
    num_blocks x residual block:  x + [Linear(1024) + BN + ReLU + Dropout] x 2
    Linear(1024 -> 3·(J-1))

Linear weights use Kaiming-normal initialisation (fan-in, ReLU gain); biases and BatchNorm keep
PyTorch's defaults, as upstream does.

Shapes and units: ``(B, J, 2)`` z-scored screen-normalised 2D in, ``(B, J, 3)`` z-scored
root-relative 3D out (``INPUT_SPEC``); the network predicts the ``J - 1`` non-root joints and the
root (index 0) is emitted as exactly 0, which is its z-scored value (a root-relative root is
constant 0).

The paper's configuration takes 16 joints without the nose as input (32 numbers) and predicts the
16 non-root joints of the 17-joint set, nose included (48 numbers): 4,291,632 parameters (4.29M).
``build(Config(drop_nose_input=True), 17)`` is exactly that network, behind the same
``(B, 17, 2) -> (B, 17, 3)`` contract (the nose column of the input is ignored).

Deliberate differences from the paper / upstream:

* ``drop_nose_input`` defaults to True, the paper's 16-joint input (32 numbers, 4,291,632
  parameters), for ground-truth and detected 2D alike. ``False`` also feeds the nose's 2D (34
  inputs, 4,293,680 parameters): an experiment, not the paper.
* The root is part of the module's output (constant 0) instead of being re-inserted by the
  evaluation code, so every method shares one output contract.
* Upstream's optional max-norm weight constraint (TensorFlow original) is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lifting.models.base import Lifter
from lifting.models.dropout import Dropout, check_dropout
from lifting.models.norm import BatchNorm1d
from lifting.models.spec import InputSpec, PaperSetup, Schedule, check_widths
from lifting.skeleton import H36M17

INPUT_SPEC = InputSpec(joint_set="h36m17", input_norm="zscore", target="zscore", flip_test=False)

#: Adam 1e-3, x0.96 every 100k steps, batch 64, 200 epochs, MSE on z-scored targets, clip 1.
PAPER_SCHEDULE = Schedule(
    optimizer="adam", lr=1e-3, lr_decay=0.96, lr_decay_every=100_000, lr_decay_unit="step",
    batch_size=64, epochs=200, loss="mse", grad_clip=1.0,
)

_NOSE = H36M17.index("Nose")


@dataclass(frozen=True)
class Config:
    """Martinez baseline hyper-parameters (defaults: the paper's, see module doc).

    Attributes:
        hidden: width of every hidden layer (1024).
        num_blocks: residual blocks (2).
        dropout: dropout probability after every hidden ReLU (0.5).
        drop_nose_input: ignore the nose's 2D (h36m17 index 9), as the paper's 32-number input
            does; needs ``num_joints == 17``.
    """

    hidden: int = 1024
    num_blocks: int = 2
    dropout: float = 0.5
    drop_nose_input: bool = True

    def __post_init__(self) -> None:
        check_widths(self.hidden, "num_blocks", self.num_blocks, 0)
        check_dropout(self.dropout)



#: One configuration for every 2D source: the paper's 16-joint input.
PAPER = {kind: PaperSetup(Config(), INPUT_SPEC, PAPER_SCHEDULE, "16-joint input (no nose), 4.29M")
         for kind in ("gt", "detected")}

def _hidden_layer(n_in: int, n_out: int, dropout: float) -> nn.Sequential:
    """Linear + BatchNorm + ReLU + Dropout: (B, n_in) -> (B, n_out)."""
    return nn.Sequential(nn.Linear(n_in, n_out), BatchNorm1d(n_out), nn.ReLU(),
                         Dropout(dropout))


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(_hidden_layer(width, width, dropout),
                                    _hidden_layer(width, width, dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class SimpleBaseline(Lifter):
    """(B, J, 2) -> (B, J, 3): an MLP on the flattened 2D pose; root output fixed at 0.

    Attributes:
        input_joints: indices of the joints whose 2D is fed to the network (a buffer).
    """

    def __init__(self, cfg: Config, num_joints: int) -> None:
        super().__init__()
        if num_joints < 2:
            raise ValueError(f"SimpleBaseline needs at least 2 joints, got {num_joints}")
        if cfg.drop_nose_input and num_joints != H36M17.num_joints:
            raise ValueError("drop_nose_input needs the 17-joint h36m17 set "
                             f"(the nose is index {_NOSE}), got num_joints={num_joints}")
        keep = [j for j in range(num_joints) if not (cfg.drop_nose_input and j == _NOSE)]
        self.num_joints = num_joints
        self.register_buffer("input_joints", torch.tensor(keep, dtype=torch.long),
                             persistent=False)
        self.stem = _hidden_layer(2 * len(keep), cfg.hidden, cfg.dropout)
        self.blocks = nn.Sequential(*(_ResidualBlock(cfg.hidden, cfg.dropout)
                                      for _ in range(cfg.num_blocks)))
        self.head = nn.Linear(cfg.hidden, 3 * (num_joints - 1))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1:] != (self.num_joints, 2):
            raise ValueError(f"expected (B, {self.num_joints}, 2) input, got {tuple(x.shape)}")
        flat = x.index_select(1, self.input_joints).flatten(1)
        out = self.head(self.blocks(self.stem(flat))).view(x.shape[0], self.num_joints - 1, 3)
        return torch.cat([out.new_zeros(x.shape[0], 1, 3), out], dim=1)


def build(cfg: Config, num_joints: int) -> SimpleBaseline:
    """The Martinez baseline for ``num_joints`` joints (root = index 0)."""
    return SimpleBaseline(cfg, num_joints)
