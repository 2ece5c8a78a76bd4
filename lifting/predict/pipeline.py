"""From a keypoint file to 3D: read, follow one person, fill gaps, lift, write.

:func:`predict` does it all; every input check (file, format, keypoint count, NaN, image size,
keypoints outside the image, run, joint set, frames asked for pictures) happens before the first
output is written, and every output is written atomically, so bad input leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lifting.errors import DataError
from lifting.io import write_json
from lifting.predict.formats import Detections, check_inside, read_keypoints, with_image_size
from lifting.predict.output import FRAME, write_predictions
from lifting.predict.run import TRAINED_FPS, LoadedRun, lift, load_run
from lifting.predict.track import Track, fill, follow
from lifting.skeleton import coco17_to_h36m17, h36m16_to_h36m17

#: What the COCO-17 -> h36m17 mapping does and cannot do (written into the summary).
COCO_MAPPING = ("COCO-17 -> h36m17 by lifting.skeleton.coco17_to_h36m17: pelvis = mid-hips, thorax = mid-shoulders, "
                "spine = their midpoint, nose = COCO nose, head = mid-eyes, limbs re-indexed. COCO's hips sit higher "
                "on the body than Human3.6M's hip-joint centres, so the lifted legs and pelvis carry that bias.")


@dataclass(frozen=True)
class Request:
    """One prediction: where the 2D is, which run lifts it, what to write.

    Attributes:
        input: keypoint file or OpenPose folder. out: the Parquet to write (the summary JSON,
            PNG and GIF go beside it with those suffixes unless ``summary`` says otherwise).
        fmt: format name or None (detected). image_size: (W, H) pixels or None (from the file).
        fps: the input's frame rate or None (unknown). person: K-th person per frame, or None
            (follow the best). min_score: keypoints under it are interpolated. margin: share of the
            image a confident keypoint may lie outside it.
        run, model, checkpoints, seed: the run (see :func:`lifting.predict.run.load_run`).
        where: key=value filters for a Parquet table of several runs.
        png_frames: frames to draw into ``<out>.png`` (None: no PNG). gif: also ``<out>.gif``.
        bvh: a BVH file to write, or None. threads: CPU threads.
    """

    input: Path
    out: Path
    run: str | None = None
    model: Path | None = None
    checkpoints: Path = Path("data/checkpoints")
    fmt: str | None = None
    image_size: tuple[int, int] | None = None
    fps: float | None = None
    person: int | None = None
    min_score: float = 0.3
    margin: float = 0.25
    seed: int | None = None
    where: dict = field(default_factory=dict)
    png_frames: tuple[int, ...] | None = None
    gif: bool = False
    bvh: Path | None = None
    summary: Path | None = None
    threads: int | None = None


def prepare_track(request: Request) -> tuple[Detections, Track, np.ndarray]:
    """Read and check the input: (detections, the followed and filled track, (T, 17, 2) h36m17 px)."""
    if request.min_score < 0 or request.margin < 0:
        raise DataError(request.input, "--min-score and --margin must be >= 0", "give non-negative values")
    if request.person is not None and request.person < 0:
        raise DataError(request.input, f"--person {request.person} is negative", "count people from 0")
    detections = with_image_size(read_keypoints(request.input, request.fmt, request.where), request.image_size)
    check_inside(detections, request.margin, request.min_score)
    chosen = follow(detections, request.person, request.min_score)
    if (chosen < 0).all():
        raise DataError(request.input, f"no frame has a person number {request.person}", "choose another --person")
    track = fill(detections, chosen, request.min_score)
    pixels = coco17_to_h36m17(track.pixels) if detections.layout == "coco17" else track.pixels
    none = np.zeros(0, dtype=np.int64)  # the track holds what is needed; keep the file's description only
    described = replace(detections, frame_of=none, keypoints=np.zeros((0, 17, 2), np.float32),
                        keypoint_scores=np.zeros((0, 17), np.float32), person_scores=np.zeros(0, np.float32))
    return described, track, pixels


def _check_request(request: Request, track: Track) -> None:
    if request.fps is not None and not request.fps > 0:
        raise DataError(request.input, f"--fps {request.fps} is not a frame rate", "give frames per second, > 0")
    if request.png_frames is not None:
        outside = [f for f in request.png_frames if not track.frames[0] <= f <= track.frames[-1]]
        if outside or not request.png_frames:
            raise DataError(request.input, f"--png asks for frames {outside or '(none)'}; the track runs from frame "
                                           f"{track.frames[0]} to {track.frames[-1]}", "pick frames inside it")
    if request.gif:
        try:
            import PIL  # noqa: F401  (matplotlib's PillowWriter needs it)
        except ImportError:
            raise DataError(request.out.with_suffix(".gif"), "an animated GIF needs Pillow, which is not installed",
                            "install the project's pinned pillow, or drop --gif") from None


def predict(request: Request) -> dict:
    """Lift ``request.input`` with the chosen run; write the outputs; return the summary."""
    detections, track, pixels = prepare_track(request)
    _check_request(request, track)
    run = load_run(request.run, request.model, request.checkpoints, request.seed, request.threads)
    keep = request.png_frames is not None or request.gif or request.bvh is not None
    metadata = {"run": run.name, "fps": request.fps if request.fps is not None else "unknown"}
    poses = write_predictions(request.out, track, run.joint_set, lift(run, pixels, detections.width, detections.height),
                              metadata, keep=keep)
    summary = _summary(request, detections, track, run)
    if keep:
        body = h36m16_to_h36m17(poses) if run.joint_set == "h36m16" else poses
        if run.joint_set == "h36m16":
            summary["output"]["pictures_and_bvh"] = "h36m17 with the nose estimated as the thorax-head midpoint"
        summary["outputs"].update(_extras(request, track, body, pixels, (detections.width, detections.height),
                                          summary))
    write_json(summary, request.summary or request.out.with_suffix(".json"))
    return summary


def _extras(request: Request, track: Track, body_mm: np.ndarray, pixels: np.ndarray, size: tuple[int, int],
            summary: dict) -> dict:
    """Pictures and BVH of the (T, 17, 3) h36m17 lifted body and its (T, 17, 2) h36m17 pixels."""
    written = {}
    if request.png_frames is not None or request.gif:
        from lifting.predict import draw  # matplotlib only when pictures are asked for

        if request.png_frames is not None:
            rows = [int(f - track.frames[0]) for f in request.png_frames]
            draw.frames_png(request.out.with_suffix(".png"), pixels[rows], size, body_mm[rows], track.frames[rows],
                            track.filled_frames[rows])
            written["png"] = str(request.out.with_suffix(".png"))
        if request.gif:
            draw.animation_gif(request.out.with_suffix(".gif"), pixels, size, body_mm, track.frames, track.filled_frames,
                               fps=request.fps or TRAINED_FPS)
            written["gif"] = str(request.out.with_suffix(".gif"))
    if request.bvh is not None:
        from lifting.predict import bvh

        report = bvh.write_bvh(request.bvh, body_mm, fps=request.fps or TRAINED_FPS)
        written["bvh"] = str(request.bvh)
        summary["bvh"] = report
    return written


def _summary(request: Request, detections: Detections, track: Track, run: LoadedRun) -> dict:
    fps_note = None
    if request.fps is None:
        fps_note = f"input fps unknown: the run was trained at {TRAINED_FPS:g} fps; give --fps to record it"
    elif request.fps != TRAINED_FPS:
        fps_note = (f"input at {request.fps:g} fps, the run was trained at {TRAINED_FPS:g} fps; the input was NOT "
                    "resampled" + (" (a temporal run's window spans a different time)" if run.temporal else ""))
    return {
        "input": {"path": str(request.input), "format": detections.format, "layout": detections.layout,
                  "image_size": [detections.width, detections.height], "fps": request.fps, "fps_note": fps_note,
                  "notes": list(detections.notes),
                  "mapping": COCO_MAPPING if detections.layout == "coco17" else "h36m17 input, used as is"},
        "track": {"frames": len(track.frames), "first_frame": int(track.frames[0]), "last_frame": int(track.frames[-1]),
                  "frames_without_detection": int((~track.detected).sum()),
                  "frames_filled": int(track.filled_frames.sum()),
                  "keypoints_filled": int(track.filled.sum()),
                  "frames_with_several_people": int((track.people > 1).sum()),
                  "person": "highest score, then nearest to the previous frame" if request.person is None
                  else f"instance {request.person} of each frame",
                  "min_score": request.min_score, "margin": request.margin,
                  "filling": "linear interpolation along the track, held at the ends; flagged per frame"},
        "run": {"name": run.name, "path": str(run.path), "method": run.saved.method,
                "configuration": run.saved.configuration, "joint_set": run.joint_set,
                "seeds": list(run.seeds), "seeds_combined": "mean" if len(run.seeds) > 1 else "one seed",
                "receptive_field_frames": run.field,
                "short_input": run.temporal and len(track.frames) < run.field},
        "output": {"units": "mm", "frame": FRAME, "joint_set": run.joint_set},
        "outputs": {"parquet": str(request.out)},
    }
