"""Stage train@<method>-<input2d>: train one method on one 2D source; write model.pt and a CSV log."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from lifting.config import BudgetParams, TrainParams, for_method, parse_overrides, parse_section
from lifting.data.align import Protocol, load_split
from lifting.models import METHODS
from lifting.provenance import code_digest
from lifting.runner import RunSettings, method_config, train_method
from stages.common import parser, read_params, run

log = logging.getLogger("train")


def main(argv=None) -> None:
    cli = parser(__doc__)
    cli.add_argument("--method", required=True, choices=sorted(METHODS))
    cli.add_argument("--input2d", required=True, help="2D source (gt, noisy, cpn_ft_h36m_dbb, ...)")
    cli.add_argument("--name", help="run name in metrics and reports (default: the method)")
    cli.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="fix one config field for this stage (e.g. sgt=learnable; the value is YAML); repeatable")
    cli.add_argument("--aligned", default="data/aligned")
    cli.add_argument("--out", required=True, help="folder for checkpoint.pt and model.pt")
    cli.add_argument("--log", required=True, help="per-epoch CSV log")
    args = cli.parse_args(argv)
    params = read_params(args.params)
    budget_values = for_method(params.get("budget", {}), args.method)
    budget = parse_section(BudgetParams, budget_values, "budget")
    training = parse_section(TrainParams, params.get("train", {}), "train")
    overrides = parse_overrides(args.set)
    cfg = method_config(args.method, params.get("model", {}), overrides)
    joint_set = METHODS[args.method].INPUT_SPEC.joint_set
    data = load_split(args.aligned, args.input2d, joint_set, Protocol(train_stride=budget.train_stride))
    settings = RunSettings(seed=training.seed, threads=training.threads, max_epochs=budget.max_epochs,
                           batch_size=budget.batch_size, train_stride=budget.train_stride, lr_scale=budget.lr_scale,
                           cosine=budget.cosine, val_fraction=training.val_fraction, checkpoint=training.checkpoint)
    name = args.name or args.method
    snapshot = {"budget": budget_values, "train": params.get("train"), "config": dataclasses.asdict(cfg),
                "input2d": args.input2d, "code": code_digest(__file__)}
    record = train_method(args.method, cfg, data, settings, Path(args.out), Path(args.log), snapshot, name=name)
    log.info("%s on %s: %s", name, args.input2d, record)


if __name__ == "__main__":
    run(main)
