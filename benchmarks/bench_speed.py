"""Every method's training and inference samples/s: our loop against an upstream-style loop, side by side.

Usage (repository root, venv active, after `dvc repro align`)::

    python -m benchmarks.bench_speed --threads 2 --out benchmarks/results/speed-cpu.json

For each single-frame method (the paper's GT configuration, and Modulated GCN's detection one), in
one process, at the paper's batch size, fp32, same model and same parameters:

* ``ours``: the pipeline's own loop, :func:`lifting.train.fit`, on the first ``--steps`` batches'
  worth of training rows held as in-memory tensors (a batch is one index into them; the codec
  normalises on the device); inference is :func:`lifting.train.predict` at its default batch
  (256; flip test where the paper has it), and also swept over batches 64 to 4096.
* ``upstream-style``: what the reference repositories do, written here from their description
  (methods.md): a per-sample ``Dataset`` whose ``__getitem__`` returns one sample's pre-normalised
  numpy arrays, a ``DataLoader`` (shuffled, ``num_workers=0``: on 2 cores worker processes would
  take the model's cores) collating them, ``.float()`` copies per batch, ``nn.Dropout``; the
  model's loss, backward, optimizer step. Inference: a ``DataLoader`` over the test rows at the
  paper's batch, the same flip test. D-GridConv's upstream-style network is the unfold form of the
  same parameters (``benchmarks/bench_gridconv.py``: ``F.pad`` + ``F.unfold`` + GEMM per branch).

The temporal methods (RIE-243, VideoPose3D) are measured by ``bench_temporal.bench_model`` in the
same run (its upstream style: VideoPose3D's chunked generator). Each measurement is repeated
``--rounds`` times with the loops interleaved (a noisy machine hurts both alike); the table gives
the median. ``gflops_per_s`` counts a training step's FLOPs (``torch.utils.flop_counter`` on one
forward + backward) times samples/s; ``share_of_peak`` divides it by the large fp32 GEMM rate
measured in the same run (``matmul_gflops``: fp32 and bf16).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from lifting import train
from lifting.codec import Codec
from lifting.data.split import Protocol, load_split
from lifting.models import method_module, rie, videopose3d
from lifting.runner import build_model, method_config, paper_schedule

from benchmarks.bench_gridconv import UnfoldReference, matmul_gflops
from benchmarks.bench_temporal import bench_model, speed_rows, upstream_model
from benchmarks.runs import command_line

#: (method, paper configuration, batch) measured: the pipeline's single-frame methods at their papers'
#: batch (None), and the MLP also at the default budget's batch 256.
SINGLE_FRAME = (("simple_baseline", "gt", None), ("simple_baseline", "gt", 256), ("semgcn", "gt", None),
                ("modulated_gcn", "gt", None), ("modulated_gcn", "detected", None), ("hgn", "gt", None),
                ("gridconv", "gt", None))


#: Batch sizes of the inference sweep of our ``predict`` (the best of the rounds at each).
INFERENCE_BATCHES = (64, 256, 1024, 4096)


class PerSampleDataset(Dataset):
    """One sample's pre-normalised numpy arrays per ``__getitem__`` (the reference repositories' style)."""

    def __init__(self, *arrays: np.ndarray) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        return tuple(a[index] for a in self.arrays)


def loss_of(model, inputs, targets, aux, schedule) -> torch.Tensor:
    """The method's training loss, as the pipeline computes it (HGN's with the surface markers)."""
    return model.loss(inputs, targets, schedule, aux_targets=aux)


def step_flops(model, codec: Codec, arrays: train.TrainArrays, schedule) -> float:
    """FLOPs of one training sample: one batch's forward + backward, counted, divided by the batch."""
    index = torch.arange(schedule.batch_size)
    aux = None if arrays.aux_targets is None else codec.encode_targets(arrays.aux_targets[index])
    model.train()
    with FlopCounterMode(display=False) as counter:
        loss_of(model, codec.encode_inputs(arrays.inputs[index]), codec.encode_targets(arrays.targets[index]), aux,
                schedule).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / schedule.batch_size


def window_flops(model: torch.nn.Module, windows: int = 4) -> float:
    """FLOPs of one temporal training sample: forward + backward of a few random windows, per window."""
    inputs = torch.randn(windows, model.receptive_field, 17, 2)
    model.train()
    with FlopCounterMode(display=False) as counter:
        model(inputs).float().square().mean().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / windows


