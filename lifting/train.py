"""One training loop for every method, readable top to bottom.

Batches are slices of in-memory tensors (the whole training set lives on the device); there is no
per-sample Dataset/DataLoader collation. CUDA is used when present (with bf16 autocast), the CPU
otherwise, with its thread count set explicitly. One seed seeds everything: the same seed gives
the same weights and metrics on the same machine.

A checkpoint is written atomically after every epoch (model config, weights, optimizer, epoch,
RNG state, snapshot); an interrupted run resumes from it when its snapshot matches. The training
stage puts the params and a digest of the code in the snapshot (``lifting/provenance.py``).
Checkpoints load with ``weights_only=True``. A per-epoch CSV log (loss, validation MPJPE, lr,
seconds, samples/s) is written for ``dvc plots``.

Optional hooks a model may define: ``training_loss(inputs, targets) -> loss`` (a loss in another
space than the (B, J, 3) output, e.g. GridConv's grid cells) and ``set_epoch_progress(epoch)``
(a float, for schedules inside the model such as GridConv's attention temperature). Progress is
given on the paper's clock: a budgeted run of ``E`` of the paper's ``P`` epochs reports
``(epoch + step / steps_per_epoch) * P / E``, so an in-model schedule keeps its share of the run.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lifting.codec import Codec
from lifting.io import atomic_path
from lifting.models.spec import Schedule

LOG_COLUMNS = ("epoch", "train_loss", "val_mpjpe_mm", "lr", "seconds", "samples_per_s")


def pick_device(threads: int) -> torch.device:
    """CUDA when present, else the CPU with ``threads`` intra-op threads."""
    torch.set_num_threads(threads)
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def budgeted_schedule(paper: Schedule, max_epochs: int | None, batch_size: int | None,
                      lr_scale: float = 1.0, cosine: bool = False) -> Schedule:
    """The paper's schedule, or, under a budget, that recipe shortened to ``max_epochs``.

    ``max_epochs=None`` restores the paper's full schedule. Otherwise the paper's optimizer and
    loss are kept; ``batch_size`` (when given) replaces its batch size, its learning rate is
    multiplied by ``lr_scale`` and, with ``cosine``, its step decay is replaced by a cosine decay
    to 0 over the shortened run (a schedule made for hundreds of thousands of steps barely
    decays in a few thousand). The shortened copy remembers the paper's epoch count
    (``paper_epochs``): the loop reports training progress to the model on the paper's clock.
    """
    if max_epochs is None:
        return paper
    shortened = dataclasses.replace(paper, epochs=min(paper.epochs, max_epochs), paper_epochs=paper.epochs,
                                    batch_size=batch_size or paper.batch_size, lr=paper.lr * lr_scale)
    return dataclasses.replace(shortened, lr_decay_unit="cosine") if cosine else shortened


@dataclass
class TrainArrays:
    """Training data already on the device: (N, J, 2) screen-normalised inputs, (N, J, 3) mm targets."""

    inputs: torch.Tensor
    targets: torch.Tensor
    val_inputs: torch.Tensor
    val_targets: torch.Tensor


@dataclass
class FitResult:
    epochs_run: int
    train_seconds: float
    samples_per_s: float
    selected_epoch: int
    state_dict: dict


def make_optimizer(model: torch.nn.Module, schedule: Schedule) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if schedule.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=schedule.lr, weight_decay=schedule.weight_decay, amsgrad=schedule.amsgrad)
    return torch.optim.Adam(params, lr=schedule.lr, weight_decay=schedule.weight_decay, amsgrad=schedule.amsgrad)


def learning_rate(schedule: Schedule, step: int, epoch: int, total_steps: int = 1) -> float:
    """Step decay ``lr * decay ** n`` counting steps or completed epochs, where ``n`` decays have
    happened (the first at ``lr_decay_first``, then every ``lr_decay_every``), or a cosine from
    ``lr`` to 0 over ``total_steps``."""
    if schedule.lr_decay_unit == "cosine":
        return schedule.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    count = step if schedule.lr_decay_unit == "step" else epoch
    first = schedule.lr_decay_every if schedule.lr_decay_first is None else schedule.lr_decay_first
    decays = 0 if count < first else 1 + (count - first) // schedule.lr_decay_every
    return schedule.lr * schedule.lr_decay ** decays


def pose_loss(predicted: torch.Tensor, target: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """The paper's loss on (B, J, 3) tensors in the network's target space."""
    if schedule.loss == "mse":
        loss = torch.mean((predicted - target) ** 2)
    elif schedule.loss == "mpjpe":
        loss = torch.mean(torch.linalg.vector_norm(predicted - target, dim=-1))
    else:
        loss = torch.mean(torch.abs(predicted - target))
    if schedule.l1_weight:
        loss = (1.0 - schedule.l1_weight) * loss + schedule.l1_weight * torch.mean(torch.abs(predicted - target))
    return loss


@torch.no_grad()
def predict(model: torch.nn.Module, codec: Codec, inputs: torch.Tensor, batch_size: int = 4096,
            flip_test: bool = False) -> torch.Tensor:
    """(N, J, 2) screen-normalised inputs on the model's device -> (N, J, 3) root-relative mm (float32)."""
    model.eval()
    outputs = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start:start + batch_size]
        with _autocast(batch.device):
            pred = codec.decode_outputs(model(codec.encode_inputs(batch)).float())
            if flip_test:
                flipped = codec.decode_outputs(model(codec.encode_inputs(codec.mirror_inputs(batch))).float())
                pred = 0.5 * (pred + codec.mirror_outputs(flipped))
        outputs.append(pred - pred[:, :1])
    return torch.cat(outputs)


