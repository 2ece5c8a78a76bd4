"""One training loop for every method, readable top to bottom.

Batches are slices of in-memory tensors (the whole training set lives on the device); there is no
per-sample Dataset/DataLoader collation. CUDA is used when present (with bf16 autocast), the CPU
otherwise, with its thread count set explicitly. One seed seeds everything: the same seed gives
the same weights and metrics on the same machine.

A checkpoint is written atomically after every epoch (model config, weights, optimizer, epoch,
RNG state, snapshot); an interrupted run resumes from it when its snapshot matches. The training
stage puts the params and a digest of the code in the snapshot (``lifting/provenance.py``).
Checkpoints load with ``weights_only=True``. A CSV log (:data:`LOG_COLUMNS`) gets one row per
curve point (every epoch's end plus evenly spaced points): training loss, samples seen,
core-seconds, a test-set error from the caller's ``monitor`` (logged only, never used to select
anything), the validation error when a validation split exists, lr and samples/s.

The model is a :class:`lifting.models.base.Lifter`: the loop calls its hooks (``start_epoch``,
``set_epoch_progress`` on the paper's clock, ``loss``) and nothing else of the method's.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lifting import distributed
from lifting.codec import Codec
from lifting.data.sequences import Windows, padded_run
from lifting.device import autocast
from lifting.distributed import SINGLE, Ranks
from lifting.images.context import ImageContext
from lifting.io import atomic_path, write_csv
from lifting.models.base import Lifter
from lifting.models.spec import Schedule

log = logging.getLogger("lifting.train")

#: One row per curve point. ``test_p1_mm`` (action-mean P1 on the run's test-curve frames) is
#: logged only and never used for selection; ``val_mpjpe_mm`` is empty without a validation split.
LOG_COLUMNS = ("seed", "epoch", "step", "samples_seen", "core_seconds", "train_loss", "test_p1_mm", "val_mpjpe_mm",
               "lr", "seconds", "samples_per_s")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def budgeted_schedule(paper: Schedule, max_epochs: int | None, batch_size: int | None, lr_scale: float = 1.0,
                      decay: str = "paper", warmup: float = 0.0) -> Schedule:
    """The paper's schedule, or, under a budget, that recipe shortened to ``max_epochs``.

    ``max_epochs=None`` restores the paper's full schedule. Otherwise the paper's optimizer and
    loss are kept; ``batch_size`` (when given) replaces its batch size, its learning rate is
    multiplied by ``lr_scale``, ``decay`` ("cosine" or "linear") replaces its step decay by a
    decay to 0 over the shortened run (a schedule made for hundreds of thousands of steps barely
    decays in a few thousand; "paper" keeps it) and ``warmup`` (a share of the run's steps) adds
    a linear warm-up. The shortened copy remembers the paper's epoch count (``paper_epochs``):
    the loop reports training progress to the model on the paper's clock. It mirrors each sample
    with probability 0.5 and counts an epoch as one pass (``mirrored_pairs=False``), so a budget
    of n epochs costs n passes whatever the paper's epoch is (benchmarks/README.md measures the two
    at equal samples).
    """
    if max_epochs is None:
        return paper
    shortened = dataclasses.replace(paper, epochs=min(paper.epochs, max_epochs), paper_epochs=paper.epochs,
                                    batch_size=batch_size or paper.batch_size, lr=paper.lr * lr_scale, warmup=warmup,
                                    mirrored_pairs=False)
    return shortened if decay == "paper" else dataclasses.replace(shortened, lr_decay_unit=decay)


@dataclass
class TrainArrays:
    """Training data already on the device: (N, J, 2) screen-normalised inputs, (N, J, 3) mm targets,
    and for a model whose loss needs them, (N, M, 3) mm auxiliary targets (HGN's surface markers).

    Temporal methods: ``windows[index]`` gives the (B, R) rows of ``inputs`` that form each sample's
    window (:class:`lifting.data.sequences.Windows`, or an (N, R) tensor of them); ``inputs`` is then
    the pool of every frame the windows reach (it may be longer than the N samples), and likewise
    ``val_windows`` for ``val_inputs``.
    A method that looks at the image (``InputSpec.images``) gets each sample's crop from
    ``context`` (and ``val_context``), row for row with ``targets``; its model is called as
    ``model(inputs, context)``.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    val_inputs: torch.Tensor
    val_targets: torch.Tensor
    aux_targets: torch.Tensor | None = None
    windows: Windows | torch.Tensor | None = None
    val_windows: Windows | torch.Tensor | None = None
    context: ImageContext | None = None
    val_context: ImageContext | None = None

    def batch_context(self, index: torch.Tensor) -> ImageContext | None:
        """The samples' image context (None for a method that does not look at the image)."""
        return self.context.take(index) if self.context is not None else None

    def batch_inputs(self, index: torch.Tensor) -> torch.Tensor:
        """The samples' inputs: (B, J, 2), or (B, R, J, 2) windows."""
        return self.inputs[self.windows[index]] if self.windows is not None else self.inputs[index]


@dataclass
class FitResult:
    """What a finished run reports: its length, cost and selected weights (``log``: its curve rows)."""

    epochs_run: int
    train_seconds: float
    samples_per_s: float
    selected_epoch: int
    state_dict: dict
    steps: int = 0
    samples_seen: int = 0
    core_seconds: float = 0.0
    log: list = dataclasses.field(default_factory=list)


#: torch's Adam/AdamW implementations and the options that pick them: "default" (torch's choice:
#: for-loop on the CPU, foreach on CUDA), "for-loop" (one parameter at a time), "foreach" (the
#: parameters' updates batched per operation), "fused" (one kernel per update).
_IMPLEMENTATION_OPTIONS = {"default": {}, "for-loop": {"foreach": False}, "foreach": {"foreach": True},
                           "fused": {"fused": True}}
OPTIMIZER_IMPLEMENTATIONS = tuple(_IMPLEMENTATION_OPTIONS)


def make_optimizer(model: torch.nn.Module, schedule: Schedule, implementation: str = "default"
                   ) -> torch.optim.Optimizer:
    """The schedule's Adam or AdamW over the trainable parameters, in one of
    :data:`OPTIMIZER_IMPLEMENTATIONS` (the same update; they differ in speed and in float rounding)."""
    if implementation not in OPTIMIZER_IMPLEMENTATIONS:
        raise ValueError(f"optimizer implementation {implementation!r}, expected one of {OPTIMIZER_IMPLEMENTATIONS}")
    params = [p for p in model.parameters() if p.requires_grad]
    kind = torch.optim.AdamW if schedule.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=schedule.lr, weight_decay=schedule.weight_decay, amsgrad=schedule.amsgrad,
                **_IMPLEMENTATION_OPTIONS[implementation])


