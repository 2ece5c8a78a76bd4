"""Stage train_detector: an HRNet 2D detector trained on the rendered training crops (data/images)."""

from __future__ import annotations

import logging
from pathlib import Path

from lifting.config import check_train_stride, images_needed, parse_section
from lifting.detector import LOG_COLUMNS, DetectorSettings, coco_detector, save_detector, train_detector, view_labels
from lifting.images.store import read_views
from lifting.io import write_csv
from lifting.skeleton import COCO17
from lifting.device import pick_device
from stages.common import data_params, parser, read_params, run, train_threads, write_skipped

log = logging.getLogger("train_detector")


def cli():
    command = parser(__doc__)
    command.add_argument("--images", default="data/images", help="render's output")
    command.add_argument("--store", default="data/parquet", help="the store (its gt 2D are the labels)")
    command.add_argument("--out", default="data/detector", help="folder for model.pt")
    command.add_argument("--log", default="metrics/train/detector.csv", help="training curve CSV")
    return command


def settings(params: dict, args) -> tuple:
    """What this stage takes from params.yaml: exactly the keys dvc.yaml declares for it
    (tests/test_stage_params.py checks this against every key of params.yaml)."""
    data = data_params(params, "source", "inputs2d", "train_subjects")
    return (data, parse_section(DetectorSettings, params.get("detector", {}), "detector"),
            train_threads(params),
            images_needed(data.inputs2d, params.get("runs", {})))


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    data, detector, threads, needed = settings(read_params(args.params), args)
    if not needed:
        write_skipped(args.out)
        write_csv([], Path(args.log), LOG_COLUMNS)  # the stage's plot output exists, empty
        return
    views = read_views(Path(args.images) / "views.parquet")
    if detector.checkpoint:  # the paper's COCO HRNet instead of one trained here
        model = coco_detector(Path(detector.checkpoint))
        record = {"checkpoint": Path(detector.checkpoint).name, "train_seconds": 0.0, "train_views": 0, "epochs": 0,
                  "parameters": sum(p.numel() for p in model.parameters())}
        write_csv([], Path(args.log), LOG_COLUMNS)
        save_detector(Path(args.out) / "model.pt", model, views.crop_size, record, detector, COCO17.name)
        return
    labels = view_labels(views, Path(args.store), data.source)
    training, frames = views.keys["subject"].isin(data.train_subjects).to_numpy(), views.keys["frame"].to_numpy()
    check_train_stride(detector.train_stride, int(frames[training].max(initial=-1)) + 1, "detector.train_stride")
    rows = training & (frames % detector.train_stride == 0)
    model, record = train_detector(views.images[rows], labels[rows], detector, pick_device(threads), Path(args.log))
    save_detector(Path(args.out) / "model.pt", model, views.crop_size, record, detector)
    log.info("detector: %s", record)


if __name__ == "__main__":
    run(main)
