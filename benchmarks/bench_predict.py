"""``python -m lifting.predict`` on the CPU: frames per second per method, and peak memory on an
hour of video.

Usage (repository root, venv active)::

    python -m benchmarks.bench_predict --threads 2 --frames 4000 --out benchmarks/results/predict-cpu.json

* Speed: ``--frames`` frames of synthetic keypoints (a swaying figure in pixels) through the tool's
  lifting path (:func:`lifting.predict.run.lift`: screen-normalised inputs, chunks of 8,192 frames,
  a temporal run's chunks overlapping by half its window, flip test where the method uses it), after
  one warm-up chunk. Runs: each trained run of the pipeline found as
  ``data/checkpoints/<method>-gt/model.pt`` (their budgeted configurations, as trained), and, for
  methods without one, the paper's configuration with untrained weights (speed does not depend on
  the weights): GridConv, VideoPose3D 243 frames, Pose3D-RIE 243 frames. Each row says which.
* Memory: the whole CLI (read a Parquet 2D file, follow, fill, lift, write Parquet and summary) in
  a fresh process on ``--hour-frames`` frames (180,000 = one hour at 50 fps) and on a tenth of it;
  the process's peak resident memory (``VmHWM``) for each, for one single-frame run and one
  temporal run. Lifting and writing go chunk by chunk; the track itself ((T, 17, 2) pixels and
  scores, a few hundred bytes a frame) is held whole because following and filling look along it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lifting.models import method_module
from lifting.predict.run import lift, load_run
from lifting.run_file import RunFile, TrainingRecord
from lifting.runner import build_model

CHECKPOINTS = Path("data/checkpoints")
WIDTH = HEIGHT = 1000
#: Methods without a trained run are timed in the paper's configuration with untrained weights.
PAPER_ONLY = ("gridconv", "videopose3d", "rie")


def synthetic_pixels(frames: int, seed: int = 0) -> np.ndarray:
    """(frames, 17, 2) float32 pixels: an upright h36m17 figure swaying in a 1000x1000 image."""
    template = np.array([[0, 0], [-13, 0], [-13, 44], [-13, 88], [13, 0], [13, 44], [13, 88], [0, -23], [0, -48],
                         [0, -58], [0, -68], [17, -45], [18, -17], [17, 8], [-17, -45], [-18, -17], [-17, 8]], float)
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None] / 50.0
    phase = rng.uniform(0, 2 * np.pi, size=(1, 17, 2))
    return (500 + 4.0 * template + 6.0 * np.sin(2 * np.pi * 0.7 * t + phase)).astype(np.float32)


def paper_model(method: str, folder: Path) -> Path:
    """A model.pt of ``method``'s paper configuration with untrained weights, as train_method lays it out."""
    setup = method_module(method).PAPER["gt"]
    torch.manual_seed(0)
    model = build_model(method, setup.config, 17)
    stats = {"input_mean": torch.zeros(17, 2), "input_std": torch.ones(17, 2), "target_mean": torch.zeros(17, 3),
             "target_std": torch.ones(17, 3)}
    untrained = TrainingRecord(train_seconds=0.0, epochs=0, selected_epoch=0, train_samples=0, samples_seen=0,
                               core_seconds=None, samples_per_s=None, schedule=None, seeds=[0], world_size=1,
                               curve_p1=None, stages=None, checkpoint="last", budget={})
    run = RunFile(method=method, name=method, config=dataclasses.asdict(setup.config), kind="gt",
                  configuration=setup.label + " (untrained weights)", input_spec=dataclasses.asdict(setup.input_spec),
                  joint_set="h36m17", stats=stats, record=untrained,
                  parameters=sum(p.numel() for p in model.parameters()), state_dicts=[model.state_dict()])
    path = folder / f"{method}-paper" / "model.pt"
    path.parent.mkdir(parents=True)
    run.save(path)
    return path


