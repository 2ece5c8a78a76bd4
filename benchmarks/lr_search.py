"""Peak learning rate of a method's budgeted recipe, chosen on a validation split (never the test set).

Usage (repository root, venv active, after `dvc repro align`)::

    python -m benchmarks.lr_search --method semgcn --input2d gt --scales 1 2 3 5

Reads the method's budget from params.yaml (epochs, batch, decay, warm-up; its ``lr_scale`` is
what is searched), holds out 10 % of the training sequences (the pipeline's ``validation_mask``),
trains the paper's configuration for the input's kind once per scale on the rest, and records
the validation MPJPE (mm) after the last step. Results: ``benchmarks/results/lr-search/<run>-<input2d>.json``
with the scale of the lowest validation error (a later search of the same recipe adds its scales).

Pose3D-RIE's stages are searched as a chain on the same split: each stage's search saves the weights
of its best scale (``--save``) and the next stage starts from them (``--init``)::

    python -m benchmarks.lr_search --method rie --stage 1 --scales 3 --tag chain --save /tmp/rie/stage1.pt
    python -m benchmarks.lr_search --method rie --stage 2 --init /tmp/rie/stage1.pt --scales 3 --tag chain \
        --save /tmp/rie/stage2.pt
    python -m benchmarks.lr_search --method rie --stage 3 --init /tmp/rie/stage2.pt --scales 0.01 0.04 0.2 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from lifting import train
from lifting.codec import Codec
from lifting.device import fast_cpu_bf16, pick_device
from lifting.data.split import Protocol, load_split
from lifting.io import write_json
from lifting.models import method_module
from lifting.models.spec import input_kind
from lifting.runner import method_config, paper_schedule, receptive_field, train_arrays, validation_mask

from benchmarks.runs import (add_run_arguments, command_line, config_overrides, load_stage, read_budget, run_name,
                            save_stage, train_once)

RESULTS = Path("benchmarks/results/lr-search")


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(cli)
    cli.add_argument("--scales", type=float, nargs="+", required=True, help="lr multipliers of the paper's lr")
    cli.add_argument("--params", default="params.yaml")
    cli.add_argument("--tag", help="suffix of the results file (e.g. a recipe variant searched with another --params)")
    args = cli.parse_args(argv)

    params = yaml.safe_load(Path(args.params).read_text())
    kind = input_kind(args.input2d)
    run = run_name(args)
    budget = read_budget(params, args.method, run, kind)
    setup = method_module(args.method).PAPER[kind]
    cfg = method_config(args.method, params["model"], config_overrides(args), kind)
    device = pick_device(args.threads)
    field = receptive_field(cfg, setup.input_spec)
    # a temporal method's windows reach every frame: it takes every n-th frame itself
    stride = 1 if field > 1 else budget.train_stride
    data = load_split(args.aligned, args.input2d, setup.input_spec.joint_set, Protocol(train_stride=stride),
                      markers=setup.input_spec.markers)
    val = validation_mask(data.train_meta, params["train"]["val_fraction"])
    codec = Codec(setup.input_spec, data.input_mean, data.input_std, data.target_mean, data.target_std).to(device)
    arrays = train_arrays(setup.input_spec, cfg, data, val, device, field=field, stride=budget.train_stride)
    init, previous = load_stage(args.init)
    trials, best_weights = [], None
    for scale in args.scales:
        schedule = train.budgeted_schedule(paper_schedule(args.method, cfg, setup.schedule), budget.max_epochs, budget.batch_size, scale, budget.decay,
                                           budget.warmup)
        started = time.perf_counter()
        result = train_once(args.method, cfg, data, codec, arrays, schedule, seed=args.seed,
                            device=device, init=init, bf16_cpu=budget.bf16_cpu)
        trials.append({"lr_scale": scale, "lr": schedule.lr, "val_mpjpe_mm": float(result.log[-1]["val_mpjpe_mm"]),
                       "train_seconds": round(time.perf_counter() - started, 1)})
        if best_weights is None or trials[-1]["val_mpjpe_mm"] <= min(t["val_mpjpe_mm"] for t in trials):
            best_weights = result.state_dict
        print(trials[-1], flush=True)
    if args.save:
        save_stage(args.save, best_weights, {"run": run, "benchmark": "lr_search", "lr_scale": min(
            trials, key=lambda t: t["val_mpjpe_mm"])["lr_scale"], "starts_from": previous or None})
    out = RESULTS / f"{run}-{args.input2d}{'-' + args.tag if args.tag else ''}.json"
    recipe = {k: v for k, v in vars(budget).items() if k != "lr_scale"}
    earlier = json.loads(out.read_text()) if out.exists() else {}
    if earlier.get("budget") == recipe:  # the same recipe searched before: keep the other scales' trials
        searched = {t["lr_scale"] for t in trials}
        trials = sorted([t for t in earlier["trials"] if t["lr_scale"] not in searched] + trials,
                        key=lambda t: t["lr_scale"])
    best = min(trials, key=lambda t: t["val_mpjpe_mm"])
    write_json({"run": run, "method": args.method, "input2d": args.input2d, "configuration": kind,
                "budget": recipe, "threads": args.threads,
                "precision": "bf16 autocast" if device.type == "cuda" or (budget.bf16_cpu and fast_cpu_bf16()) else "fp32",
                "validation": f"{int(val.sum())} frames of {len(val)} (10 % of the training sequences), MPJPE after the last step",
                "command": command_line("benchmarks.lr_search", argv),
                **({"starts_from": previous} if previous else {}),
                "trials": trials, "best_lr_scale": best["lr_scale"]}, out)


if __name__ == "__main__":
    main()
