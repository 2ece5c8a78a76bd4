"""Does a refactor change what the pipeline computes? Train and score every method with two checkouts.

Each checkout (``--old``: a ``git worktree`` of the commit before the change; ``--new``: this one)
runs its own ``python -m stages.train`` and ``python -m stages.evaluate`` on the same aligned data,
at a small budget (one epoch over every ``--stride``-th training frame, one seed), each with its own
params.yaml overlaid with that budget. The two model.pt files must hold bit-identical weights, the
two training logs the same losses and curve, and the two evaluations the same predictions and
errors. Timings are not compared. Results: ``--out`` (JSON, one row per run).

    git worktree add /tmp/before <commit>
    python -m benchmarks.same_weights --old /tmp/before --out benchmarks/results/restructure/same-weights.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from lifting.io import write_json

REPO = Path(__file__).resolve().parents[1]
#: (run name, train options, evaluated): one per method, GridConv's learnable SGT, RIE's first stage
#: and then its second stage started from the first (--init).
RUNS = [("knn", [], True), ("simple_baseline", [], True), ("semgcn", [], True), ("modulated_gcn", [], True),
        ("hgn", [], True), ("gridconv_learnable", ["--set", "sgt=learnable"], True), ("videopose3d", [], True),
        ("rie_stage1", ["--set", "stage=1"], False), ("rie_stage2", ["--set", "stage=2"], True),
        ("context_poseformer", [], True)]
TIMING = {"seconds", "samples_per_s", "core_seconds"}


def tiny_params(checkout: Path, stride: int, target: Path) -> Path:
    """The checkout's own params.yaml with a budget of one epoch, one seed, two curve points."""
    params = yaml.safe_load((checkout / "params.yaml").read_text())
    budget = params["budget"]
    budget.update(max_epochs=1, train_stride=stride, max_seeds=1, curve_points=2)
    for key, value in list(budget.items()):
        if isinstance(value, dict):  # a method's own keys would override the plain ones
            budget[key] = {k: v for k, v in value.items() if k in ("batch_size", "lr_scale", "bf16_cpu")}
    target.write_text(yaml.safe_dump(params, sort_keys=False))
    return target


def method_of(run: str) -> str:
    return run.split("_stage")[0].removesuffix("_learnable") if run != "simple_baseline" else run


def run_checkout(checkout: Path, work: Path, args) -> dict:
    """Train and score every run of :data:`RUNS` with ``checkout``'s code; returns run -> seconds."""
    params = tiny_params(checkout, args.stride, work / "params.yaml")
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    seconds = {}
    # the detector was passed as --init before the train stage had its own --detector
    detector_flag = "--detector" if '"--detector"' in (checkout / "stages" / "train.py").read_text() else "--init"
    for run, options, evaluated in RUNS:
        method = method_of(run)
        name = ["--name", run] if run != method else []
        init = (["--init", str(work / "rie_stage1" / "model.pt")] if run == "rie_stage2" else
                [detector_flag, str(Path(args.detector).resolve()), "--images", str(Path(args.images).resolve())]
                if method == "context_poseformer" else [])
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stages.train", "--params", str(params), "--method", method, *options,
                        *name, "--input2d", "gt", "--aligned", str(Path(args.aligned).resolve()), *init,
                        "--out", str(work / run), "--log", str(work / f"{run}.csv")],
                       cwd=checkout, env=env, check=True, capture_output=True)
        if evaluated:
            images = ["--images", str(Path(args.images).resolve())] if method == "context_poseformer" else []
            subprocess.run([sys.executable, "-m", "stages.evaluate", "--params", str(params),
                            "--model", str(work / run / "model.pt"), "--input2d", "gt",
                            "--aligned", str(Path(args.aligned).resolve()), *images,
                            "--metrics", str(work / f"{run}.json"), "--predictions", str(work / f"{run}.parquet")],
                           cwd=checkout, env=env, check=True, capture_output=True)
        seconds[run] = time.perf_counter() - started
    return seconds


def _weights(path: Path) -> dict:
    """Every tensor of a model.pt: each seed's weights, or the lookup's library, and the statistics."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    tensors = {f"seed{i}.{k}": v for i, state in enumerate(saved.get("state_dicts") or []) for k, v in state.items()}
    tensors |= {k: saved[k] for k in ("library_inputs", "library_targets") if saved.get(k) is not None}
    return tensors | {f"stats.{k}": v for k, v in saved["stats"].items()}


def _log(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(handle)]


def _errors(path: Path) -> dict:
    record = json.loads(path.read_text())
    return {"metrics": record["metrics"], "seeds": record.get("seeds")}


def same_where_both(old, new) -> bool:
    """Whether every value of ``old`` is equal in ``new`` (nested dicts compared key by key, so a
    metric that only the newer code writes, e.g. PCK, does not count as a difference)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() <= new.keys() and all(same_where_both(old[k], new[k]) for k in old)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(same_where_both(a, b) for a, b in zip(old, new))
    return old == new


def added_keys(old: dict, new: dict) -> list[str]:
    """The metrics ``new`` has and ``old`` has not (top level of the metrics block)."""
    return sorted(new["metrics"].keys() - old["metrics"].keys())


def compare(old: Path, new: Path, run: str, evaluated: bool) -> dict:
    """Whether ``run``'s weights, log and (if scored) predictions and errors are identical in both."""
    a, b = _weights(old / run / "model.pt"), _weights(new / run / "model.pt")
    row = {"run": run, "tensors": len(a),
           "weights_identical": a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a),
           "log_identical": _log(old / f"{run}.csv") == _log(new / f"{run}.csv")}
    if evaluated:
        row["predictions_identical"] = pd.read_parquet(old / f"{run}.parquet").equals(
            pd.read_parquet(new / f"{run}.parquet"))
        before, after = _errors(old / f"{run}.json"), _errors(new / f"{run}.json")
        row["errors_identical"] = same_where_both(before, after)
        row["metrics_added"] = added_keys(before, after)
        row["p1_mm"] = json.loads((new / f"{run}.json").read_text())["metrics"]["mpjpe_mm"]["action_mean"]
    return row


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--old", required=True, help="a checkout of the code before the change")
    cli.add_argument("--new", default=str(REPO), help="the checkout after it (default: this one)")
    cli.add_argument("--aligned", default="data/aligned")
    cli.add_argument("--images", default="data/images")
    cli.add_argument("--detector", default="data/detector/model.pt")
    cli.add_argument("--stride", type=int, default=40, help="every n-th training frame (default 40)")
    cli.add_argument("--out", required=True)
    args = cli.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp) / "old", Path(tmp) / "new"
        old.mkdir(), new.mkdir()
        seconds = {"old": run_checkout(Path(args.old).resolve(), old, args),
                   "new": run_checkout(Path(args.new).resolve(), new, args)}
        rows = [compare(old, new, run, evaluated) for run, _, evaluated in RUNS]
    for row in rows:
        row.update(old_seconds=round(seconds["old"][row["run"]], 1), new_seconds=round(seconds["new"][row["run"]], 1))
        print(row)
    write_json({"old": subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.old, capture_output=True,
                                      text=True).stdout.strip(),
                "budget": f"one epoch over every {args.stride}th training frame, one seed, on gt",
                "all_identical": all(v for row in rows for k, v in row.items() if k.endswith("_identical")),
                "runs": rows}, args.out)


if __name__ == "__main__":
    main()
