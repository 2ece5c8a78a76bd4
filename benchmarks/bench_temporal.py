"""Temporal methods on the CPU: our sequence path against an upstream-style loop, same model.

Usage (repository root, venv active, after `dvc repro align`)::

    python -m benchmarks.bench_temporal --threads 2 --out benchmarks/results/temporal-cpu.json

Both loops train and run the same network (Pose3D-RIE stage 3, latent 256, 41.8M parameters, and
VideoPose3D, 16.95M; 243 frames) with the same parameters, batch, loss (MPJPE), optimizer and
train-time flip, on the embedded training data:

* ``ours``: the pipeline's path. The 2D of every training frame is one in-memory tensor; a batch
  of windows is one gather through the precomputed window index
  (:class:`lifting.data.sequences.SequenceIndex`), flipped in place where drawn; evaluation runs
  each test run once through ``forward_sequence`` (:func:`lifting.train.predict_runs`).
* ``upstream-style``: what VideoPose3D's ``ChunkedGenerator`` / ``UnchunkedGenerator`` do (and
  Pose3D-RIE inherits), written here from their description: per sample, numpy slicing of its
  sequence, ``np.pad(..., "edge")`` at the ends, a per-sample flip with joint swaps, the batch
  assembled in numpy and converted with ``torch.from_numpy(...).float()`` every step; evaluation
  pads each sequence in numpy and runs it with its mirrored copy as a batch of two. The network
  runs the way upstream computes it (:func:`upstream_model`): the strided form as strided
  ``conv1d`` on ``(B, C, T)`` and ``nn.Dropout`` (``bernoulli_``), with the same parameters.

``ours bf16 autocast`` is our loop under bf16 autocast (speed only: whether it keeps the
accuracy is a separate measurement). Training = forward + MPJPE + backward + optimizer step at ``--batch``; each measurement is
``--steps`` steps after one warm-up step, repeated ``--rounds`` times with the loops interleaved;
the median is reported. ``matmul_gflops`` is a large fp32 GEMM on the same threads, for scale.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lifting import train
from lifting.codec import Codec
from lifting.data.split import Protocol, load_split
from lifting.data.sequences import SequenceIndex
from lifting.models import rie, videopose3d
from lifting.models.dropout import Dropout
from lifting.models.tcn import TemporalConvNet
from lifting.skeleton import H36M17

from benchmarks.runs import command_line


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size ** 3 * repeats / (time.perf_counter() - started) / 1e9


class UpstreamStyleBatches:
    """Per-sample numpy slicing, edge padding and flipping, then a numpy batch (ChunkedGenerator style)."""

    def __init__(self, runs_2d: list[np.ndarray], runs_3d: list[np.ndarray], field: int) -> None:
        self.runs_2d, self.runs_3d, self.pad = runs_2d, runs_3d, field // 2
        flip = H36M17.flip_permutation()
        self.flip = np.asarray(flip)

    def batch(self, pairs: list[tuple[int, int, bool]]) -> tuple[torch.Tensor, torch.Tensor]:
        batch_2d = np.empty((len(pairs), 2 * self.pad + 1, 17, 2), dtype=np.float64)
        batch_3d = np.empty((len(pairs), 17, 3), dtype=np.float64)
        for i, (run, frame, flip) in enumerate(pairs):
            seq = self.runs_2d[run]
            start, end = frame - self.pad, frame + self.pad + 1
            low, high = max(start, 0), min(end, len(seq))
            window = seq[low:high]
            if low != start or high != end:
                window = np.pad(window, ((low - start, end - high), (0, 0), (0, 0)), "edge")
            pose = self.runs_3d[run][frame]
            if flip:
                window = window[:, self.flip].copy()
                window[..., 0] *= -1
                pose = pose[self.flip].copy()
                pose[..., 0] *= -1
            batch_2d[i], batch_3d[i] = window, pose
        return torch.from_numpy(batch_2d).float(), torch.from_numpy(batch_3d).float()


def _conv_strided(self: TemporalConvNet, x: torch.Tensor) -> torch.Tensor:
    """Upstream's "Optimize1f" form: strided convolutions on channels-major ``(B, C, T)``."""
    width = self.filter_widths[0]
    x = self._act(self.expand_bn(F.conv1d(x, self.expand_conv.weight, stride=width)))
    for width, conv, bn, point, point_bn in zip(self.filter_widths[1:], self.block_convs, self.block_bns,
                                                self.point_convs, self.point_bns):
        residual = x[:, :, width // 2::width]
        h = self._act(bn(F.conv1d(x, conv.weight, stride=width)))
        x = residual + self._act(point_bn(point(h)))
    return self.shrink(x)


@contextmanager
def upstream_model(model: torch.nn.Module):
    """Run ``model`` (same parameters) as upstream computes it: strided conv1d, ``nn.Dropout``."""
    swapped = []
    for module in model.modules():
        for name, child in list(module.named_children()):
            if isinstance(child, Dropout):
                setattr(module, name, torch.nn.Dropout(child.p))
                swapped.append((module, name, child))
        if isinstance(module, TemporalConvNet):
            module._strided = types.MethodType(_conv_strided, module)
    try:
        yield model
    finally:
        for module, name, child in swapped:
            setattr(module, name, child)
        for module in model.modules():
            if isinstance(module, TemporalConvNet):
                del module._strided


def mpjpe(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(predicted - target, dim=-1).mean()


def time_steps(step, steps: int) -> float:
    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def bench_model(name: str, model: torch.nn.Module, data, batch: int, steps: int, rounds: int, eval_runs: int) -> list:
    field = model.receptive_field
    codec = Codec(videopose3d.INPUT_SPEC, data.input_mean, data.input_std, data.target_mean, data.target_std)
    index = SequenceIndex.from_meta(data.train_meta)
    pool, targets = torch.as_tensor(data.train_inputs), torch.as_tensor(data.train_targets)
    runs = index.runs()
    run_of, frame_of = np.empty(len(pool), dtype=np.int64), np.empty(len(pool), dtype=np.int64)
    for k, rows in enumerate(runs):
        run_of[rows], frame_of[rows] = k, np.arange(len(rows))
    upstream = UpstreamStyleBatches([data.train_inputs[r].astype(np.float64) for r in runs],
                                    [data.train_targets[r].astype(np.float64) for r in runs], field)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, amsgrad=True)
    rng = np.random.default_rng(0)

    def draw():
        rows, flips = rng.choice(len(pool), batch, replace=False), rng.uniform(size=batch) < 0.5
        return rows, flips

    def optimise(x, y, bf16: bool = False):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = mpjpe(model(codec.encode_inputs(x)).float(), codec.encode_targets(y))
        loss.backward()
        optimizer.step()

    def ours(bf16: bool = False):
        rows, flips = draw()
        rows_t, flip_t = torch.as_tensor(rows), torch.as_tensor(flips)
        x = pool[torch.as_tensor(index.window_rows(rows, field))]
        y = targets[rows_t]
        x = torch.where(flip_t[:, None, None, None], codec.mirror_inputs(x), x)
        y = torch.where(flip_t[:, None, None], codec.mirror_outputs(y), y)
        optimise(x, y, bf16)

    def upstream_style():
        rows, flips = draw()
        with upstream_model(model):
            optimise(*upstream.batch([(int(run_of[r]), int(frame_of[r]), bool(f)) for r, f in zip(rows, flips)]))

    test_index = SequenceIndex.from_meta(data.test_meta)
    test_runs = test_index.runs()[:eval_runs]
    test_pool = torch.as_tensor(data.test_inputs)
    frames = sum(len(r) for r in test_runs)

    def ours_eval():
        train.predict_runs(model, codec, test_pool, test_runs, flip_test=True)

    def upstream_eval():
        model.eval()
        pad, flip = field // 2, H36M17.flip_permutation()
        with torch.no_grad(), upstream_model(model):
            for rows in test_runs:
                seq = np.pad(data.test_inputs[rows].astype(np.float64), ((pad, pad), (0, 0), (0, 0)), "edge")
                mirrored = seq[:, flip].copy()
                mirrored[..., 0] *= -1
                model.forward_sequence(torch.from_numpy(np.stack([seq, mirrored])).float())

    measured = {key: [] for key in (("ours", "train"), ("ours bf16 autocast", "train"), ("upstream-style", "train"),
                                    ("ours", "infer"), ("upstream-style", "infer"))}
    for _ in range(rounds):
        model.train()
        measured["ours", "train"].append(batch / time_steps(ours, steps))
        measured["ours bf16 autocast", "train"].append(batch / time_steps(lambda: ours(bf16=True), steps))
        measured["upstream-style", "train"].append(batch / time_steps(upstream_style, steps))
        measured["ours", "infer"].append(frames / time_steps(ours_eval, 1))
        measured["upstream-style", "infer"].append(frames / time_steps(upstream_eval, 1))
    return speed_rows(name, measured)


def speed_rows(name: str, measured: dict[tuple[str, str], list[float]]) -> list[dict]:
    """One row per (loop, mode) of ``measured`` samples/s rounds: their median and its ratio to the
    upstream style's median in the same mode."""
    medians = {key: statistics.median(values) for key, values in measured.items()}
    return [{"model": name, "loop": loop, "mode": mode, "samples_per_s": round(medians[loop, mode], 1),
             "rounds": [round(v, 1) for v in values],
             "speedup_vs_upstream_style": round(medians[loop, mode] / medians["upstream-style", mode], 2)}
            for (loop, mode), values in measured.items()]


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--threads", type=int, default=2)
    cli.add_argument("--batch", type=int, default=1024, help="the papers' batch")
    cli.add_argument("--steps", type=int, default=2)
    cli.add_argument("--rounds", type=int, default=2)
    cli.add_argument("--eval-runs", type=int, default=8, help="test runs (sequence x camera) per inference pass")
    cli.add_argument("--aligned", default="data/aligned")
    cli.add_argument("--input2d", default="gt")
    cli.add_argument("--out", default="benchmarks/results/temporal-cpu.json")
    args = cli.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = load_split(args.aligned, args.input2d, "h36m17", Protocol())
    results = []
    for name, model in (("rie (stage 3, latent 256)", rie.build(rie.Config(), 17)),
                        ("videopose3d", videopose3d.build(videopose3d.Config(), 17))):
        results += bench_model(name, model, data, args.batch, args.steps, args.rounds, args.eval_runs)
        print(json.dumps(results[-5:], indent=1), flush=True)
    record = {"machine": {"threads": args.threads, "processor": platform.processor() or platform.machine(),
                          "torch": torch.__version__}, "matmul_gflops": round(matmul_gflops(), 1),
              "batch": args.batch, "steps": args.steps, "rounds": args.rounds, "eval_runs": args.eval_runs,
              "command": command_line("benchmarks.bench_temporal", argv), "results": results}
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
