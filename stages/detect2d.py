"""Stage detect2d: the trained detector on every rendered view -> the ``detected`` 2D source
(data/detected/poses2d.parquet) and its accuracy on the test subjects (metrics/detector.json)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from lifting.config import images_needed, parse_section
from lifting.data.schema import read_metadata
from lifting.data.store import write_detected
from lifting.detector import (DetectorSettings, check_crop, detection_metrics, detected_table, detect, load_detector,
                             view_labels)
from lifting.images.store import read_views
from lifting.io import atomic_dir
from lifting.speed import write_metrics
from lifting.device import pick_device
from stages.common import data_params, parser, read_params, run, train_threads, write_skipped

log = logging.getLogger("detect2d")


def cli():
    command = parser(__doc__)
    command.add_argument("--images", default="data/images", help="render's output")
    command.add_argument("--detector", default="data/detector/model.pt", help="train_detector's output")
    command.add_argument("--store", default="data/parquet", help="the store (gt 2D, to score the detector)")
    command.add_argument("--out", default="data/detected", help="folder for the detected 2D source")
    command.add_argument("--metrics", default="metrics/detector.json", help="the detector's 2D accuracy")
    return command


def settings(params: dict, args) -> tuple:
    """What this stage takes from params.yaml: exactly the keys dvc.yaml declares for it
    (tests/test_stage_params.py checks this against every key of params.yaml)."""
    detector = parse_section(DetectorSettings, params.get("detector", {}), "detector",
                             only=("flip_test", "bf16_cpu"))
    data = data_params(params, "source", "inputs2d", "train_subjects", "test_subjects")
    return (data, detector, train_threads(params),
            images_needed(data.inputs2d, params.get("runs", {})))


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    data, detector, threads, needed = settings(read_params(args.params), args)
    if not needed:
        write_skipped(args.out)
        write_metrics({"skipped": "data.inputs2d has no `detected` and runs.context_poseformer is empty"}, args.metrics)
        return
    views = read_views(Path(args.images) / "views.parquet")
    model, saved = load_detector(Path(args.detector))
    check_crop(saved, views.crop_size, Path(args.detector), Path(args.images))
    device = pick_device(threads)
    started = time.perf_counter()
    joint_set = saved.get("joint_set", "h36m17")
    crop_px, confidence = detect(model.to(device), views.images, device, detector.flip_test, bf16_cpu=detector.bf16_cpu,
                                 joint_set=joint_set)
    seconds = time.perf_counter() - started
    table = detected_table(views, crop_px, confidence, joint_set)
    labels = view_labels(views, Path(args.store), data.source, crop=False)
    result = detection_metrics(table, labels, data.train_subjects, data.test_subjects)
    look = read_metadata(Path(args.images) / "views.parquet")  # the embedded data's body and outfits
    result.update(parameters=saved["record"]["parameters"], training=saved["record"], settings=saved.get("settings"),
                  flip_test=detector.flip_test,
                  threads=threads,
                  crop={"width": views.crop_size[0], "height": views.crop_size[1], "body": look.get("body"),
                        "outfits": look.get("outfits")},
                  views_per_s=round(len(views.images) / max(seconds, 1e-9), 1))
    with atomic_dir(args.out) as out:
        write_detected(table, out / "poses2d.parquet", data.source)
    write_metrics(result, args.metrics)
    log.info("detected %d views in %.0f s; test subjects: %.2f px mean, PCK %s", len(table), seconds,
             result["test"]["mean_px"], result["test"]["pck"])


if __name__ == "__main__":
    run(main)
