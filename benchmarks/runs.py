"""What the training benchmarks share: which run they measure and one fresh training of it.

``convergence.py`` and ``lr_search.py`` both name a run (a method, GridConv's SGT variant, a 2D
input) on the command line and train the paper's configuration for the input's kind from scratch,
with checkpoints in a temporary folder that is removed afterwards (a measurement is taken in one
go, never resumed).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

import torch

from lifting import train
from lifting.data.split import LiftingData
from lifting.models import METHOD_NAMES
from lifting.runner import build_model


def add_run_arguments(cli: argparse.ArgumentParser) -> None:
    """--method, --sgt, --stage, --input2d, --threads, --seed and --aligned."""
    cli.add_argument("--method", required=True, choices=sorted(m for m in METHOD_NAMES if m != "knn"))
    cli.add_argument("--sgt", choices=["handcrafted", "learnable"], help="GridConv's SGT variant")
    cli.add_argument("--stage", type=int, choices=[1],
                     help="Pose3D-RIE's first training stage (the later ones start from the previous stage's weights, "
                          "which only the pipeline chains)")
    cli.add_argument("--input2d", default="gt")
    cli.add_argument("--threads", type=int, default=1)
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--aligned", default="data/aligned")


def run_name(args: argparse.Namespace) -> str:
    """The pipeline's name of the run: the method, ``gridconv_<sgt>`` or ``rie_stage<k>``."""
    if args.stage is not None and args.method != "rie":
        raise SystemExit("--stage is Pose3D-RIE's")
    return f"gridconv_{args.sgt}" if args.sgt else f"rie_stage{args.stage}" if args.stage else args.method


def config_overrides(args: argparse.Namespace) -> dict | None:
    """The run's fixed configuration choices: GridConv's SGT variant or RIE's stage."""
    return {"sgt": args.sgt} if args.sgt else {"stage": args.stage} if args.stage else None


def command_line(module: str, argv) -> str:
    """The command that reproduces this measurement (recorded in its results file)."""
    return f"python -m {module} " + shlex.join(sys.argv[1:] if argv is None else argv)


def train_once(method: str, cfg, data: LiftingData, codec, arrays: train.TrainArrays, schedule, *, seed: int,
               device: torch.device, **fit_options) -> train.FitResult:
    """Build ``method`` with ``cfg`` for ``data`` from ``seed`` and train it with ``train.fit`` (no
    resume, no progress bar; ``fit_options`` such as ``monitor`` or ``bf16_cpu`` are passed on)."""
    train.seed_everything(seed)
    model = build_model(method, cfg, data.train_inputs.shape[1], data.surface).to(device)
    with tempfile.TemporaryDirectory(prefix="lifting-benchmark-") as scratch:
        return train.fit(model, codec, arrays, schedule, seed=seed, checkpoint_path=Path(scratch) / "checkpoint.pt",
                         log_path=Path(scratch) / "log.csv", snapshot={}, progress=False, **fit_options)