def learning_rate(schedule: Schedule, step: int, epoch: int, total_steps: int = 1) -> float:
    """The lr of (0-based) ``step``: a linear warm-up over the first ``warmup`` share of
    ``total_steps`` (``lr * (step + 1) / warmup_steps``), then a step decay ``lr * decay ** n``
    counting steps or completed epochs, where ``n`` decays have happened (the first at
    ``lr_decay_first``, then every ``lr_decay_every``), or a cosine or a straight line from ``lr``
    to 0 over the steps after the warm-up."""
    warmup_steps = int(round(schedule.warmup * total_steps))
    if step < warmup_steps:
        return schedule.lr * (step + 1) / warmup_steps
    if schedule.lr_decay_unit in ("cosine", "linear"):
        done = min(step - warmup_steps, total_steps - warmup_steps) / max(total_steps - warmup_steps, 1)
        shape = 0.5 * (1.0 + math.cos(math.pi * done)) if schedule.lr_decay_unit == "cosine" else 1.0 - done
        return schedule.lr * shape
    count = step if schedule.lr_decay_unit == "step" else epoch
    first = schedule.lr_decay_every if schedule.lr_decay_first is None else schedule.lr_decay_first
    decays = 0 if count < first else 1 + (count - first) // schedule.lr_decay_every
    return schedule.lr * schedule.lr_decay ** decays


