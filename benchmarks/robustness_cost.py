"""Seconds of the robustness stage for every default run, and what its test subsample changes.

Usage (from the repository root, venv active, after the runs are trained and scored):
    python benchmarks/robustness_cost.py [--stride 20] [--threads 1] [--calibrate semgcn-gt]
        [--data data] [--metrics metrics] [--keep DIR] --out benchmarks/results/robustness-cpu.json --note "..."

Each run's stage (``python -m stages.robustness``) runs as its own process with ``--threads``
torch/OpenMP threads and ``robustness.test_stride`` set to ``--stride`` (a copy of params.yaml);
recorded per run: wall seconds, the process's CPU seconds (user + system, from ``wait4``; on a
machine shared with other jobs the wall time grows but the CPU seconds much less), the stage's own
prediction seconds and samples/s (every seed, kind and level), and its P1 at level 0 on the
subsample beside the full test set's P1 (``metrics/<run>.json``). ``--calibrate`` also times the
evaluate stage of one run on the whole test set, so its samples/s can be set beside the one its
metrics/speed file recorded when the pipeline ran (how much slower the machine is now).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from lifting.config import pipeline_runs
from lifting.io import write_json


def timed(command: list[str], threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process run to completion."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--stride", type=int, default=None, help="robustness.test_stride (default: params.yaml's)")
    cli.add_argument("--threads", type=int, default=1)
    cli.add_argument("--data", default="data", help="folder with aligned/, parquet/ and checkpoints/")
    cli.add_argument("--metrics", default="metrics", help="folder with the runs' metrics and speed files")
    cli.add_argument("--runs", nargs="*", help="run-input2d names (default: params.yaml's runs)")
    cli.add_argument("--calibrate", help="also time this run's evaluate stage on the whole test set")
    cli.add_argument("--keep", help="write the robustness metrics into this folder (default: discarded)")
    cli.add_argument("--out", required=True)
    cli.add_argument("--note", default="")
    args = cli.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())
    if args.stride is not None:
        params["robustness"]["test_stride"] = args.stride
    data, metrics = Path(args.data), Path(args.metrics)
    names = args.runs or [f"{run}-{input2d}" for run, input2d in pipeline_runs(params)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="robustness-cost-") as scratch:
        scratch = Path(scratch)
        (scratch / "params.yaml").write_text(yaml.safe_dump(params))
        written = Path(args.keep) if args.keep else scratch
        for name in names:
            input2d = name.rsplit("-", 1)[1]
            load = os.getloadavg()[0]
            wall, cpu = timed([sys.executable, "-m", "stages.robustness", "--params", str(scratch / "params.yaml"),
                               "--model", str(data / "checkpoints" / name / "model.pt"), "--input2d", input2d,
                               "--aligned", str(data / "aligned"), "--cameras", str(data / "parquet/cameras.parquet"),
                               "--metrics", str(written / f"{name}.json")], args.threads)
            result = json.loads((written / f"{name}.json").read_text())
            speed = json.loads((written / "speed" / f"{name}.json").read_text())
            full = json.loads((metrics / f"{name}.json").read_text())["metrics"]["mpjpe_mm"]["action_mean"]
            level0 = result["metrics"]["jitter"]["0px"]["p1_mm"]
            recorded = json.loads((metrics / "speed" / f"{name}.json").read_text())["inference_samples_per_s"]
            rows.append({"run": name, "seeds": len(result["protocol"]["seeds"]),
                         "test_frames": result["protocol"]["test_frames"], "wall_s": round(wall, 1),
                         "cpu_s": round(cpu, 1), "predict_s": speed["seconds"], "samples_per_s": speed["samples_per_s"],
                         "evaluate_samples_per_s_recorded": recorded, "p1_level0_subsample": level0,
                         "p1_full_test_set": full, "p1_difference": round(level0 - full, 2),
                         "load_average_at_start": round(load, 2)})
            print(json.dumps(rows[-1]), flush=True)
        calibration = None
        if args.calibrate:
            input2d = args.calibrate.rsplit("-", 1)[1]
            out = scratch / "evaluate"
            wall, cpu = timed([sys.executable, "-m", "stages.evaluate", "--params", str(scratch / "params.yaml"),
                               "--model", str(data / "checkpoints" / args.calibrate / "model.pt"), "--input2d", input2d,
                               "--aligned", str(data / "aligned"), "--metrics", str(out / f"{args.calibrate}.json"),
                               "--predictions", str(out / f"{args.calibrate}.parquet")], args.threads)
            now = json.loads((out / "speed" / f"{args.calibrate}.json").read_text())["inference_samples_per_s"]
            then = json.loads((metrics / "speed" / f"{args.calibrate}.json").read_text())["inference_samples_per_s"]
            calibration = {"run": args.calibrate, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                           "inference_samples_per_s_now": now, "inference_samples_per_s_recorded": then,
                           "slowdown": round(then / now, 2)}
    record = {"note": args.note, "threads": args.threads, "test_stride": params["robustness"]["test_stride"],
              "cpus": os.cpu_count(), "runs": rows,
              "total": {key: round(sum(r[key] for r in rows), 1) for key in ("wall_s", "cpu_s", "predict_s")},
              "calibration": calibration}
    write_json(record, args.out)
    print(json.dumps(record["total"]), json.dumps(calibration))


if __name__ == "__main__":
    main()
