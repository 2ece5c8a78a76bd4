"""Pose3D-RIE: relative information encoding for temporal lifting (Shan et al., ACM MM 2021; methods.md §4).

Re-implemented from the description; no upstream code is copied. The input is a 243-frame window
(or, dilated, a whole edge-padded sequence) of 17-joint screen-normalised 2D:

* **Encodings**: per frame, each joint's absolute 2D, its *positional* encoding (the joint minus
  the root of the same frame) and its *temporal* encoding (the joint minus the same joint in the
  centre frame of the window).
* **Local encoders**: five body parts (:data:`PARTS`: torso, the two arms, the two legs), each a
  :class:`~lifting.models.tcn.TemporalConvNet` (256 channels, widths 3^5, LeakyReLU 0.2, dropout
  0.2) over its joints' [absolute, positional, temporal] channels, to a latent vector of
  ``latent`` features (256 for GT 2D, 512 for detections).
* **Global encoder**: a fully connected block on the centre frame's absolute 2D (34 -> 1024, two
  residual blocks, -> latent).
* **Feature fusion** (stages 2 and 3 only): for each part, a fully connected block (one residual
  block) from the other four parts' latents to a fused latent.
* **Decoders**: per part, a fully connected block (one residual block) from [local, (fused,)
  global] to the part's 3D joints, reassembled into the h36m17 order.

Fully connected blocks: Linear -> BN -> LeakyReLU(0.2) -> Dropout(0.25), residual blocks of two
such layers, then a Linear. Parameters (pinned in ``tests/models/test_rie.py``): 23.4M for stage
1 with latent 256, 41.8M for stages 2-3 with latent 256, 52.9M with latent 512 (methods.md §4.2).

Training (methods.md §4.3-4.4) runs in three stages, each a DVC stage whose checkpoint the next
one loads (:meth:`RIE.initialise`): stage 1 trains encoders and decoders without the fusion module;
stage 2 loads stage 1's encoders by module name (``local``, ``global_encoder``), freezes their
parameters (their BatchNorm statistics still update, as upstream's) and trains the fusion module
and fresh decoders; stage 3 loads everything and fine-tunes it all at lr 5e-4. AdamW (AMSGrad,
weight decay 0.01), lr 1e-3 x0.95 per epoch, batch 1024, 80 epochs a stage, MPJPE loss, train
flip and flip test, BatchNorm momentum of the temporal encoders decayed from 0.1 to 0.001.
Upstream loads "the first 317 state-dict entries" and freezes "the first 167 parameters" by
position; we name the modules instead.

Upstream names its arm streams "LArm" for joints 14-16 (the right arm in h36m17 naming) and
"RArm" for 11-13; the outputs are reassembled by index, so the swap is harmless and our names
follow h36m17. Upstream decays the BatchNorm momentum of the temporal encoders only (not of the
fully connected blocks): :meth:`RIE.set_bn_momentum` does the same.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lifting.models.dropout import Dropout, check_dropout
from lifting.models.norm import BatchNorm1d
from lifting.models.spec import InputSpec, PaperSetup, Schedule
from lifting.models.tcn import TemporalConvNet, TemporalLifter

#: Body parts (h36m17 joint indices) in the order of their streams: torso, right arm, left arm,
#: right leg, left leg.
PARTS: dict[str, tuple[int, ...]] = {"torso": (0, 7, 8, 9, 10), "right_arm": (14, 15, 16), "left_arm": (11, 12, 13),
                                     "right_leg": (1, 2, 3), "left_leg": (4, 5, 6)}
STAGES = (1, 2, 3)
#: Windows per pass when a whole run is predicted (:meth:`RIE.forward_sequence`; 64 measured fastest of
#: 16-256 and all at once, 1.7x the latter on the CPU, same outputs): a Human3.6M run of
#: 5,000 frames at once, mirrored too, would hold some 10 GB of activations.
WINDOWS_PER_PASS = 64


@dataclass(frozen=True)
class Config:
    """RIE's configuration; defaults are the paper's GT-2D model (``latent`` 512 for detections)."""

    latent: int = 256
    channels: int = 256
    filter_widths: tuple[int, ...] = (3, 3, 3, 3, 3)
    dropout: float = 0.2
    fc_hidden: int = 1024
    fc_dropout: float = 0.25
    stage: int = 3

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be 1, 2 or 3, got {self.stage}")
        if min(self.latent, self.channels, self.fc_hidden) < 1:
            raise ValueError("latent, channels and fc_hidden must be >= 1")
        check_dropout(self.dropout)
        check_dropout(self.fc_dropout)


#: Screen-normalised 17-joint 2D windows in, root-relative metres out; train flip and flip test.
INPUT_SPEC = InputSpec(joint_set="h36m17", input_norm="screen", target="metres", flip_test=True, temporal=True,
                       train_flip=True)

#: Stages 1 and 2 (``run.py``): AdamW (AMSGrad, weight decay 0.01) 1e-3, x0.95 every epoch, batch
#: 1024, 80 epochs, MPJPE; an epoch holds every window plain and mirrored (VideoPose3D's generator).
#: Stage 3 fine-tunes at 5e-4 (:func:`schedule_for`).
PAPER_SCHEDULE = Schedule(optimizer="adamw", amsgrad=True, weight_decay=0.01, lr=1e-3, lr_decay=0.95,
                          lr_decay_every=1, lr_decay_unit="epoch", batch_size=1024, epochs=80, loss="mpjpe",
                          mirrored_pairs=True)
STAGE3_LR = 5e-4

#: The README's GT model has latent 256, the CPN model 512.
PAPER = {"gt": PaperSetup(Config(latent=256), INPUT_SPEC, PAPER_SCHEDULE, "243 frames, latent 256, 41.8M"),
         "detected": PaperSetup(Config(latent=512), INPUT_SPEC, PAPER_SCHEDULE, "243 frames, latent 512, 52.9M")}


def schedule_for(cfg: Config, schedule: Schedule) -> Schedule:
    """The paper's schedule of ``cfg.stage``: stage 3 fine-tunes at lr 5e-4."""
    return dataclasses.replace(schedule, lr=STAGE3_LR) if cfg.stage == 3 else schedule


