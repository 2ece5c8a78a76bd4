"""What the training benchmarks share: which run they measure and one fresh training of it.

``convergence.py`` and ``lr_search.py`` both name a run (a method, GridConv's SGT variant, a 2D
input) on the command line and train the paper's configuration for the input's kind from scratch,
with checkpoints in a temporary folder that is removed afterwards (a measurement is taken in one
go, never resumed). Pose3D-RIE's later stages start from the weights an earlier stage's benchmark
saved (``--save``, then ``--init``), so its three stages are measured as the chain the pipeline runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

from lifting import train
from lifting.codec import Codec
from lifting.config import BudgetParams, budget_for, budget_key, parse_section
from lifting.errors import DataError
from lifting.data.split import LiftingData, Protocol, load_split
from lifting.models import METHOD_NAMES, method_module
from lifting.models.spec import input_kind
from lifting.runner import build_model, method_config, paper_schedule, receptive_field, train_arrays


def add_run_arguments(cli: argparse.ArgumentParser) -> None:
    """--method, --sgt, --stage, --init, --save, --input2d, --threads, --seed and --aligned."""
    cli.add_argument("--method", required=True, choices=sorted(m for m in METHOD_NAMES if m != "knn"))
    cli.add_argument("--sgt", choices=["handcrafted", "learnable"], help="GridConv's SGT variant")
    cli.add_argument("--stage", type=int, choices=[1, 2, 3],
                     help="Pose3D-RIE's training stage (2 and 3 start from the previous stage's weights: --init)")
    cli.add_argument("--init", type=Path, help="the previous stage's weights, as its benchmark's --save wrote them")
    cli.add_argument("--save", type=Path, help="write the trained weights here (a state dict, and a .json beside it "
                                               "with the run and its cost) for the next stage's --init")
    cli.add_argument("--input2d", default="gt")
    cli.add_argument("--threads", type=int, default=1)
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--aligned", default="data/aligned")


def run_name(args: argparse.Namespace) -> str:
    """The pipeline's name of the run: the method, ``gridconv_<sgt>``, ``rie_stage1``, ``rie_stage2``
    or ``rie`` (Pose3D-RIE's last stage, the pipeline's run ``rie``)."""
    if args.stage is not None and args.method != "rie":
        raise SystemExit("--stage is Pose3D-RIE's")
    if (args.stage or 1) > 1 and args.init is None:
        raise SystemExit(f"Pose3D-RIE's stage {args.stage} starts from stage {args.stage - 1}'s weights: pass --init")
    if args.stage == 3:
        return args.method
    return f"gridconv_{args.sgt}" if args.sgt else f"rie_stage{args.stage}" if args.stage else args.method


def config_overrides(args: argparse.Namespace) -> dict | None:
    """The run's fixed configuration choices: GridConv's SGT variant or RIE's stage."""
    return {"sgt": args.sgt} if args.sgt else {"stage": args.stage} if args.stage else None


def command_line(module: str, argv) -> str:
    """The command that reproduces this measurement (recorded in its results file)."""
    return f"python -m {module} " + shlex.join(sys.argv[1:] if argv is None else argv)


def train_once(method: str, cfg, data: LiftingData, codec, arrays: train.TrainArrays, schedule, *, seed: int,
               device: torch.device, init: dict | None = None, **fit_options) -> train.FitResult:
    """Build ``method`` with ``cfg`` for ``data`` from ``seed`` (and a previous stage's weights
    ``init``, as the pipeline starts a staged method's later stage) and train it with ``train.fit``
    (no resume, no progress bar; ``fit_options`` such as ``monitor`` or ``bf16_cpu`` are passed on)."""
    train.seed_everything(seed)
    model = build_model(method, cfg, data.train_inputs.shape[1], data.surface).to(device)
    if init is not None:
        model.initialise(init)
    with tempfile.TemporaryDirectory(prefix="lifting-benchmark-") as scratch:
        return train.fit(model, codec, arrays, schedule, seed=seed, checkpoint_path=Path(scratch) / "checkpoint.pt",
                         log_path=Path(scratch) / "log.csv", snapshot={}, progress=False, **fit_options)


def read_budget(params: dict, method: str, run: str | None, kind: str) -> BudgetParams:
    """The budget ``run`` of ``method`` trains under for the input ``kind``, as its train stage reads it."""
    return parse_section(BudgetParams, budget_for(params["budget"], budget_key(method, run), kind), "budget")


@dataclasses.dataclass
class BudgetedRun:
    """One run as the pipeline trains it by default: its config, its budgeted schedule, its data and arrays."""

    cfg: object
    schedule: object
    data: LiftingData
    codec: Codec
    arrays: train.TrainArrays
    device: torch.device


def budgeted_run(method: str, config: dict, aligned: str, device: torch.device, input2d: str = "gt") -> BudgetedRun:
    """``method`` (with the fixed ``config`` choices, e.g. ``{"stage": 1}``) on ``aligned``'s ``input2d``,
    configured and budgeted by this repository's params.yaml, with the training arrays built by the
    pipeline's data path (its train stride, a temporal method's windows, HGN's markers) on ``device``."""
    kind = input_kind(input2d)
    setup = method_module(method).PAPER[kind]
    spec = setup.input_spec
    staged = f"rie_stage{config['stage']}" if config.get("stage") in (1, 2) else None
    params = yaml.safe_load(Path("params.yaml").read_text())
    budget = read_budget(params, method, staged, kind)
    cfg = method_config(method, params.get("model", {}), config or None, kind)
    schedule = train.budgeted_schedule(paper_schedule(method, cfg, setup.schedule), budget.max_epochs,
                                       budget.batch_size, budget.lr_scale, budget.decay, budget.warmup)
    data = load_split(aligned, input2d, spec.joint_set,
                      Protocol(train_stride=1 if spec.temporal else budget.train_stride), markers=spec.markers)
    codec = Codec(spec, data.input_mean, data.input_std, data.target_mean, data.target_std).to(device)
    arrays = train_arrays(spec, cfg, data, np.zeros(len(data.train_inputs), dtype=bool), device,
                          field=receptive_field(cfg, spec), stride=budget.train_stride)
    return BudgetedRun(cfg, schedule, data, codec, arrays, device)


def save_stage(path: Path, weights: dict, record: dict) -> None:
    """Write a stage's weights (``path``) and ``record`` (its run, recipe and cost; ``path`` with
    suffix .json) for the next stage's ``--init``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(weights, path)
    path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")


def load_stage(path: Path | None) -> tuple[dict | None, dict]:
    """The weights and record :func:`save_stage` wrote (``(None, {})`` without ``path``)."""
    if path is None:
        return None, {}
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
        record = json.loads(path.with_suffix(".json").read_text())
    except (OSError, RuntimeError, json.JSONDecodeError) as err:
        raise DataError(path, f"not a stage saved by a benchmark's --save ({err})",
                        "re-run the previous stage's benchmark with --save") from None
    return weights, record
