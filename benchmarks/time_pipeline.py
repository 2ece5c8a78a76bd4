"""Seconds and peak memory of every DVC stage, run one at a time in pipeline order.

Usage (from the repository root, venv active):
    python benchmarks/time_pipeline.py [--force] [--out benchmarks/results/pipeline-cpu.json]
    python benchmarks/time_pipeline.py --stages render train_detector ... --out <file> --note "why"

Each stage runs as ``dvc repro -s <stage>`` (with ``-f`` when ``--force``), so the numbers are
those of a normal run; peak memory is the largest resident set of the stage's processes.

``--stages`` times only the named stages (in pipeline order), for a change that touched those
alone; its file records ``--note`` and, to compare with a full measurement made on another machine
of the same kind (whose speed may differ by tens of per cent), also time stages whose work did not
change.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from lifting.device import fast_cpu_bf16


def stage_names() -> list[str]:
    """Stage names in pipeline order (dvc.yaml lists parents before children; matrix expanded)."""
    out = subprocess.run(["dvc", "stage", "list", "--name-only"], check=True, capture_output=True, text=True).stdout
    return out.split()


def run_measured(command: list[str]) -> dict:
    """Run ``command``; its seconds, its processes' largest resident set (MB) and its output (stdout
    and stderr). A failure ends the benchmark with the output."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "output": output}


def run_stage(name: str, force: bool) -> dict:
    measured = run_measured(["dvc", "repro", "-s", *(["-f"] if force else []), name])
    return {"stage": name, "seconds": measured["seconds"], "peak_rss_mb": measured["peak_rss_mb"],
            "ran": "Running stage" in measured["output"]}


def machine() -> dict:
    """The CPUs, their vector capability and whether bf16 is fast there (a budget's ``bf16_cpu``
    trains in fp32 where it is not: ``lifting.device.fast_cpu_bf16``), torch, CUDA."""
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "fast_cpu_bf16": fast_cpu_bf16(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available(), **isa_limits()}


#: Environment variables that hold torch, oneDNN and MKL to a lower instruction set than the CPU has
#: (``AVX2`` in all three makes an AVX-512/AMX CPU run the kernels of an AVX2-only one, fast bf16 off).
ISA_LIMITS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def isa_limits() -> dict:
    """The CPU's own widest vector extensions and the ISA limits set in the environment, if any, so
    that a measurement made on a wider CPU held to AVX2 says so."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = ""
    own = sorted({flag for flag in flags.split() if flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")})
    limits = {name: os.environ[name] for name in ISA_LIMITS if name in os.environ}
    return {"cpu_extensions": own, **({"isa_limited_by": limits} if limits else {})}


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--force", action="store_true", help="re-run stages that are up to date")
    cli.add_argument("--out", default="benchmarks/results/pipeline-cpu.json")
    cli.add_argument("--stages", nargs="+", help="time only these stages")
    cli.add_argument("--note", default="", help="with --stages: what changed, and why these stages")
    args = cli.parse_args()
    names = stage_names()
    unknown = sorted(set(args.stages or ()) - set(names))
    if unknown:
        raise SystemExit(f"unknown stages {unknown}; `dvc stage list` has {names}")
    rows = []
    for name in (n for n in names if args.stages is None or n in args.stages):
        rows.append(run_stage(name, args.force))
        print(f"{rows[-1]['stage']:<40} {rows[-1]['seconds']:>8.1f} s {rows[-1]['peak_rss_mb']:>8.1f} MB", flush=True)
    result = {"machine": machine(), "total_seconds": round(sum(r["seconds"] for r in rows), 1), "stages": rows,
              **({"only_stages": True, "note": args.note} if args.stages else {})}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"total {result['total_seconds']} s -> {args.out}")


if __name__ == "__main__":
    main()
