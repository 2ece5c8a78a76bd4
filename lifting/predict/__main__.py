"""python -m lifting.predict: lift your own 2D keypoints to 3D with any run the pipeline trained.

Examples::

    python -m lifting.predict results.json --run simple_baseline-gt --image-size 1920 1080 --fps 30 \\
        --out out/walk.parquet --png 0,50,100 --gif --bvh out/walk.bvh
    python -m lifting.predict openpose_json/ --run videopose3d-detected --image-size 1280 720 --out out/a.parquet

Writes ``--out`` (Parquet: frame, flags, joints in root-relative camera-frame mm), a JSON summary
beside it, and the pictures and BVH asked for. Bad input ends with one line naming the file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lifting.errors import DataError
from lifting.predict.formats import FORMATS
from lifting.predict.pipeline import Request, predict


def _frames(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--png takes frame numbers separated by commas, got {text!r}") from None


def _where(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--where takes KEY=VALUE, got {text!r}")
    return key, value


def cli() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(prog="python -m lifting.predict", description=__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("input", type=Path, help="COCO results JSON, OpenPose JSON folder, MMPose JSON or our Parquet")
    command.add_argument("--out", type=Path, required=True, help="the Parquet of 3D joints to write")
    which = command.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="a trained run, <method>-<input2d> (data/checkpoints/<run>/model.pt)")
    which.add_argument("--model", type=Path, help="a model.pt to use instead of --run")
    command.add_argument("--checkpoints", type=Path, default=Path("data/checkpoints"), help="where runs live")
    command.add_argument("--format", dest="fmt", choices=FORMATS, help="the input's format (default: detected)")
    command.add_argument("--image-size", nargs=2, type=int, metavar=("W", "H"), help="image width and height, px")
    command.add_argument("--fps", type=float, help="the input's frame rate (recorded; runs are trained at 50)")
    command.add_argument("--person", type=int, help="always the K-th person of each frame (default: follow the best)")
    command.add_argument("--min-score", type=float, default=0.3, help="keypoints below it are interpolated (0.3)")
    command.add_argument("--margin", type=float, default=0.25,
                         help="share of the image a confident keypoint may lie outside it before the input is "
                              "refused (0.25)")
    command.add_argument("--seed", type=int, help="one of the run's seeds (default: the mean over all)")
    command.add_argument("--where", type=_where, action="append", default=[], metavar="KEY=VALUE",
                         help="pick one run of a Parquet 2D table (subject, sequence, camera, source)")
    command.add_argument("--png", type=_frames, metavar="FRAMES", help="draw these frames (e.g. 0,50,100) to <out>.png")
    command.add_argument("--gif", action="store_true", help="also an animated <out>.gif")
    command.add_argument("--bvh", type=Path, help="also the motion as a BVH file")
    command.add_argument("--summary", type=Path, help="the JSON summary (default: <out>.json)")
    command.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    return command


def main(argv=None) -> int:
    args = cli().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    request = Request(input=args.input, out=args.out, run=args.run, model=args.model, checkpoints=args.checkpoints,
                      fmt=args.fmt, image_size=tuple(args.image_size) if args.image_size else None, fps=args.fps,
                      person=args.person, min_score=args.min_score, margin=args.margin, seed=args.seed,
                      where=dict(args.where), png_frames=args.png, gif=args.gif, bvh=args.bvh, summary=args.summary,
                      threads=args.threads)
    try:
        summary = predict(request)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    track, run = summary["track"], summary["run"]
    print(f"{track['frames']} frames lifted with {run['name']} ({track['frames_filled']} filled) -> {args.out}")
    if summary["input"]["fps_note"]:
        print(f"note: {summary['input']['fps_note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