@torch.no_grad()
def predict(model: torch.nn.Module, codec: Codec, inputs: torch.Tensor, batch_size: int = 256,
            flip_test: bool = False, bf16_cpu: bool = False, windows: Windows | torch.Tensor | None = None,
            context: ImageContext | None = None) -> torch.Tensor:
    """(N, J, 2) screen-normalised inputs on the model's device -> (N, J, 3) root-relative mm
    (float32); with ``windows`` (M, R), the M windows of rows of ``inputs`` -> (M, J, 3); with
    ``context``, each row's image (a method that looks at it).

    ``batch_size`` 256: on the 2-core CPU the graph networks run 2-3.6x faster than at 4096 (their
    activations leave the cache) and the others within 10 % of their best (benchmarks/README.md)."""
    model.eval()
    outputs = []
    count = len(windows) if windows is not None else len(inputs)
    for start in range(0, count, batch_size):
        batch = inputs[windows[start:start + batch_size]] if windows is not None else inputs[start:start + batch_size]
        seen = context.take(slice(start, start + batch_size)) if context is not None else None
        with autocast(batch.device, bf16_cpu):
            pred = codec.decode_outputs(_forward(model, codec.encode_inputs(batch), seen).float())
            if flip_test:
                mirrored = seen.mirrored() if seen is not None else None
                flipped = codec.decode_outputs(_forward(model, codec.encode_inputs(codec.mirror_inputs(batch)),
                                                        mirrored).float())
                pred = 0.5 * (pred + codec.mirror_outputs(flipped))
        outputs.append(pred - pred[:, :1])
    return torch.cat(outputs)


@torch.no_grad()
def predict_runs(model: torch.nn.Module, codec: Codec, inputs: torch.Tensor, runs: Sequence[np.ndarray],
                 flip_test: bool = False, bf16_cpu: bool = False) -> torch.Tensor:
    """A temporal model's predictions for every row of whole runs: (N, J, 2) inputs and each run's
    rows in frame order -> (N, J, 3) root-relative mm. Each run is edge-padded by half the
    receptive field and goes through ``model.forward_sequence`` at once (the dilated form)."""
    model.eval()
    field = model.receptive_field
    out = torch.empty(*inputs.shape[:-1], 3, device=inputs.device)
    for rows in runs:
        rows_t = torch.as_tensor(rows, device=inputs.device)
        padded = padded_run(inputs[rows_t], field)[None]
        if flip_test:  # the run and its mirror image in one batch of two
            padded = torch.cat([padded, codec.mirror_inputs(padded)])
        with autocast(padded.device, bf16_cpu):
            both = codec.decode_outputs(model.forward_sequence(codec.encode_inputs(padded)).float())
        pred = 0.5 * (both[0] + codec.mirror_outputs(both[1])) if flip_test else both[0]
        out[rows_t] = pred - pred[:, :1]
    return out


def _forward(model: torch.nn.Module, inputs: torch.Tensor, context: ImageContext | None) -> torch.Tensor:
    """The model's output for encoded inputs, given their image context when it has one."""
    return model(inputs) if context is None else model(inputs, context)


def mean_joint_error_mm(predicted: torch.Tensor, targets: torch.Tensor) -> float:
    """MPJPE (mm) of root-aligned (N, J, 3) predictions against root-relative targets."""
    return float(torch.linalg.vector_norm(predicted - targets, dim=-1).mean())