def bench_single_frame(method: str, kind: str, batch: int | None, aligned: str, steps: int, rounds: int,
                       test_rows: int) -> list[dict]:
    setup = method_module(method).PAPER[kind]
    cfg = method_config(method, {}, None, kind)
    source = "gt" if kind == "gt" else "noisy"
    data = load_split(aligned, source, setup.input_spec.joint_set, Protocol(), markers=setup.input_spec.markers)
    schedule = paper_schedule(method, cfg, setup.schedule)
    schedule = dataclasses.replace(schedule, epochs=1, batch_size=batch or schedule.batch_size)
    batch = schedule.batch_size
    codec = Codec(setup.input_spec, data.input_mean, data.input_std, data.target_mean, data.target_std)
    count = steps * batch
    rows = np.random.default_rng(0).choice(len(data.train_inputs), count, replace=False)
    markers = None if data.train_markers is None else torch.as_tensor(data.train_markers[rows])
    empty = torch.zeros(0, *data.train_inputs.shape[1:])
    arrays = train.TrainArrays(torch.as_tensor(data.train_inputs[rows]), torch.as_tensor(data.train_targets[rows]),
                               empty, torch.zeros(0, *data.train_targets.shape[1:]), aux_targets=markers)
    torch.manual_seed(0)
    model = build_model(method, cfg, data.train_inputs.shape[1], data.surface)
    reference = UnfoldReference(model) if method == "gridconv" else model
    flops = step_flops(model, codec, arrays, schedule)

    with torch.no_grad():  # the reference repositories normalise the whole set once, in numpy
        encoded = [codec.encode_inputs(arrays.inputs).numpy(), codec.encode_targets(arrays.targets).numpy()]
        if markers is not None:
            encoded.append(codec.encode_targets(markers).numpy())
    loader = DataLoader(PerSampleDataset(*encoded), batch_size=batch, shuffle=True, num_workers=0)
    test = torch.as_tensor(data.test_inputs[:test_rows])
    test_loader = DataLoader(PerSampleDataset(data.test_inputs[:test_rows]), batch_size=batch, num_workers=0)

    def ours_train() -> float:
        with tempfile.TemporaryDirectory(prefix="lifting-speed-") as scratch:
            result = train.fit(model, codec, arrays, schedule, seed=0, checkpoint_path=Path(scratch) / "c.pt",
                               log_path=Path(scratch) / "log.csv", snapshot={}, progress=False)
        return result.samples_per_s

    def upstream_train() -> float:
        optimizer = train.make_optimizer(model, schedule)
        started = time.perf_counter()
        with upstream_model(model):
            reference.train()
            for batch_arrays in loader:
                inputs, targets, *aux = (a.float() for a in batch_arrays)
                loss = loss_of(reference, inputs, targets, aux[0] if aux else None, schedule)
                optimizer.zero_grad()
                loss.backward()
                if schedule.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
                optimizer.step()
        return count / (time.perf_counter() - started)

    def ours_infer(batch_size: int = 256) -> float:  # predict's default batch
        started = time.perf_counter()
        train.predict(model, codec, test, batch_size=batch_size, flip_test=setup.input_spec.flip_test)
        return len(test) / (time.perf_counter() - started)

    def upstream_infer() -> float:
        started = time.perf_counter()
        reference.eval()
        with torch.no_grad():
            for (inputs,) in test_loader:
                inputs = inputs.float()
                pred = codec.decode_outputs(reference(codec.encode_inputs(inputs)))
                if setup.input_spec.flip_test:
                    flipped = codec.decode_outputs(reference(codec.encode_inputs(codec.mirror_inputs(inputs))))
                    pred = 0.5 * (pred + codec.mirror_outputs(flipped))
        return len(test) / (time.perf_counter() - started)

    loops = {("ours", "train"): ours_train, ("upstream-style", "train"): upstream_train,
             ("ours", "infer"): ours_infer, ("upstream-style", "infer"): upstream_infer}
    for run in loops.values():  # warm-up
        run()
    measured = {key: [] for key in loops}
    for _ in range(rounds):
        for key, run in loops.items():
            measured[key].append(run())
    by_batch = {size: round(max(ours_infer(size) for _ in range(rounds)), 1) for size in INFERENCE_BATCHES}
    name = method if kind == "gt" else f"{method} (detection config)"
    results = [{**row, "batch": batch, "train_gflops_per_sample": round(flops / 1e9, 4) if row["mode"] == "train" else None}
               for row in speed_rows(name, measured)]
    next(r for r in results if (r["loop"], r["mode"]) == ("ours", "infer"))["infer_samples_per_s_by_batch"] = by_batch
    return results


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--threads", type=int, default=2)
    cli.add_argument("--steps", type=int, default=20, help="training batches per measurement (single-frame)")
    cli.add_argument("--rounds", type=int, default=3)
    cli.add_argument("--test-rows", type=int, default=4096, help="test frames per inference measurement")
    cli.add_argument("--temporal-steps", type=int, default=2, help="training batches per temporal measurement")
    cli.add_argument("--temporal-rounds", type=int, default=2)
    cli.add_argument("--aligned", default="data/aligned")
    cli.add_argument("--out", default="benchmarks/results/speed-cpu.json")
    args = cli.parse_args(argv)
    torch.set_num_threads(args.threads)
    peaks = {"fp32": round(matmul_gflops(dtype=torch.float32), 1), "bf16": round(matmul_gflops(dtype=torch.bfloat16), 1)}
    results = []
    for method, kind, batch in SINGLE_FRAME:
        results += bench_single_frame(method, kind, batch, args.aligned, args.steps, args.rounds, args.test_rows)
        print(json.dumps(results[-4:]), flush=True)
    data = load_split(args.aligned, "gt", "h36m17", Protocol())
    for name, model in (("rie (stage 3, latent 256)", rie.build(rie.Config(), 17)),
                        ("videopose3d", videopose3d.build(videopose3d.Config(), 17))):
        flops = window_flops(model)
        rows = bench_model(name, model, data, 1024, args.temporal_steps, args.temporal_rounds, eval_runs=8)
        results += [{**row, "batch": 1024, "train_gflops_per_sample": round(flops / 1e9, 4) if row["mode"] == "train"
                     else None} for row in rows if "bf16" not in row["loop"]]
        print(json.dumps(results[-4:]), flush=True)
    for row in results:
        if row.get("train_gflops_per_sample") and row["mode"] == "train":
            row["gflops_per_s"] = round(row["samples_per_s"] * row["train_gflops_per_sample"], 1)
            row["share_of_fp32_peak"] = round(row["gflops_per_s"] / peaks["fp32"], 3)
    record = {"machine": {"threads": args.threads, "processor": platform.processor() or platform.machine(),
                          "torch": torch.__version__, "cuda": torch.cuda.is_available()},
              "matmul_gflops": peaks, "steps": args.steps, "rounds": args.rounds,
              "command": command_line("benchmarks.bench_speed", argv), "results": results}
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
