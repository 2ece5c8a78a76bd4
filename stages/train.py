"""Stage train_<method>@<input2d>: train one method on one 2D source; write model.pt and a CSV log."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from lifting.config import BudgetParams, TrainParams, budget_for, budget_key, parse_overrides, parse_section
from lifting.data.split import Protocol, load_split
from lifting.distributed import Ranks
from lifting.images.store import attach_images, images_folder
from lifting.models import METHOD_NAMES, method_module
from lifting.models.spec import input_kind
from lifting.provenance import code_digest, file_digest
from lifting.runner import RunSettings, method_config, train_method
from lifting.device import bf16_cpu_for
from stages.common import parser, read_params, run

log = logging.getLogger("train")


def cli():
    command = parser(__doc__)
    command.add_argument("--method", required=True, choices=sorted(METHOD_NAMES))
    command.add_argument("--input2d", required=True, help="2D source (gt, noisy, cpn_ft_h36m_dbb, ...)")
    command.add_argument("--name", help="run name in metrics and reports (default: the method)")
    command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="fix one config field for this stage (e.g. sgt=learnable; the value is YAML); repeatable")
    command.add_argument("--aligned", default="data/aligned")
    command.add_argument("--out", required=True, help="folder for checkpoint.pt and model.pt")
    command.add_argument("--log", required=True, help="per-epoch CSV log")
    command.add_argument("--init", help="a previous stage's model.pt to start from (Pose3D-RIE's stages 2 and 3)")
    command.add_argument("--detector", help="the detector's model.pt whose frozen feature maps a method samples "
                                            "(Context-Aware PoseFormer)")
    command.add_argument("--images", help="render's folder, for a method that looks at the image")
    return command


def settings(params: dict, args) -> tuple:
    """What this stage takes from params.yaml: exactly the keys dvc.yaml declares for it
    (tests/test_stage_params.py checks this against every key of params.yaml).

    Returns (the method's Config, the run settings, the train section as given).
    """
    kind = input_kind(args.input2d)
    budget = parse_section(BudgetParams, budget_for(params.get("budget", {}), budget_key(args.method, args.name), kind),
                           "budget")
    training = parse_section(TrainParams, params.get("train", {}), "train")
    cfg = method_config(args.method, params.get("model", {}), parse_overrides(args.set), kind)
    bf16 = bf16_cpu_for(budget.bf16_cpu, f"{args.name or args.method}-{args.input2d}")
    run_settings = RunSettings.from_params(budget, training, bf16)
    return cfg, run_settings, dataclasses.asdict(training)


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    cfg, run_settings, training = settings(read_params(args.params), args)
    kind = input_kind(args.input2d)
    spec = method_module(args.method).PAPER[kind].input_spec
    # a temporal method's windows reach every frame: it takes every n-th frame itself (runner)
    stride = 1 if spec.temporal else run_settings.train_stride
    data = load_split(args.aligned, args.input2d, spec.joint_set, Protocol(train_stride=stride), markers=spec.markers)
    name = args.name or args.method
    # Each seed's checkpoint resumes only under the same snapshot; the seed itself names the file.
    init = Path(args.init) if args.init else None
    detector = Path(args.detector) if args.detector else None
    if spec.images:  # the crops, and the detector whose frozen feature maps the method samples
        data = attach_images(data, images_folder(args.images))
        cfg = method_module(args.method).with_backbone(cfg, detector)
    snapshot = {"budget": run_settings.budget(), "train": {**training, "seeds": None},
                "config": dataclasses.asdict(cfg), "input2d": args.input2d, "code": code_digest(__file__),
                **{key: file_digest(path) if path is not None and path.is_file() else None
                   for key, path in (("init", init), ("detector", detector))}}
    ranks = Ranks.from_environment()  # one process, or one of torchrun's (README: several GPUs or processes)
    ranks.join()
    try:
        record = train_method(args.method, cfg, kind, data, run_settings, Path(args.out), Path(args.log), snapshot,
                              name=name, init=init, detector=detector, ranks=ranks)
    finally:
        ranks.leave()
    if ranks.writes:
        log.info("%s on %s: %s", name, args.input2d, record)


if __name__ == "__main__":
    run(main)
