"""Learning curve of one run to its plateau on the embedded data: test P1/P2 against compute.

Usage (repository root, venv active, after `dvc repro align`)::

    python -m benchmarks.convergence --method modulated_gcn --input2d gt --recipe paper --epochs 40
    python -m benchmarks.convergence --method gridconv --sgt learnable --input2d gt --recipe budget \
        --epochs 8 --batch-size 64 --lr-scale 2 --decay cosine --warmup 0.05
    python -m benchmarks.convergence --method rie --stage 1 --input2d gt --recipe budget --epochs 2 \
        --batch-size 256 --decay cosine --test-every 10 --curve-points 8

Trains the paper's configuration for the input's kind on every training frame (no validation
split), one thread by default, and after every epoch (plus ``--curve-points`` evenly spaced
points) scores the test set (every ``--test-every``-th frame of it; 1, the default, is all of it:
a temporal model's windows cost as much to score as to train on): action-mean P1 and P2. The curve is measurement only, never
model selection. Each recipe's curve is merged into
``benchmarks/results/convergence/<run>-<input2d>.json`` (rewritten at every point, so a run cut
short still leaves its curve) together with the plateau (:func:`lifting.convergence.plateau`).
Pose3D-RIE's curve is one training stage's (``--stage``), written as ``rie_stage1-<input2d>.json``,
``rie_stage2-...`` and, for the last stage, ``rie-<input2d>.json`` (the pipeline's run ``rie``).
Stages 2 and 3 start from the weights the previous stage's curve saved at its end (``--save``, then
``--init``), and their curves count the earlier stages' samples and core-seconds, so the last
stage's plateau is the chain's, at the chain's cost::

    python -m benchmarks.convergence --method rie --stage 1 --recipe chain ... --save /tmp/rie/stage1.pt
    python -m benchmarks.convergence --method rie --stage 2 --init /tmp/rie/stage1.pt --recipe chain ... \
        --save /tmp/rie/stage2.pt
    python -m benchmarks.convergence --method rie --stage 3 --init /tmp/rie/stage2.pt --recipe chain ...
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
from pathlib import Path

import numpy as np
import torch

from lifting import convergence, metrics, train
from lifting.codec import Codec
from lifting.device import pick_device
from lifting.data.split import Protocol, load_split
from lifting.images.store import attach_images, images_folder
from lifting.io import write_json
from lifting.models import method_module
from lifting.models.spec import input_kind
from lifting.runner import (ScoredFrames, configuration_label, method_config, paper_schedule, receptive_field,
                            train_arrays)
from lifting.skeleton import get_joint_set

from benchmarks.runs import (add_run_arguments, command_line, config_overrides, load_stage, run_name, save_stage,
                            train_once)

RESULTS = Path("benchmarks/results/convergence")


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(cli)
    cli.add_argument("--recipe", required=True, help="a name for this curve: paper, budget, ...")
    cli.add_argument("--epochs", type=int, required=True)
    cli.add_argument("--batch-size", type=int)
    cli.add_argument("--lr-scale", type=float, default=1.0)
    cli.add_argument("--decay", default="paper", choices=["paper", "cosine", "linear"])
    cli.add_argument("--warmup", type=float, default=0.0)
    cli.add_argument("--bf16-cpu", action="store_true")
    cli.add_argument("--curve-points", type=int, default=0)
    cli.add_argument("--test-every", type=int, default=1, help="score every n-th test frame (default: all)")
    cli.add_argument("--train-stride", type=int, default=1, help="train on every n-th frame of each run (default: all)")
    cli.add_argument("--mirrored-pairs", action="store_true",
                     help="an epoch holds every window plain and mirrored (upstream's temporal epoch) instead of "
                          "one pass with random mirrors")
    cli.add_argument("--out", type=Path, default=RESULTS, help=f"the curves' folder (default: {RESULTS})")
    cli.add_argument("--images", default="data/images", help="render's folder (a method that looks at the image)")
    cli.add_argument("--detector", type=Path, default=Path("data/detector/model.pt"),
                     help="the detector whose frozen feature maps Context-Aware PoseFormer samples")
    args = cli.parse_args(argv)

    kind = input_kind(args.input2d)
    setup = method_module(args.method).PAPER[kind]
    cfg = method_config(args.method, {}, config_overrides(args), kind)
    run = run_name(args)
    # Every run of the paper's recipe is the paper's schedule cut at --epochs (no rescaled decay).
    paper_recipe = paper_schedule(args.method, cfg, setup.schedule)
    paper = dataclasses.replace(paper_recipe, epochs=max(paper_recipe.epochs, args.epochs))
    schedule = train.budgeted_schedule(paper, args.epochs, args.batch_size, args.lr_scale, args.decay, args.warmup)
    if args.recipe == "paper" and (args.batch_size, args.lr_scale, args.decay, args.warmup) == (None, 1.0, "paper", 0.0):
        schedule = dataclasses.replace(schedule, paper_epochs=setup.schedule.epochs)
    schedule = dataclasses.replace(schedule, mirrored_pairs=args.mirrored_pairs)

    device = pick_device(args.threads)
    # a temporal method's windows reach every frame: it takes every n-th frame itself (train_arrays)
    stride = 1 if setup.input_spec.temporal else args.train_stride
    data = load_split(args.aligned, args.input2d, setup.input_spec.joint_set, Protocol(train_stride=stride),
                      markers=setup.input_spec.markers)
    init, previous = load_stage(args.init)
    if setup.input_spec.images:  # the crops, and the frozen detector whose feature maps the method samples
        data = attach_images(data, images_folder(args.images))
        cfg = method_module(args.method).with_backbone(cfg, args.detector)
        init = method_module(args.method).backbone_weights(args.detector)
    codec = Codec(setup.input_spec, data.input_mean, data.input_std, data.target_mean, data.target_std).to(device)
    field = receptive_field(cfg, setup.input_spec)
    arrays = train_arrays(setup.input_spec, cfg, data, np.zeros(len(data.train_inputs), dtype=bool), device, field=field,
                          stride=args.train_stride)
    frames = ScoredFrames.every(data, args.test_every, device, field)
    names = list(get_joint_set(data.joint_set).names)
    scores: list[dict] = []

    def monitor(model: torch.nn.Module) -> dict:
        predicted = frames.predict(model, codec, setup.input_spec.flip_test)
        result = metrics.evaluate(predicted, frames.targets, frames.actions, joint_names=names, decimals=None)
        scores.append({"p1": result["mpjpe_mm"]["action_mean"], "p2": result["p_mpjpe_mm"]["action_mean"]})
        return {"test_p1_mm": scores[-1]["p1"]}

    out = args.out / f"{run}-{args.input2d}.json"
    label = configuration_label(setup, cfg, data.surface)
    # a later stage's curve starts where the earlier stages' cost ends
    samples_before, seconds_before = previous.get("samples_seen", 0), previous.get("core_seconds", 0.0)
    recipe = {"name": args.recipe, "label": recipe_label(args, schedule),
              "command": command_line("benchmarks.convergence", argv),
              "schedule": dataclasses.asdict(schedule), "seed": args.seed, "finished": False, "curve": [],
              **({"starts_from": previous} if previous else {})}

    def record_point(row: dict) -> None:
        recipe["curve"].append({"epoch": row["epoch"], "samples_seen": samples_before + row["samples_seen"],
                                "core_seconds": round(seconds_before + row["core_seconds"], 1),
                                "p1": round(scores[-1]["p1"], 2), "p2": round(scores[-1]["p2"], 2)})
        save(out, run, args, kind, label, recipe)

    result = train_once(args.method, cfg, data, codec, arrays, schedule, seed=args.seed, device=device, init=init,
                        monitor=monitor, curve_points=args.curve_points, bf16_cpu=args.bf16_cpu, on_point=record_point)
    recipe["finished"] = True
    save(out, run, args, kind, label, recipe)
    if args.save:
        save_stage(args.save, result.state_dict,
                   {"run": run, "benchmark": "convergence", "recipe": args.recipe, "starts_from": previous or None,
                    "samples_seen": recipe["curve"][-1]["samples_seen"], "core_seconds": recipe["curve"][-1]["core_seconds"],
                    "p1": recipe["curve"][-1]["p1"]})


def recipe_label(args, schedule) -> str:
    decay = {"paper": f"x{schedule.lr_decay} every {schedule.lr_decay_every} {schedule.lr_decay_unit}s",
             "cosine": "cosine to 0", "linear": "linear to 0"}[args.decay]
    warmup = f", warm-up {args.warmup:.0%}" if args.warmup else ""
    bf16 = ", bf16 autocast" if args.bf16_cpu else ""
    scored = f"; scored on every {args.test_every}th test frame" if args.test_every > 1 else ""
    frames = "all training frames" if args.train_stride == 1 else f"every {args.train_stride}th training frame"
    epoch = ", each epoch every window plain and mirrored" if schedule.mirrored_pairs else ""
    return (f"{args.recipe}: {schedule.optimizer} lr {schedule.lr:g} ({decay}{warmup}), batch {schedule.batch_size}, "
            f"{schedule.epochs} epochs of {frames}{epoch}{bf16}{scored}")


def save(path: Path, run: str, args, kind: str, label: str, recipe: dict) -> None:
    record = json.loads(path.read_text()) if path.exists() else {}
    recipes = [r for r in record.get("recipes", []) if r["name"] != recipe["name"]] + [recipe]
    record.update(run=run, method=args.method, input2d=args.input2d, configuration=kind, configuration_label=label,
                  machine={"cpus": torch.get_num_threads(), "processor": platform.processor() or platform.machine(),
                           "torch": torch.__version__}, threads=args.threads,
                  recipes=sorted(recipes, key=lambda r: r["name"]), plateau=convergence.plateau(recipes))
    write_json(record, path)


if __name__ == "__main__":
    main()
