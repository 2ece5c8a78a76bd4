"""torch.compile and the optimizer's implementations on the CPU: training and inference samples/s, and accuracy.

Usage (repository root, venv active, after `dvc repro align`)::

    python -m benchmarks.bench_compile --threads 1 --out benchmarks/results/compile-cpu.json

For each single-frame method of the default run (its paper's gt configuration, the pipeline's budget:
batch size, train stride, learning rate) and each variant:

* ``eager``: today's step (torch's default optimizer implementation: a for-loop on the CPU);
* ``foreach`` and ``fused``: the same Adam/AdamW update batched over the parameters, or one kernel;
* ``compiled`` and ``compiled+fused``: the model compiled with ``nn.Module.compile()`` (inductor,
  C++ on the CPU), so that its loss's forward and backward run as generated kernels (HGN's
  ``forward_all`` too, which its loss calls instead of ``__call__``).

Speed: :func:`lifting.train.fit` for ``--warm`` steps (this includes the compilation, reported as
``compile_seconds``: their time beyond as many eager steps), then ``--steps`` more on the same model,
whose samples/s is the figure. Inference: :func:`lifting.train.predict` over ``--infer-rows`` test rows
at its default batch, eager and compiled. Accuracy: every variant trains ``--accuracy-epochs`` epoch(s)
of the budget's schedule from the same seed, and a second eager seed gives the seed-to-seed spread; the
test P1 (action mean, every 10th test frame) after it shows whether a variant learns as eager does.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from lifting import train
from lifting.device import pick_device
from lifting.models import method_module
from lifting.runner import build_model, test_curve_monitor

from benchmarks.runs import budgeted_run
from benchmarks.time_pipeline import machine

RUNS = (("simple_baseline", {}), ("semgcn", {}), ("modulated_gcn", {}), ("hgn", {}), ("gridconv", {"sgt": "learnable"}))
VARIANTS = {"eager": (False, "default"), "foreach": (False, "foreach"), "fused": (False, "fused"),
            "compiled": (True, "default"), "compiled+fused": (True, "fused")}


def fresh_model(method: str, run, seed: int, compiled: bool) -> torch.nn.Module:
    train.seed_everything(seed)
    model = build_model(method, run.cfg, run.data.train_inputs.shape[1], run.data.surface).to(run.device)
    if compiled:
        model.compile()
        if hasattr(model, "forward_all"):  # HGN's loss calls forward_all (its branches' outputs), not __call__
            model.forward_all = torch.compile(model.forward_all)
    return model


def fit(model, run, schedule, optimizer: str, seed: int, max_steps: int | None) -> train.FitResult:
    with tempfile.TemporaryDirectory(prefix="lifting-compile-") as scratch:
        return train.fit(model, run.codec, run.arrays, schedule, seed=seed, checkpoint_path=Path(scratch) / "c.pt",
                         log_path=Path(scratch) / "log.csv", snapshot={}, progress=False, max_steps=max_steps,
                         optimizer_implementation=optimizer)


def measure_speed(method: str, run, compiled: bool, optimizer: str, warm: int, steps: int) -> dict:
    model = fresh_model(method, run, 0, compiled)
    warm_up = fit(model, run, run.schedule, optimizer, 0, warm)
    timed = fit(model, run, run.schedule, optimizer, 0, steps)
    return {"samples_per_s": round(timed.samples_per_s, 1), "warm_seconds": round(warm_up.train_seconds, 2),
            "step_ms": round(1000 * timed.train_seconds / timed.steps, 2)}


def measure_inference(method: str, run, compiled: bool, rows: int) -> float:
    model = fresh_model(method, run, 0, compiled)
    spec = method_module(method).PAPER["gt"].input_spec
    inputs = torch.as_tensor(run.data.test_inputs[:rows], device=run.device)
    with torch.no_grad():
        train.predict(model, run.codec, inputs[:512], flip_test=spec.flip_test)  # compiles
        started = time.perf_counter()
        train.predict(model, run.codec, inputs, flip_test=spec.flip_test)
    return round(rows / (time.perf_counter() - started), 1)


def measure_accuracy(method: str, run, compiled: bool, optimizer: str, seed: int, epochs: int) -> float:
    spec = method_module(method).PAPER["gt"].input_spec
    schedule = dataclasses.replace(run.schedule, epochs=epochs)
    model = fresh_model(method, run, seed, compiled)
    fit(model, run, schedule, optimizer, seed, None)
    monitor = test_curve_monitor(run.data, run.codec, spec.flip_test, 10, run.device)
    return round(monitor(model)["test_p1_mm"], 2)


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--threads", type=int, default=1)
    cli.add_argument("--aligned", default="data/aligned")
    cli.add_argument("--methods", nargs="+", default=[method for method, _ in RUNS])
    cli.add_argument("--warm", type=int, default=10, help="steps that include the compilation")
    cli.add_argument("--steps", type=int, default=100, help="timed steps")
    cli.add_argument("--infer-rows", type=int, default=8192)
    cli.add_argument("--accuracy-epochs", type=int, default=1, help="0: no accuracy check (speed only)")
    cli.add_argument("--out", type=Path, default=Path("benchmarks/results/compile-cpu.json"))
    args = cli.parse_args(argv)
    device = pick_device(args.threads)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {"methods": {}}
    for method, config in RUNS:
        if method not in args.methods:
            continue
        run = budgeted_run(method, config, args.aligned, device)
        row = {"batch_size": run.schedule.batch_size, "optimizer": run.schedule.optimizer, "variants": {}}
        for name, (compiled, optimizer) in VARIANTS.items():
            speed = measure_speed(method, run, compiled, optimizer, args.warm, args.steps)
            speed["test_p1_mm"] = (measure_accuracy(method, run, compiled, optimizer, 0, args.accuracy_epochs)
                                   if args.accuracy_epochs else None)
            row["variants"][name] = speed
            print(method, name, json.dumps(speed), flush=True)
        eager = row["variants"]["eager"]
        for name, speed in row["variants"].items():
            speed["speedup"] = round(speed["samples_per_s"] / eager["samples_per_s"], 2)
            if VARIANTS[name][0]:
                speed["compile_seconds"] = round(speed["warm_seconds"] - args.warm * eager["step_ms"] / 1000, 1)
        row["eager_seed1_test_p1_mm"] = (measure_accuracy(method, run, False, "default", 1, args.accuracy_epochs)
                                         if args.accuracy_epochs else None)
        row["inference_samples_per_s"] = {name: measure_inference(method, run, compiled, args.infer_rows)
                                          for name, compiled in (("eager", False), ("compiled", True))}
        print(method, json.dumps(row["inference_samples_per_s"]), "seed 1:", row["eager_seed1_test_p1_mm"], flush=True)
        results["methods"][method] = row
        row["accuracy_epochs"] = args.accuracy_epochs
        results.update(machine=machine(), threads=args.threads, warm=args.warm, steps=args.steps,
                       torch_compile_backend="inductor")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