def evaluation_steps(total_steps: int, steps_per_epoch: int, curve_points: int) -> set[int]:
    """Steps (1-based counts of completed steps) after which the curve is logged: every epoch's
    end, plus ``curve_points`` evenly spaced points over the run (so a short run still has a curve)."""
    ends = {steps_per_epoch * (e + 1) for e in range(total_steps // steps_per_epoch)}
    spaced = {max(1, round(total_steps * k / curve_points)) for k in range(1, curve_points + 1)} if curve_points else set()
    return ends | spaced | {total_steps}


def fit(model: Lifter, codec: Codec, data: TrainArrays, schedule: Schedule, *, seed: int,
        checkpoint_path: Path, log_path: Path, snapshot: dict, select: str = "last", progress: bool = True,
        monitor: Callable[[torch.nn.Module], dict] | None = None, curve_points: int = 0, bf16_cpu: bool = False,
        log_preamble: Sequence[dict] = (), on_point: Callable[[dict], None] | None = None,
        ranks: Ranks = SINGLE, max_steps: int | None = None, optimizer_implementation: str = "default"
        ) -> FitResult:
    """Train ``model`` with ``schedule``; resume from ``checkpoint_path`` when it matches ``snapshot``.

    Args:
        model: on its device; maps encoded (B, J, 2) inputs to (B, J, 3) outputs.
        codec: the method's codec, on the same device.
        data: training and (possibly empty) validation arrays, on the same device.
        schedule: the (possibly budgeted) schedule.
        seed: seeds Python, numpy and torch; each epoch's shuffling derives from it.
        checkpoint_path, log_path: written after every epoch (the log also at every curve point).
        snapshot: the params this run was configured with (a mismatch discards the checkpoint).
        select: "last" (default) or "val_best" (the curve point with the lowest validation MPJPE).
        monitor: ``monitor(model) -> {"test_p1_mm": float, ...}``, called at every curve point
            (:func:`evaluation_steps`) and logged; never used for selection.
        curve_points: evenly spaced curve points over the run, besides every epoch's end.
        bf16_cpu: bf16 autocast on the CPU too (on CUDA it is always on).
        log_preamble: rows written before this run's (e.g. earlier seeds' curves in the same CSV).
        on_point: called with every new curve row (after the log is written).
        ranks: this process's place in a data-parallel run (:mod:`lifting.distributed`): each
            rank trains on its shard of every global batch of ``schedule.batch_size``, the
            gradients are summed, and only rank 0 scores curve points and writes files.
        max_steps: stop after this many optimizer steps (a benchmark's timed cut of a run: the
            schedule and the data path stay the full run's; the cut epoch writes no checkpoint, and
            the result counts the steps and samples actually trained). None: the whole schedule.
        optimizer_implementation: the optimizer's implementation (:data:`OPTIMIZER_IMPLEMENTATIONS`).
    """
    seed_everything(seed)
    distributed.synchronise_batch_norm(model, ranks)
    optimizer = make_optimizer(model, schedule, optimizer_implementation)
    start_epoch, step, train_seconds, best = 0, 0, 0.0, (math.inf, -1, None)
    log_rows: list[dict] = []
    resumed = _load_checkpoint(checkpoint_path, snapshot)
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        torch.set_rng_state(resumed["rng"])
        start_epoch, step, train_seconds = resumed["epoch"] + 1, resumed["step"], resumed["train_seconds"]
        best = (resumed["best_val"], resumed["best_epoch"], resumed["best_model"])
        log_rows = resumed["log"]
        log.info("%s: resuming after epoch %d of %d", checkpoint_path, start_epoch, schedule.epochs)
    distributed.check_same_start(start_epoch, checkpoint_path, ranks)
    distributed.broadcast_parameters(model, ranks)
    if ranks.rank > 0:  # each rank's own dropout masks
        torch.manual_seed(seed * 1_000_003 + ranks.rank * 1_009 + start_epoch)

    num_samples = len(data.targets)
    train_flip = codec.spec.train_flip
    # upstream's temporal epoch: every sample twice, plain and mirrored (else a random mirror each)
    pairs = train_flip and schedule.mirrored_pairs
    epoch_samples = 2 * num_samples if pairs else num_samples
    steps_per_epoch = math.ceil(epoch_samples / schedule.batch_size)
    total_steps = steps_per_epoch * schedule.epochs
    curve_at = evaluation_steps(total_steps, steps_per_epoch, curve_points)
    paper_clock = (schedule.paper_epochs or schedule.epochs) / schedule.epochs
    # core-seconds count every process's cores (or GPUs)
    threads = (torch.get_num_threads() if data.inputs.device.type == "cpu" else 1) * ranks.world_size
    cut_samples = 0  # samples trained in this call, for a run cut by max_steps
    for epoch in range(start_epoch, schedule.epochs):
        model.train()
        model.start_epoch(epoch, schedule.epochs)
        shuffle = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(epoch_samples, generator=shuffle).to(data.inputs.device)
        mirror = (torch.rand(num_samples, generator=shuffle) < 0.5).to(data.inputs.device) \
            if train_flip and not pairs else None
        started, loss_sum, loss_count, point_seconds = time.perf_counter(), 0.0, 0, 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{schedule.epochs}",
                   disable=not (progress and ranks.writes),
                   unit="batch", leave=False)
        for batch_index in bar:
            if step == max_steps:
                break
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(schedule, step, epoch, total_steps)
            model.set_epoch_progress((epoch + batch_index / steps_per_epoch) * paper_clock)
            batch = order[batch_index * schedule.batch_size:(batch_index + 1) * schedule.batch_size]
            index = distributed.shard(batch, ranks)
            if pairs:  # positions num_samples.. of the epoch are the mirrored copies
                flip, index = index >= num_samples, index % num_samples
            else:  # a random half of the batch
                flip = mirror[index] if mirror is not None else None
            inputs, targets, context = data.batch_inputs(index), data.targets[index], data.batch_context(index)
            if flip is not None:  # 2D and 3D (and image), left and right swapped
                inputs = torch.where(flip.view(-1, *[1] * (inputs.dim() - 1)), codec.mirror_inputs(inputs), inputs)
                targets = torch.where(flip[:, None, None], codec.mirror_outputs(targets), targets)
                context = context.where(flip, context.mirrored()) if context is not None else None
            inputs, targets = codec.encode_inputs(inputs), codec.encode_targets(targets)
            with autocast(inputs.device, bf16_cpu):
                aux = codec.encode_targets(data.aux_targets[index]) if data.aux_targets is not None else None
                loss = model.loss(inputs, targets, schedule, aux_targets=aux, context=context)
            optimizer.zero_grad(set_to_none=True)
            if ranks.world_size > 1:  # each rank's loss weighted by its share of the global batch
                loss = loss * (len(index) / len(batch))
            loss.backward()
            distributed.sum_gradients(model, ranks)
            loss = distributed.global_sum(loss, ranks)
            if schedule.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
            optimizer.step()
            step += 1
            cut_samples += len(batch)
            loss_sum, loss_count = loss_sum + loss.detach().item(), loss_count + 1
            if step in curve_at and ranks.writes:
                seconds = time.perf_counter() - started
                train_seconds += seconds
                point_seconds += seconds
                row, val_mpjpe = _curve_row(model, codec, data, monitor, step, steps_per_epoch, epoch_samples, schedule,
                                            seed, loss_sum / loss_count, train_seconds * threads, seconds, loss_count)
                if val_mpjpe < best[0]:
                    best = (val_mpjpe, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
                log_rows.append(row)
                write_log([*log_preamble, *log_rows], log_path)
                if on_point is not None:
                    on_point(row)
                model.train()
                loss_sum, loss_count, started = 0.0, 0, time.perf_counter()
                bar.set_postfix(test_p1=row["test_p1_mm"], loss=row["train_loss"])
        seconds = time.perf_counter() - started
        train_seconds += seconds
        if step == max_steps:
            break
        if not ranks.writes:
            continue
        _save_checkpoint(checkpoint_path, model, optimizer, epoch, step, train_seconds, best, snapshot, log_rows)
        if progress:
            row = log_rows[-1]
            print(f"epoch {epoch + 1}/{schedule.epochs}: loss {row['train_loss']:.4f}, test P1 (logged only) "
                  f"{row['test_p1_mm']} mm, {epoch_samples / (point_seconds + seconds):.0f} samples/s", flush=True)

    if ranks.writes:
        write_log([*log_preamble, *log_rows], log_path)  # also when a finished run is resumed (DVC deletes the log)
    if step == max_steps and step < total_steps:
        return FitResult(epoch, train_seconds, cut_samples / max(train_seconds, 1e-9), epoch, model.state_dict(),
                         steps=step, samples_seen=cut_samples, core_seconds=train_seconds * threads, log=log_rows)
    epochs_run = schedule.epochs
    if select == "val_best" and best[2] is not None:
        selected_epoch, state = best[1] + 1, best[2]
    else:
        selected_epoch, state = epochs_run, model.state_dict()
    model.load_state_dict(state)
    return FitResult(epochs_run, train_seconds, epochs_run * epoch_samples / max(train_seconds, 1e-9),
                     selected_epoch, state, steps=total_steps, samples_seen=epochs_run * epoch_samples,
                     core_seconds=train_seconds * threads, log=log_rows)


def _curve_row(model, codec, data: TrainArrays, monitor, step: int, steps_per_epoch: int, epoch_samples: int,
               schedule: Schedule, seed: int, train_loss: float, core_seconds: float, seconds: float,
               steps: int) -> tuple[dict, float]:
    """One curve point: the log row and the validation MPJPE (inf without a validation split)."""
    val_mpjpe = mean_joint_error_mm(predict(model, codec, data.val_inputs, windows=data.val_windows,
                                            context=data.val_context), data.val_targets) if len(data.val_targets) else math.inf
    logged = monitor(model) if monitor is not None else {}
    samples = (step // steps_per_epoch) * epoch_samples + (step % steps_per_epoch) * schedule.batch_size
    row = {"seed": seed, "epoch": round(step / steps_per_epoch, 3), "step": step, "samples_seen": samples,
           "core_seconds": round(core_seconds, 1), "train_loss": round(train_loss, 6),
           "test_p1_mm": round(logged["test_p1_mm"], 2) if "test_p1_mm" in logged else "",
           "val_mpjpe_mm": round(val_mpjpe, 2) if math.isfinite(val_mpjpe) else "",
           "lr": learning_rate(schedule, step - 1, (step - 1) // steps_per_epoch, steps_per_epoch * schedule.epochs),
           "seconds": round(seconds, 2), "samples_per_s": round(steps * schedule.batch_size / max(seconds, 1e-9), 1)}
    return row, val_mpjpe


def _save_checkpoint(path: Path, model, optimizer, epoch, step, train_seconds, best, snapshot, log_rows) -> None:
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                    "step": step, "train_seconds": train_seconds, "rng": torch.get_rng_state(),
                    "best_val": best[0], "best_epoch": best[1], "best_model": best[2], "snapshot": snapshot,
                    "log": log_rows}, tmp)


def _load_checkpoint(path: Path, snapshot: dict) -> dict | None:
    """The checkpoint at ``path`` if it was written for the same params, else None."""
    if not path.exists():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a torn or foreign file: start afresh rather than fail
        log.warning("%s: checkpoint unreadable, starting over", path)
        return None
    if not isinstance(checkpoint, dict) or checkpoint.get("snapshot") != snapshot or "log" not in checkpoint:
        log.info("%s: checkpoint of other params or code, starting over", path)
        return None
    return checkpoint


def write_log(rows: list[dict], path: Path) -> None:
    write_csv(rows, path, LOG_COLUMNS)
