"""The 2D detector's budget and recipe, chosen on a held-out training subject (never the test set).

Usage (repository root, venv active, after `dvc repro render`)::

    python -m benchmarks.detector_probe --name lr5e-3 --set lr=0.005 --threads 1

Trains the detector of params.yaml's ``detector`` section (with ``--set`` changes) on the training
subjects but one (``--holdout``, default S8), exactly as ``train_detector`` does, then detects
every 4th frame of the held-out subject's views, with and without the flip test, and records the
pixel error, PCK and left/right swaps (``lifting.metrics.keypoints_2d_summary``) with the training
seconds and samples/s. ``--params`` and ``--images`` point it at another render (crop size,
``render.body``) made by ``python -m stages.render --params <file> --out <folder>``.
Results: ``benchmarks/results/detector/<name>.json`` (command line inside).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from lifting import metrics
from lifting.config import parse_section
from lifting.detector import DetectorSettings, detect, save_detector, train_detector, view_labels
from lifting.images.crop import from_crop
from lifting.images.store import read_views
from lifting.io import write_json
from lifting.skeleton import H36M17

RESULTS = Path("benchmarks/results/detector")


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--name", required=True, help="the result's file name")
    cli.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="change one detector setting")
    cli.add_argument("--images", default="data/images")
    cli.add_argument("--store", default="data/parquet")
    cli.add_argument("--params", default="params.yaml")
    cli.add_argument("--holdout", default="S8", help="the training subject held out for scoring")
    cli.add_argument("--threads", type=int, default=2)
    cli.add_argument("--save", help="also write the trained detector here (a model.pt, for a closer look)")
    args = cli.parse_args(argv)
    params = yaml.safe_load(Path(args.params).read_text())
    changes = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    settings = parse_section(DetectorSettings, {**params["detector"], **changes}, "detector")
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    RESULTS.mkdir(parents=True, exist_ok=True)
    views = read_views(Path(args.images) / "views.parquet")
    labels = view_labels(views, Path(args.store), params["data"]["source"])
    subjects = views.keys["subject"].to_numpy()
    frames = views.keys["frame"].to_numpy()
    train = np.isin(subjects, params["data"]["train_subjects"]) & (subjects != args.holdout) & \
        (frames % settings.train_stride == 0)
    held = (subjects == args.holdout) & (frames % 4 == 0)
    started = time.perf_counter()
    model, record = train_detector(views.images[train], labels[train], settings, device,
                                   RESULTS / f"{args.name}-curve.csv")
    seconds = time.perf_counter() - started
    if args.save:
        save_detector(Path(args.save), model, views.crop_size, record, settings)
    size = views.crop_size
    gt = from_crop(labels[held], views.centres[held], views.sizes[held], *size)

    def scored(flip_test: bool) -> dict:
        crop_px, _ = detect(model, views.images[held], device, flip_test)
        pixels = from_crop(crop_px, views.centres[held], views.sizes[held], *size)
        return metrics.keypoints_2d_summary(pixels, gt, H36M17.names, mirror=H36M17.flip_permutation())

    write_json({"name": args.name, "settings": dataclasses.asdict(settings), "holdout": args.holdout,
                "render": params.get("render", {}), "images": args.images,
                "held_out_views": int(held.sum()), "train_views": int(train.sum()), "seconds": round(seconds, 1),
                "threads": args.threads, "record": record, "held_out": scored(settings.flip_test),
                # the same model detecting the other way (with or without the flip test): a free lever
                "held_out_other_flip_test": scored(not settings.flip_test),
                "command": "python -m benchmarks.detector_probe " + " ".join(sys.argv[1:])},
               RESULTS / f"{args.name}.json")


if __name__ == "__main__":
    main()