def mean_joint_error_mm(predicted: torch.Tensor, targets: torch.Tensor) -> float:
    """MPJPE (mm) of root-aligned (N, J, 3) predictions against root-relative targets."""
    return float(torch.linalg.vector_norm(predicted - targets, dim=-1).mean())


def _autocast(device: torch.device):
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def fit(model: torch.nn.Module, codec: Codec, data: TrainArrays, schedule: Schedule, *, seed: int,
        checkpoint_path: Path, log_path: Path, snapshot: dict, select: str = "last",
        progress: bool = True) -> FitResult:
    """Train ``model`` with ``schedule``; resume from ``checkpoint_path`` when it matches ``snapshot``.

    Args:
        model: on its device; maps encoded (B, J, 2) inputs to (B, J, 3) outputs.
        codec: the method's codec, on the same device.
        data: training and validation arrays, on the same device.
        schedule: the (possibly budgeted) schedule.
        seed: seeds Python, numpy and torch; each epoch's shuffling derives from it.
        checkpoint_path, log_path: written after every epoch.
        snapshot: the params this run was configured with (a mismatch discards the checkpoint).
        select: "last" (default) or "val_best" (the epoch with the lowest validation MPJPE).
    """
    seed_everything(seed)
    optimizer = make_optimizer(model, schedule)
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

    num_samples = len(data.inputs)
    steps_per_epoch = math.ceil(num_samples / schedule.batch_size)
    total_steps = steps_per_epoch * schedule.epochs
    paper_clock = (schedule.paper_epochs or schedule.epochs) / schedule.epochs
    for epoch in range(start_epoch, schedule.epochs):
        model.train()
        shuffle = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(num_samples, generator=shuffle).to(data.inputs.device)
        started, loss_sum = time.perf_counter(), 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{schedule.epochs}", disable=not progress,
                   unit="batch", leave=False)
        for batch_index in bar:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(schedule, step, epoch, total_steps)
            if hasattr(model, "set_epoch_progress"):
                model.set_epoch_progress((epoch + batch_index / steps_per_epoch) * paper_clock)
            index = order[batch_index * schedule.batch_size:(batch_index + 1) * schedule.batch_size]
            inputs, targets = codec.encode_inputs(data.inputs[index]), codec.encode_targets(data.targets[index])
            with _autocast(inputs.device):
                if hasattr(model, "training_loss"):
                    loss = model.training_loss(inputs, targets)
                else:
                    loss = pose_loss(model(inputs).float(), targets, schedule)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if schedule.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
            optimizer.step()
            step += 1
            loss_sum += loss.detach().item()
            elapsed = time.perf_counter() - started
            bar.set_postfix(loss=f"{loss_sum / (batch_index + 1):.4f}",
                            samples_s=f"{min(num_samples, (batch_index + 1) * schedule.batch_size) / elapsed:.0f}")
        seconds = time.perf_counter() - started
        train_seconds += seconds
        val_mpjpe = mean_joint_error_mm(predict(model, codec, data.val_inputs), data.val_targets) \
            if len(data.val_inputs) else float("nan")
        if val_mpjpe < best[0]:
            best = (val_mpjpe, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
        log_rows.append({"epoch": epoch + 1, "train_loss": round(loss_sum / steps_per_epoch, 6),
                         "val_mpjpe_mm": round(val_mpjpe, 2), "lr": learning_rate(schedule, step - 1, epoch, total_steps),
                         "seconds": round(seconds, 2), "samples_per_s": round(num_samples / seconds, 1)})
        _write_log(log_rows, log_path)
        _save_checkpoint(checkpoint_path, model, optimizer, epoch, step, train_seconds, best, snapshot, log_rows)
        if progress:
            print(f"epoch {epoch + 1}/{schedule.epochs}: loss {log_rows[-1]['train_loss']:.4f}, "
                  f"val MPJPE {val_mpjpe:.1f} mm, {num_samples / seconds:.0f} samples/s", flush=True)

    _write_log(log_rows, log_path)  # also when a finished run is resumed (DVC deletes the log before a stage)
    epochs_run = schedule.epochs
    if select == "val_best" and best[2] is not None:
        selected_epoch, state = best[1] + 1, best[2]
    else:
        selected_epoch, state = epochs_run, model.state_dict()
    model.load_state_dict(state)
    return FitResult(epochs_run, train_seconds, epochs_run * num_samples / max(train_seconds, 1e-9),
                     selected_epoch, state)


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
        return None
    return checkpoint if checkpoint.get("snapshot") == snapshot and "log" in checkpoint else None


def _write_log(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

