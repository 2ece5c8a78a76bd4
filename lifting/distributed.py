"""Data-parallel training over processes started by ``torchrun`` (one per GPU, or several CPU processes).

``torchrun --nproc_per_node=N --no-python -- python -m stages.train ...`` starts N copies of the
training stage (the ``--`` keeps torchrun from reading the stage's ``--log`` as its own); each
reads its place from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and
joins one process group (NCCL on CUDA, gloo on the CPU). The training loop (:func:`lifting.train.fit`)
then keeps one global batch of the schedule's size: every rank draws the same seeded permutation
of the whole in-memory training set each epoch and takes every ``world_size``-th sample of each
global batch (:func:`shard`), so no sample is seen twice and the union over ranks is exactly the
batch a single process would take. Each rank weights its loss by its share of the global batch,
the gradients are summed over ranks (:func:`sum_gradients`), so every step equals the
single-process step on the same global batch up to float rounding.

BatchNorm: the statistics of a training batch are taken over the global batch, not each rank's
shard (:class:`lifting.models.norm.BatchNorm1d` all-reduces its sums when :func:`synchronise_batch_norm`
switched it on), again as a single process computes them. Dropout masks are drawn per rank, from
a stream seeded by the run's seed and the rank: with dropout, a multi-process run is a different
(equally valid) random draw from a single-process one. Only rank 0 writes checkpoints, logs and
the model file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lifting.models.norm import BatchNorm1d


@dataclass(frozen=True)
class Ranks:
    """This process's place among ``world_size`` training processes (``rank`` 0 writes the files)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def writes(self) -> bool:
        """True for the one process that writes checkpoints, logs and the model file."""
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> Ranks:
        """The place torchrun gave this process (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); a single
        process outside torchrun."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))

    def device(self) -> torch.device:
        """This rank's GPU when CUDA is present, else the CPU."""
        return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")

    def join(self) -> None:
        """Join the process group (NCCL on CUDA, gloo on the CPU); nothing for a single process."""
        if self.world_size > 1 and not dist.is_initialized():
            if torch.cuda.is_available():
                torch.cuda.set_device(self.local_rank)
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")

    def leave(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


SINGLE = Ranks()


def check_same_start(start_epoch: int, checkpoint_path, ranks: Ranks) -> None:
    """RuntimeError unless every rank resumes from the same epoch (each reads the checkpoint that
    rank 0 wrote, so its folder must be visible to every rank: one machine or a shared file system)."""
    if ranks.world_size == 1:
        return
    first = torch.tensor([start_epoch])
    dist.broadcast(first, src=0)
    if int(first) != start_epoch:
        raise RuntimeError(f"{checkpoint_path}: rank 0 resumes at epoch {int(first)}, rank {ranks.rank} at "
                           f"{start_epoch}; put the stage's output folder on storage every rank sees, or delete "
                           "the checkpoint to start over")


def shard(batch_index: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """This rank's samples of one global batch: every ``world_size``-th index, from ``rank`` on."""
    return batch_index[ranks.rank::ranks.world_size]


def broadcast_parameters(model: torch.nn.Module, ranks: Ranks) -> None:
    """Every rank starts from rank 0's parameters and buffers."""
    if ranks.world_size > 1:
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)


def sum_gradients(model: torch.nn.Module, ranks: Ranks) -> None:
    """Sum every parameter's gradient over the ranks (each rank's loss already carries its share
    of the global batch, so the sum is the gradient of the global batch's loss)."""
    if ranks.world_size == 1:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if grads:
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()


def global_sum(value: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """A (detached) tensor summed over the ranks."""
    if ranks.world_size > 1:
        value = value.detach().clone()
        dist.all_reduce(value)
    return value


def synchronise_batch_norm(model: torch.nn.Module, ranks: Ranks) -> None:
    """Let every BatchNorm of the model take its training statistics over the global batch."""
    for module in model.modules():
        if isinstance(module, BatchNorm1d):
            module.across_ranks = ranks.world_size > 1
