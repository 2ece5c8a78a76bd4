"""What every method module declares besides its network: its inputs and its paper's schedule.

A method module ``lifting/models/<name>.py`` exposes:

* ``Config``: a frozen dataclass whose defaults are the paper's configuration;
* ``build(cfg, num_joints) -> torch.nn.Module`` mapping ``(B, J, 2)`` inputs to ``(B, J, 3)``
  root-relative camera-frame outputs (units set by ``INPUT_SPEC.target``); a method whose
  ``INPUT_SPEC.markers`` is set is also built on the data's surface graph,
  ``build(cfg, num_joints, surface)`` (:func:`lifting.runner.build_model`); a temporal one
  (``INPUT_SPEC.temporal``) has ``Config.filter_widths`` (its window is their product);
* optionally, for a method trained in stages (RIE): ``schedule_for(cfg, schedule)``, the paper's
  schedule of ``cfg``'s stage, and ``initialise(model, previous_state_dict)``, how a stage starts
  from the previous one (:func:`lifting.runner.train_method`);
* ``INPUT_SPEC``: an :class:`InputSpec`;
* ``PAPER_SCHEDULE``: a :class:`Schedule` (used when ``budget.max_epochs`` is null);
* ``PAPER``: a dict ``{"gt": PaperSetup, "detected": PaperSetup}``, the paper's configuration
  for ground-truth 2D and for detected 2D (they differ where the paper trained another model on
  detections: Modulated GCN's CPN model, GridConv's ``(c, z)`` padding). A run picks one by the
  kind of its 2D source (:func:`input_kind`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class InputSpec:
    """How a method wants its data.

    Attributes:
        joint_set: "h36m17" or "h36m16" (inputs and targets use the same set).
        input_norm: "screen" (screen-normalised 2D, as stored) or "zscore" (screen-normalised,
            then z-scored per coordinate with training-set statistics).
        target: "metres" (root-relative camera-frame metres) or "zscore" (root-relative mm,
            z-scored per coordinate with training statistics; the root is then constant 0).
        flip_test: average the prediction with that of the mirrored input, as the paper does.
        markers: the loss also uses the body-surface markers of the training rows (HGN).
        temporal: the network sees a window of its model's ``receptive_field`` frames centred on
            the predicted frame, ``(B, R, J, 2)``, taken from the frame's run and edge-padded
            (:mod:`lifting.data.sequences`), and has ``forward_sequence`` for whole runs.
        train_flip: mirror a random half of every training batch (2D and 3D, left and right
            swapped), as the temporal papers do.
        images: the network also sees the frame: each sample's crop (:mod:`lifting.images.context`),
            given as ``model(inputs, context)`` (Context-Aware PoseFormer).
    """

    joint_set: Literal["h36m17", "h36m16"]
    input_norm: Literal["screen", "zscore"]
    target: Literal["metres", "zscore"]
    flip_test: bool = False
    markers: bool = False
    temporal: bool = False
    train_flip: bool = False
    images: bool = False


@dataclass(frozen=True)
class Schedule:
    """A paper's training recipe.

    Attributes:
        optimizer: "adam" or "adamw". amsgrad: Adam's AMSGrad variant.
        lr: initial learning rate. weight_decay: decoupled (adamw) or L2 (adam) decay.
        lr_decay: multiplicative factor applied every ``lr_decay_every`` ``lr_decay_unit``s;
            ``lr_decay_unit="cosine"`` or ``"linear"`` instead decays the lr to 0 along a cosine
            or a straight line over the whole run (budgeted recipes; no paper uses them).
        warmup: share of the run's steps over which the lr rises linearly from ~0 to ``lr``
            before the decay (0 = none, as every paper).
        lr_decay_first: the count (of completed epochs or steps) at which the first decay
            happens; later decays follow every ``lr_decay_every``. None: at ``lr_decay_every``.
        batch_size, epochs: as published (a budgeted copy has fewer epochs, see ``paper_epochs``).
        loss: "mse" (mean squared error over all coordinates), "mpjpe" (mean joint distance) or
            "l1"; ``l1_weight`` mixes in an L1 term: ``(1 - w) * loss + w * l1``.
        grad_clip: max gradient norm, or None.
        paper_epochs: set on a budgeted copy: the published epoch count, so that schedules
            inside a model (GridConv's attention temperature) keep their share of the run.
        mirrored_pairs: with training flips (``InputSpec.train_flip``), each epoch holds every
            sample twice, plain and mirrored, as VideoPose3D's ``ChunkedGenerator`` (which RIE
            reuses) does, so the per-epoch lr and BatchNorm-momentum decays advance once per two
            passes; False: each sample is mirrored with probability 0.5 and an epoch is one pass.
    """

    optimizer: Literal["adam", "adamw"]
    lr: float
    lr_decay: float
    lr_decay_every: int
    lr_decay_unit: Literal["step", "epoch", "cosine", "linear"]
    batch_size: int
    epochs: int
    loss: Literal["mse", "mpjpe", "l1"]
    l1_weight: float = 0.0
    grad_clip: float | None = None
    weight_decay: float = 0.0
    amsgrad: bool = False
    lr_decay_first: int | None = None
    paper_epochs: int | None = None
    warmup: float = 0.0
    mirrored_pairs: bool = False


@dataclass(frozen=True)
class PaperSetup:
    """One published configuration of a method.

    Attributes:
        config: the method's ``Config`` as the paper trained it.
        input_spec: the inputs and targets it takes.
        schedule: its training recipe (None for the lookup floor).
        label: a short human description (shown in metrics files and the report).
    """

    config: Any
    input_spec: InputSpec
    schedule: Schedule | None
    label: str


def check_widths(hidden: int, depth_name: str, depth: int, min_depth: int) -> None:
    """ValueError unless a network has ``hidden >= 1`` channels and ``depth >= min_depth`` layers or blocks."""
    if hidden < 1 or depth < min_depth:
        raise ValueError(f"needs hidden >= 1 and {depth_name} >= {min_depth}, got hidden={hidden}, "
                         f"{depth_name}={depth}")


#: The 2D sources that are the ground truth; every other source (noisy, detected, CPN, HRNet, ...)
#: is a detection and gets the paper's detection configuration.
GROUND_TRUTH_SOURCES = ("gt",)
#: The input kinds each method has a paper configuration for (``PAPER[kind]``).
KINDS = ("gt", "detected")


def input_kind(source2d: str) -> Literal["gt", "detected"]:
    """``"gt"`` for ground-truth 2D, ``"detected"`` for any detector's (or the noise model's) 2D."""
    return "gt" if source2d in GROUND_TRUTH_SOURCES else "detected"