class FullyConnectedBlock(nn.Module):
    """Linear -> BN -> LeakyReLU(0.2) -> Dropout, ``blocks`` residual pairs of the same, Linear.
    ``(B, C_in) -> (B, C_out)``."""

    def __init__(self, in_features: int, out_features: int, hidden: int, blocks: int, dropout: float) -> None:
        super().__init__()
        self.fc_in = nn.Linear(in_features, hidden)
        self.bn_in = BatchNorm1d(hidden)
        self.residual = nn.ModuleList([nn.ModuleList([nn.Linear(hidden, hidden), BatchNorm1d(hidden),
                                                      nn.Linear(hidden, hidden), BatchNorm1d(hidden)])
                                       for _ in range(blocks)])
        self.fc_out = nn.Linear(hidden, out_features)
        self.drop = Dropout(dropout)

    def _layer(self, x: torch.Tensor, linear: nn.Linear, bn: BatchNorm1d) -> torch.Tensor:
        return self.drop(F.leaky_relu(bn(linear(x)), 0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._layer(x, self.fc_in, self.bn_in)
        for first, first_bn, second, second_bn in self.residual:
            x = x + self._layer(self._layer(x, first, first_bn), second, second_bn)
        return self.fc_out(x)


class RIE(TemporalLifter):
    """Pose3D-RIE for ``cfg.stage`` (1: no fusion; 2 and 3: with the fusion module).

    ``forward((B, R, 17, 2)) -> (B, 17, 3)``: windows of R = :attr:`receptive_field` frames to
    their centre frame; ``forward_sequence((B, T + R - 1, 17, 2)) -> (B, T, 17, 3)``: every frame
    of edge-padded sequences.
    """

    def __init__(self, cfg: Config = Config()) -> None:
        super().__init__()
        stage = cfg.stage
        self.stage, self.latent = stage, cfg.latent
        self.local = nn.ModuleDict({
            name: TemporalConvNet(3 * 2 * len(joints), cfg.latent, cfg.filter_widths, cfg.channels, cfg.dropout,
                                  negative_slope=0.2) for name, joints in PARTS.items()})
        self.global_encoder = FullyConnectedBlock(2 * 17, cfg.latent, cfg.fc_hidden, 2, cfg.fc_dropout)
        self.fusion = nn.ModuleDict({
            name: FullyConnectedBlock(4 * cfg.latent, cfg.latent, cfg.fc_hidden, 1, cfg.fc_dropout)
            for name in PARTS}) if stage > 1 else None
        decoder_in = (3 if stage > 1 else 2) * cfg.latent
        self.decoders = nn.ModuleDict({
            name: FullyConnectedBlock(decoder_in, 3 * len(joints), cfg.fc_hidden, 1, cfg.fc_dropout)
            for name, joints in PARTS.items()})
        order = [k for joints in PARTS.values() for k in joints]
        self.register_buffer("output_order", torch.tensor([order.index(k) for k in range(17)]), persistent=False)

    @property
    def receptive_field(self) -> int:
        return next(iter(self.local.values())).receptive_field

    def encoders(self) -> list[nn.Module]:
        """The modules stage 2 loads from stage 1 and freezes: the local and global encoders."""
        return [self.local, self.global_encoder]

    def initialise(self, weights: dict[str, torch.Tensor]) -> None:
        """Start from the previous stage's weights (a state dict): stage 2 takes the encoders and
        freezes their parameters; stage 3 takes everything (fusion module included)."""
        if self.stage == 1:
            raise ValueError("stage 1 starts from scratch")
        if self.stage == 2:
            prefixes = ("local.", "global_encoder.")
            encoders = {k: v for k, v in weights.items() if k.startswith(prefixes)}
            missing = [k for k in self.state_dict() if k.startswith(prefixes) and k not in encoders]
            if missing:
                raise ValueError(f"the previous stage's weights lack the encoders' {missing[:3]}")
            self.load_state_dict(encoders, strict=False)
            for module in self.encoders():
                module.requires_grad_(False)
        else:
            self.load_state_dict(weights)

    def set_bn_momentum(self, momentum: float) -> None:
        for tcn in self.local.values():
            tcn.set_bn_momentum(momentum)

    def forward_sequence(self, x: torch.Tensor, chunk: int = WINDOWS_PER_PASS) -> torch.Tensor:
        """``(B, T + R - 1, 17, 2) -> (B, T, 17, 3)``. The temporal encoding is relative to each
        output's own centre frame, so a sequence is encoded window by window, as upstream
        evaluates: no computation is shared between frames. The windows go through the network
        ``chunk`` outputs at a time (memory per pass ~1 MB a window, whatever the run's length)."""
        if x.dim() != 4 or x.shape[1] < self.receptive_field:
            raise ValueError(f"expected (B, T >= {self.receptive_field}, 17, 2) inputs, got {tuple(x.shape)}")
        field, batch = self.receptive_field, x.shape[0]
        outputs = x.shape[1] - field + 1
        pieces = []
        for start in range(0, outputs, chunk):
            windows = x[:, start:min(start + chunk, outputs) + field - 1].unfold(1, field, 1)  # (B, n, 17, 2, R)
            count = windows.shape[1]
            flat = windows.permute(0, 1, 4, 2, 3).reshape(batch * count, field, 17, 2)
            pieces.append(self.forward(flat).view(batch, count, 17, 3))
        return torch.cat(pieces, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, R, 17, 2) -> (B, 17, 3)``: each window of R = :attr:`receptive_field` frames to
        its centre frame's root-relative 3D."""
        if x.dim() != 4 or x.shape[1:] != (self.receptive_field, 17, 2):
            raise ValueError(f"expected (B, {self.receptive_field}, 17, 2) windows, got {tuple(x.shape)}")
        batch, centre = x.shape[0], (self.receptive_field - 1) // 2
        positional = x - x[:, :, :1]  # each joint minus the root of its frame
        temporal = x - x[:, centre:centre + 1]  # each joint minus itself in the centre frame
        global_latent = self.global_encoder(x[:, centre].reshape(batch, 34))
        local = {}
        for name, joints in PARTS.items():
            channels = torch.cat([x[:, :, joints], positional[:, :, joints], temporal[:, :, joints]], dim=2)
            local[name] = self.local[name](channels.flatten(2).transpose(1, 2), strided=True).view(batch, self.latent)
        parts = []
        for name, joints in PARTS.items():
            features = [local[name]]
            if self.fusion is not None:
                features.append(self.fusion[name](torch.cat([local[o] for o in PARTS if o != name], dim=1)))
            parts.append(self.decoders[name](torch.cat([*features, global_latent], dim=1)).view(batch, len(joints), 3))
        return torch.cat(parts, dim=1)[:, self.output_order]


def build(cfg: Config, num_joints: int) -> RIE:
    if num_joints != 17:
        raise ValueError(f"RIE is defined for the 17 h36m joints, got num_joints={num_joints}")
    return RIE(cfg)

