"""Load a trained run and lift a track of 2D keypoints with it, chunk by chunk.

A run is ``data/checkpoints/<method>-<input2d>/model.pt`` (:func:`lifting.runner.load_method`).
Inputs are h36m17 pixels; they are screen-normalised as in training
(:func:`lifting.geometry.normalize_screen_coordinates`), reduced to the run's joint set, and
lifted in chunks of :data:`CHUNK` frames so memory does not grow with the video's length; a
temporal run's chunks overlap by half its receptive field on each side, so each frame sees exactly
the window it would see in one whole-run pass (the run's ends are edge-padded by the model code,
as in evaluation). Seeds are averaged, or one is chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch

from lifting.device import pick_device
from lifting.errors import DataError
from lifting.geometry import normalize_screen_coordinates
from lifting.run_file import RunFile
from lifting.runner import load_method
from lifting.skeleton import h36m17_to_h36m16

#: Frames lifted at once: a multiple of :func:`lifting.train.predict`'s batch of 256, so a chunked
#: single-frame prediction goes through exactly the batches of a whole-input one.
CHUNK = 8192
#: The frame rate every run was trained at (Human3.6M and the embedded data).
TRAINED_FPS = 50.0
JOINT_SETS = ("h36m17", "h36m16")


@dataclass(frozen=True)
class LoadedRun:
    """A trained run, ready to predict.

    Attributes:
        name: the run's name (``<method>-<input2d>`` or the model file's folder).
        path: its model.pt. saved: the run file (:class:`~lifting.run_file.RunFile`).
        predictors: one per seed used, each (N, J, 2) screen-normalised [+ meta] -> (N, J, 3) mm.
        seeds: the seeds of ``predictors``.
        field: frames in a temporal run's window (1 for a single-frame run).
    """

    name: str
    path: Path
    saved: RunFile
    predictors: tuple[Callable, ...]
    seeds: tuple[int, ...]
    field: int

    @property
    def joint_set(self) -> str:
        return self.saved.joint_set

    @property
    def temporal(self) -> bool:
        return self.field > 1


def model_path(run: str | None, model: str | Path | None, checkpoints: Path) -> tuple[str, Path]:
    """(run name, model.pt path) from ``--run`` or ``--model``; an unknown run lists the known ones."""
    if model is not None:
        path = Path(model)
        return (run or path.parent.name), path
    if run is None:
        raise DataError(None, "no run given", "name one with --run <method>-<input2d> or give --model PATH")
    path = checkpoints / run / "model.pt"
    if not path.exists():
        known = sorted(p.parent.name for p in checkpoints.glob("*/model.pt")) if checkpoints.is_dir() else []
        raise DataError(path, f"no trained run {run!r}",
                        f"use one of {', '.join(known)}" if known else "train it first (`dvc repro`)")
    return run, path


def load_run(run: str | None, model: str | Path | None = None, checkpoints: Path = Path("data/checkpoints"),
             seed: int | None = None, threads: int | None = None) -> LoadedRun:
    """Load a run for prediction (``seed``: one of its seeds, else all of them, averaged).

    Refuses, with one DataError naming the file: a missing run, a model of another joint set, and a
    run that looks at the image (Context-Aware PoseFormer needs the frames' crops, not just 2D).
    """
    name, path = model_path(run, model, checkpoints)
    saved, predictors = load_method(path, pick_device(threads or torch.get_num_threads()))
    if saved.joint_set not in JOINT_SETS:
        raise DataError(path, f"a model of joint set {saved.joint_set!r}; this tool lifts to "
                              f"{' or '.join(JOINT_SETS)}", "give a run trained by this pipeline on h36m17/h36m16")
    if saved.input_spec["images"]:
        raise DataError(path, f"run {name!r} ({saved.method}) looks at the image around every joint, so it needs "
                              "the video frames (image crops), not only 2D keypoints",
                        "choose a run that lifts from 2D alone (e.g. a *_2d_only or another method's run)")
    seeds = tuple(saved.record.seeds)[:len(predictors)]
    if seed is not None:
        if seed not in seeds:
            raise DataError(path, f"run {name!r} has no seed {seed} (it has {list(seeds)})", "pick one of those")
        predictors, seeds = [predictors[seeds.index(seed)]], (seed,)
    field = math.prod(saved.config["filter_widths"]) if saved.input_spec["temporal"] else 1
    return LoadedRun(name, path, saved, tuple(predictors), seeds, field)


def model_inputs(pixels_h36m17: np.ndarray, width: int, height: int, joint_set: str) -> np.ndarray:
    """(T, 17, 2) h36m17 pixels -> (T, J, 2) float32 screen-normalised inputs of the run's joint set
    (computed in float64, as the aligned data's are)."""
    norm = normalize_screen_coordinates(np.asarray(pixels_h36m17, dtype=np.float64), width, height).astype(np.float32)
    return h36m17_to_h36m16(norm) if joint_set == "h36m16" else norm


def _meta(start: int, stop: int) -> pd.DataFrame:
    """The rows' meta of one run (a temporal predictor's input): frames ``start`` .. ``stop - 1``."""
    n = stop - start
    return pd.DataFrame({"subject": ["input"] * n, "action": ["input"] * n, "sequence": ["input"] * n,
                         "camera": ["input"] * n, "frame": np.arange(start, stop)})


def predict_chunk(run: LoadedRun, inputs: np.ndarray, meta: pd.DataFrame | None) -> np.ndarray:
    """(N, J, 2) -> (N, J, 3) root-relative camera-frame mm, the mean over the run's seeds."""
    total = None
    for predictor in run.predictors:
        pred = np.asarray(predictor(inputs, meta) if run.temporal else predictor(inputs), dtype=np.float64)
        total = pred if total is None else total + pred
    return (total / len(run.predictors)).astype(np.float32)


def lift(run: LoadedRun, pixels: np.ndarray, width: int, height: int,
         chunk: int = CHUNK) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, (n, J, 3) mm)`` for consecutive chunks of the (T, 17, 2) h36m17 ``pixels`` of
    a (W, H) = (``width``, ``height``) image (one run), normalised chunk by chunk.

    A temporal run's chunk is lifted with ``field // 2`` real frames of context on each side (edge
    padding only at the run's real ends), then the context's outputs are dropped.
    """
    count, pad = len(pixels), run.field // 2
    with torch.inference_mode():
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            lo, hi = (max(0, start - pad), min(count, stop + pad)) if run.temporal else (start, stop)
            inputs = model_inputs(pixels[lo:hi], width, height, run.joint_set)
            pred = predict_chunk(run, inputs, _meta(lo, hi) if run.temporal else None)
            yield start, pred[start - lo:stop - lo]
