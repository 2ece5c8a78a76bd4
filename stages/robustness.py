"""Stage robustness_<method>@<input2d>: a trained run's P1 and P2 as its test 2D gets worse.

Perturbs every test frame of the run's 2D input (:mod:`lifting.robustness`: jitter, gross errors,
left/right swaps, missing joints, each at the levels of params.yaml's ``robustness`` section, the
same for every method), predicts every ``robustness.test_stride``-th test frame with every seed of
the run and writes ``metrics/robustness/<run>-<input2d>.json`` (P1 and P2 action-mean per kind and
level, mean over seeds) and its seconds beside it (``metrics/robustness/speed/``). No retraining.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lifting import robustness
from lifting.config import RobustnessParams, parse_section
from lifting.data.split import Protocol, load_split
from lifting.images.store import attach_images, images_folder
from lifting.runner import load_method
from lifting.skeleton import H36M17, get_joint_set
from lifting.speed import write_metrics
from stages.common import parser, read_params, run


def cli():
    command = parser(__doc__)
    command.add_argument("--model", required=True, help="model.pt written by the train stage")
    command.add_argument("--input2d", required=True)
    command.add_argument("--aligned", default="data/aligned")
    command.add_argument("--cameras", default="data/parquet/cameras.parquet", help="image sizes (pixels)")
    command.add_argument("--images", help="render's folder, for a method that looks at the image")
    command.add_argument("--metrics", required=True, help="metrics JSON to write")
    return command


def settings(params: dict, args) -> RobustnessParams:
    """What this stage takes from params.yaml: the ``robustness`` section (tests/test_stage_params.py
    checks this against dvc.yaml)."""
    return parse_section(RobustnessParams, params.get("robustness", {}), "robustness")


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    options = settings(read_params(args.params), args)
    saved, predictors = load_method(Path(args.model))
    # every test frame of every run in h36m17 (the perturbation is the same for every joint set),
    # then the run's joints
    data = load_split(args.aligned, args.input2d, H36M17.name, Protocol())
    if saved.input_spec["images"]:
        data = attach_images(data, images_folder(args.images))
    frames = robustness.Clean2D(data.test_inputs, data.test_meta,
                                   robustness.image_widths(args.cameras, data.test_meta),
                                   data.input_mean, H36M17.flip_permutation())
    names = get_joint_set(saved.joint_set).names
    joints = [H36M17.index(name) for name in names]
    rows = robustness.subsample_rows(data.test_meta, options.test_stride)
    targets, actions = data.test_targets[rows][:, joints], data.test_meta["action"].to_numpy()[rows]

    def predict(inputs: np.ndarray) -> list[np.ndarray]:
        return [predictor(inputs[:, joints], data.test_meta, data.test_context, rows=rows) for predictor in predictors]

    levels = {kind: getattr(options, robustness.LEVEL_KEYS[kind]) for kind in robustness.KINDS}
    started = time.perf_counter()
    scores = robustness.curves(predict, frames, levels, options.seed,
                               lambda predicted: robustness.score(predicted, targets, actions, names),
                               missing_frames=options.missing_frames)
    seconds = time.perf_counter() - started
    predicted = len(rows) * len(predictors) * (1 + sum(len(v) - 1 for v in levels.values()))
    result = {
        "method": saved.name,
        "architecture": saved.method,
        "input2d": args.input2d,
        "protocol": {
            "test_frame_stride": options.test_stride,
            "test_frames": len(rows),
            "perturbed_frames": len(data.test_inputs),
            "perturbation_seed": options.seed,
            "missing_frames": options.missing_frames,
            "seeds": list(saved.record.seeds),
            "joint_set": saved.joint_set,
            "flip_test": saved.input_spec["flip_test"],
            "temporal": saved.input_spec["temporal"],
            "levels": {kind: list(values) for kind, values in levels.items()},
            "kinds": robustness.DESCRIPTIONS,
            "metric": "P1 and P2 action-mean (mm) on the run's own joints, mean over its seeds",
        },
        "metrics": scores,
        "seconds": round(seconds, 2),
        "samples_per_s": round(predicted / max(seconds, 1e-9), 1),
    }
    write_metrics(result, args.metrics)


if __name__ == "__main__":
    run(main)
