"""Data-parallel training: torchrun with 2 CPU processes (gloo) equals one process on the same global batch.

The run has no dropout (the only per-rank randomness), so the two runs take the same steps: the
same shuffled global batches, each rank's half of every batch, BatchNorm statistics over the whole
batch, gradients summed. They differ only by float rounding (sums in another order), which Adam's
normalised steps carry forward. Stated tolerances: the logged training losses within 1e-5
(relative); every weight within 1e-4 of its tensor's largest, except the Linear biases right
before a BatchNorm, whose true gradient is zero (Adam steps on rounding noise there, and the
BatchNorm's running mean absorbs them); the test predictions within 0.1 % of the poses' size on
average (measured: about 0.02 %).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml

from lifting.data.split import Protocol, load_split
from lifting.distributed import Ranks, shard
from lifting.models.norm import BatchNorm1d
from lifting.runner import load_method

ROOT = Path(__file__).resolve().parents[1]


def tiny_params(tmp_path: Path) -> Path:
    """params.yaml with one seed of one epoch of Martinez's MLP (no dropout) on every 10th frame of S1."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(seeds=[3], threads=1, curve_points=6)
    params["budget"]["simple_baseline"] = {"max_epochs": 1, "batch_size": 128, "train_stride": 10, "lr_scale": 1.0,
                                           "bf16_cpu": False}
    params["model"]["simple_baseline"].update(hidden=128, dropout=0.0)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def train_command(params: Path, aligned: Path, out: Path) -> list[str]:
    return ["-m", "stages.train", "--params", str(params), "--method", "simple_baseline", "--input2d", "gt",
            "--aligned", str(aligned), "--out", str(out), "--log", str(out / "log.csv")]


def run(command: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_shards_of_a_global_batch_cover_it_once():
    batch = torch.randperm(103)[:37]
    parts = [shard(batch, Ranks(rank, 3)) for rank in range(3)]
    assert sorted(torch.cat(parts).tolist()) == sorted(batch.tolist())
    assert [len(p) for p in parts] == [13, 12, 12]


def test_batch_norm_outside_a_data_parallel_run_is_torchs():
    torch.manual_seed(0)
    ours, theirs = BatchNorm1d(5), torch.nn.BatchNorm1d(5)
    x = torch.randn(64, 5, 3)
    assert torch.equal(ours(x), theirs(x))
    assert torch.equal(ours.running_var, theirs.running_var)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_cross_rank_batch_norm_of_one_rank_matches_torchs_training_step(monkeypatch):
    """With a world of one process, the all-reduced statistics are the batch's own: the layer must
    then compute exactly what nn.BatchNorm1d computes (output, running stats, gradients)."""
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29517")
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        ours, theirs = BatchNorm1d(4, momentum=0.3), torch.nn.BatchNorm1d(4, momentum=0.3)
        ours.across_ranks = True
        x = (torch.randn(50, 4) * 3 + 1).requires_grad_()
        x2 = x.detach().clone().requires_grad_()
        weights = torch.randn(50, 4)
        (ours(x) * weights).sum().backward()
        (theirs(x2) * weights).sum().backward()
        assert torch.allclose(ours(x.detach()), theirs(x2.detach()), atol=1e-5)
        assert torch.allclose(x.grad, x2.grad, atol=1e-5)
        assert torch.allclose(ours.running_mean, theirs.running_mean, atol=1e-6)
        assert torch.allclose(ours.running_var, theirs.running_var, atol=1e-5)
    finally:
        dist.destroy_process_group()


def test_torchrun_on_two_cpu_processes_equals_one_process(tmp_path, aligned_s1_s9):
    params = tiny_params(tmp_path)
    single, parallel = tmp_path / "single", tmp_path / "parallel"
    run(train_command(params, aligned_s1_s9, single))
    # `--no-python -- python`: torchrun would otherwise read the stage's --log as its own --log-dir
    torchrun = ["-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533", "--no-python", "--",
                sys.executable]
    run([*torchrun, *train_command(params, aligned_s1_s9, parallel)])

    one, one_predictors = load_method(single / "model.pt")
    two, two_predictors = load_method(parallel / "model.pt")
    assert (two.record.world_size, two.record.schedule["batch_size"]) == (2, 128)
    assert (one.record.world_size, one.record.samples_seen) == (1, two.record.samples_seen)
    # the training loss at every curve point (train mode, whole-batch BatchNorm) agrees to rounding
    losses = [[float(row["train_loss"]) for row in csv.DictReader(open(folder / "log.csv"))] for folder in (single, parallel)]
    assert len(losses[0]) >= 4 and np.allclose(losses[1], losses[0], rtol=1e-5, atol=0)
    # A Linear's bias right before a BatchNorm has no gradient but rounding noise, which Adam turns
    # into steps: those biases (and the running means that absorb them) drift; every other tensor agrees.
    free = {f"{k.rsplit('.', 2)[0]}.{int(k.rsplit('.', 2)[1]) - 1}.bias" for k in one.state_dicts[0]
            if k.endswith("running_mean")}
    for key, weight in one.state_dicts[0].items():
        if weight.is_floating_point() and key not in free and not key.endswith("running_mean"):
            scale = float(weight.abs().max()) or 1.0
            assert torch.allclose(two.state_dicts[0][key], weight, atol=1e-4 * scale, rtol=0), key
    test = load_split(aligned_s1_s9, "gt", "h36m17", Protocol())
    reference = one_predictors[0](test.test_inputs)
    difference = np.linalg.norm(reference - two_predictors[0](test.test_inputs), axis=-1)
    assert difference.mean() < 1e-3 * np.linalg.norm(reference, axis=-1).mean()  # 0.1 % of the poses' size

    # resuming: the finished checkpoint is found by both ranks and nothing is trained again
    weights = two.state_dicts[0]
    done = run([*torchrun, *train_command(params, aligned_s1_s9, parallel)])
    assert "resuming after epoch 1 of 1" in done.stderr
    again, _ = load_method(parallel / "model.pt")
    assert all(torch.equal(again.state_dicts[0][k], weights[k]) for k in weights)