def runs_to_time(folder: Path, methods: list[str]) -> list[tuple[str, Path, str]]:
    """(name, model.pt, what it is) for every method asked for."""
    rows = []
    for method in methods:
        trained = CHECKPOINTS / f"{method}-gt" / "model.pt"
        if trained.exists():
            rows.append((f"{method}-gt", trained, "trained run of the pipeline (its budgeted configuration)"))
        elif method in PAPER_ONLY:
            rows.append((f"{method}-paper", paper_model(method, folder), "paper configuration, untrained weights"))
    return rows


def frames_per_second(model: Path, frames: int, threads: int) -> dict:
    run = load_run(None, model, threads=threads)
    pixels = synthetic_pixels(frames)
    for _ in lift(run, pixels[:min(frames, 512)], WIDTH, HEIGHT):  # warm-up
        pass
    started = time.perf_counter()
    for _ in lift(run, pixels, WIDTH, HEIGHT):
        pass
    seconds = time.perf_counter() - started
    return {"method": run.saved.method, "configuration": run.saved.configuration,
            "receptive_field": run.field, "flip_test": bool(run.saved.input_spec["flip_test"]),
            "frames": frames, "seconds": round(seconds, 2), "frames_per_s": round(frames / seconds, 1)}


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report its parent's peak.
_CHILD = """
import sys
from lifting.predict.__main__ import main
code = main(sys.argv[1:])
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print("PEAK_KB", peak.split()[1])
sys.exit(code)
"""


def peak_memory(model: Path, frames: int, folder: Path, threads: int) -> dict:
    """Peak RSS (MB) of the CLI lifting a ``frames``-frame Parquet file in a fresh process."""
    from tests.predict.keypoint_files import write_parquet

    source = write_parquet(folder / f"input-{frames}.parquet", synthetic_pixels(frames, seed=1), WIDTH, HEIGHT)
    out = folder / f"out-{frames}-{model.parent.name}.parquet"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, str(source), "--model", str(model), "--out", str(out),
                           "--fps", "50", "--threads", str(threads)], capture_output=True, text=True, check=True)
    peak_kb = int(next(line for line in done.stdout.splitlines() if line.startswith("PEAK_KB")).split()[1])
    return {"frames": frames, "peak_rss_mb": round(peak_kb / 1024, 1),
            "seconds": round(time.perf_counter() - started, 1), "output_mb": round(out.stat().st_size / 2**20, 1)}


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--threads", type=int, default=2)
    cli.add_argument("--frames", type=int, default=4000, help="frames per speed measurement")
    cli.add_argument("--methods", nargs="*", default=["knn", "simple_baseline", "semgcn", "modulated_gcn", "hgn",
                                                      "gridconv", "videopose3d", "rie"])
    cli.add_argument("--hour-frames", type=int, default=180_000)
    cli.add_argument("--memory-runs", nargs="*", default=["simple_baseline-gt", "videopose3d-paper"],
                     help="runs (names from the speed table) whose peak memory is measured")
    cli.add_argument("--memory-only", action="store_true", help="keep the speed table of --out, re-measure memory")
    cli.add_argument("--out", type=Path, default=Path("benchmarks/results/predict-cpu.json"))
    args = cli.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = runs_to_time(folder, args.methods)
        speed = json.loads(args.out.read_text())["frames_per_s"] if args.memory_only else {}
        for name, model, what in ([] if args.memory_only else runs):
            speed[name] = {**frames_per_second(model, args.frames, args.threads), "source": what}
            print(name, speed[name], flush=True)
        memory = {}
        for name, model, _ in runs:
            if name in args.memory_runs:
                memory[name] = [peak_memory(model, n, folder, args.threads)
                                for n in (args.hour_frames // 10, args.hour_frames)]
                print(name, memory[name], flush=True)
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                          "torch": torch.__version__},
              "speed_frames": json.loads(args.out.read_text())["speed_frames"] if args.memory_only else args.frames, "input": "synthetic swaying figure, 1000x1000 px, 50 fps",
              "frames_per_s": speed,
              "peak_memory": {"note": "whole CLI in a fresh process (Parquet in, Parquet + summary out); "
                                      f"{args.hour_frames // 10} and {args.hour_frames} frames",
                              "runs": memory}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
