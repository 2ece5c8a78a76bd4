"""Every stage at Human3.6M's full size: seconds and peak memory, on the synthetic full-size set.

Usage (repository root, venv active, after `dvc repro normalize` on the embedded data)::

    python -m benchmarks.h36m_synthetic --out /tmp/h36m-full/npz
    python -m benchmarks.h36m_scale measure --npz /tmp/h36m-full/npz --work /tmp/h36m-full \\
        --parts data knn speed evaluate --out benchmarks/results/h36m-scale-cpu.json
    python -m benchmarks.h36m_scale measure ... --parts evaluate --runs simple_baseline semgcn

``--runs`` limits the speed and evaluate parts to some runs (their rows replace those runs' rows in
``--out``); ``--rounds`` repeats the speed part's embedded/full pairs (the median is kept).

Each part runs the pipeline's own stage modules (``python -m stages.<stage>``) in a child process,
with a params file in ``--work`` that is this repository's ``params.yaml`` pointed at the synthetic
files (``data.source: h36m``, the ``gt`` and ``cpn_ft_h36m_dbb`` 2D sources); peak memory is the
child's largest resident set. Results are merged into ``--out`` part by part, so parts can be
re-run alone.

* ``data``: fetch, normalize and align; seconds, peak memory, and each Parquet file's bytes per view.
* ``knn``: the lookup floor's build (its train stage) and query (its evaluate stage over the whole
  test set, 543k views), and the query rate of each scikit-learn index on 4,000 test views against
  the full library (``knn-index``), which is how the index was chosen.
* ``speed``: each method's training samples/s over a fixed number of steps of :func:`lifting.train.fit`
  with the real run's data path (the pipeline's budget: batch size, train stride, windows), on the
  embedded data and at full size, in turn, each in a fresh process; and the load's seconds and memory.
* ``evaluate``: each method's evaluate stage over the whole full-size test set, for a model trained one
  epoch over every 500th training frame (its accuracy means nothing; only the cost).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.time_pipeline import machine, run_measured

DETECTIONS = "cpn_ft_h36m_dbb"
#: (run name, method, its fixed config) measured by the speed and evaluate parts: the default run's
#: methods and the temporal ones (Context-Aware PoseFormer needs Human3.6M's videos, which the
#: synthetic set has not).
RUNS = (("simple_baseline", "simple_baseline", {}), ("semgcn", "semgcn", {}),
        ("modulated_gcn", "modulated_gcn", {}), ("hgn", "hgn", {}),
        ("gridconv_learnable", "gridconv", {"sgt": "learnable"}), ("videopose3d", "videopose3d", {}),
        ("rie_stage1", "rie", {"stage": 1}), ("rie", "rie", {"stage": 3}))
#: Pose3D-RIE's three training stages, each from the previous one's weights: (name, fixed config).
RIE_CHAIN = (("rie_stage1", {"stage": 1}), ("rie_stage2", {"stage": 2}), ("rie", {"stage": 3}))


def write_params(work: Path, npz: Path, budget: dict | None = None) -> Path:
    """This repository's params.yaml pointed at the synthetic files, in ``work``; with ``budget`` overlaid
    (and the logged test curve on every 500th test frame), as ``params-tiny.yaml``."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["data"].update(source="h36m", h36m_dir=str(npz), download=False, inputs2d=["gt", DETECTIONS])
    name = "params.yaml"
    if budget is not None:
        params["budget"] = {**params["budget"], **budget}
        params["train"]["curve_test_stride"] = 500
        name = "params-tiny.yaml"
    path = work / name
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def stage(work: Path, name: str, *arguments: str) -> dict:
    """Run ``python -m stages.<name> arguments`` and return its seconds and peak memory."""
    result = run_measured([sys.executable, "-m", f"stages.{name}", *arguments])
    print(f"{name} {' '.join(arguments[-2:])}: {result['seconds']} s, {result['peak_rss_mb']} MB", flush=True)
    return {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"]}


def parquet_sizes(folder: Path, views: int) -> dict:
    return {path.name: {"bytes": path.stat().st_size, "bytes_per_view": round(path.stat().st_size / views, 1)}
            for path in sorted(folder.glob("*.parquet"))}


def part_data(work: Path, params: Path) -> dict:
    common = ["--params", str(params)]
    rows = {"fetch": stage(work, "fetch", *common, "--out", str(work / "raw")),
            "normalize": stage(work, "normalize", *common, "--raw", str(work / "raw"), "--out", str(work / "parquet")),
            "align": stage(work, "align", *common, "--store", str(work / "parquet"), "--out", str(work / "aligned"))}
    views = sum(json.loads((work / "aligned" / "summary.json").read_text())["pairs"].values())
    return {"stages": rows, "views": views, "parquet": {"store": parquet_sizes(work / "parquet", views),
                                                      "aligned": parquet_sizes(work / "aligned", views)}}


def part_knn(work: Path, params: Path) -> dict:
    common = ["--params", str(params), "--aligned", str(work / "aligned")]
    model = work / "checkpoints" / "knn-gt"
    build = stage(work, "train", *common, "--method", "knn", "--input2d", "gt", "--out", str(model),
                  "--log", str(work / "logs" / "knn-gt.csv"))
    query = stage(work, "evaluate", *common, "--model", str(model / "model.pt"), "--input2d", "gt",
                  "--metrics", str(work / "metrics" / "knn-gt.json"),
                  "--predictions", str(work / "predictions" / "knn-gt.parquet"))
    index = run_measured([sys.executable, "-m", "benchmarks.h36m_scale", "knn-index", "--aligned",
                          str(work / "aligned")])
    return {"build": build, "query": query, "index_choice": json.loads(index["output"].splitlines()[-1])}


def knn_index(aligned: str, queries: int = 4000) -> dict:
    """Queries/s of each scikit-learn index (one job) for ``queries`` test views against the whole library."""
    from sklearn.neighbors import NearestNeighbors

    from lifting.data.split import Protocol, load_split
    from lifting.models.knn import normalize_2d

    data = load_split(aligned, "gt", "h36m17", Protocol())
    rows = np.random.default_rng(0).choice(len(data.test_inputs), queries, replace=False)
    library, query = normalize_2d(data.train_inputs), normalize_2d(data.test_inputs[rows])
    result, found = {"library": len(library), "queries": queries}, {}
    for algorithm in ("brute", "kd_tree", "ball_tree"):
        started = time.perf_counter()
        index = NearestNeighbors(n_neighbors=5, algorithm=algorithm, n_jobs=1).fit(library)
        built = time.perf_counter()
        found[algorithm] = index.kneighbors(query)[1]
        seconds = time.perf_counter() - built
        result[algorithm] = {"build_seconds": round(built - started, 2), "queries_per_s": round(queries / seconds, 1),
                             "whole_test_set_minutes": round(len(data.test_inputs) / (queries / seconds) / 60, 1)}
    result["same_neighbours_as_brute"] = {a: bool((found[a] == found["brute"]).all()) for a in found}
    return result


def train_speed(method: str, config: dict, aligned: str, steps: int, threads: int) -> dict:
    """Samples/s of ``steps`` steps of the pipeline's training loop on ``aligned``'s gt source, with
    the default budget's batch size and train stride and the run's own data path."""
    from lifting.device import pick_device

    from benchmarks.runs import budgeted_run, train_once

    started = time.perf_counter()
    run = budgeted_run(method, config, aligned, pick_device(threads))
    loaded = time.perf_counter() - started
    result = train_once(method, run.cfg, run.data, run.codec, run.arrays, run.schedule, seed=0, device=run.device,
                        max_steps=steps)
    return {"train_samples": len(run.arrays.targets), "batch_size": run.schedule.batch_size, "steps": result.steps,
            "samples_per_s": round(result.samples_per_s, 1), "load_seconds": round(loaded, 1), "threads": threads}


def part_speed(work: Path, runs: list[str], steps: dict[str, int], threads: int, rounds: int) -> dict:
    """Each of ``runs``' training samples/s on the embedded data and at full size, alternating, ``rounds``
    times (a busy machine slows both alike); the rows keep every round and the median."""
    rows = []
    for run, method, config in RUNS:
        if run not in runs:
            continue
        for size, aligned in (("embedded", "data/aligned"), ("full", str(work / "aligned"))):
            rows.append({"run": run, "data": size, "rounds": []})
        for _ in range(rounds):
            for row in rows[-2:]:
                aligned = "data/aligned" if row["data"] == "embedded" else str(work / "aligned")
                measured = run_measured([sys.executable, "-m", "benchmarks.h36m_scale", "train-speed", "--method",
                                         method, "--config", json.dumps(config), "--aligned", aligned, "--steps",
                                         str(steps.get(method, steps["default"])), "--threads", str(threads)])
                row["rounds"].append({**json.loads(measured["output"].splitlines()[-1]),
                                      "seconds": measured["seconds"], "peak_rss_mb": measured["peak_rss_mb"]})
                print(run, row["data"], json.dumps(row["rounds"][-1]), flush=True)
        for row in rows[-2:]:
            median = sorted(row["rounds"], key=lambda r: r["samples_per_s"])[len(row["rounds"]) // 2]
            row.update({key: median[key] for key in ("train_samples", "batch_size", "steps", "samples_per_s",
                                                     "load_seconds", "threads")},
                       peak_rss_mb=max(r["peak_rss_mb"] for r in row["rounds"]))
        embedded, full = rows[-2:]
        full["full_over_embedded"] = round(full["samples_per_s"] / embedded["samples_per_s"], 3)
    return {"rows": rows, "steps": steps, "rounds": rounds}


def part_evaluate(work: Path, npz: Path, runs: list[str]) -> dict:
    """Each of ``runs`` trained briefly (one epoch over every 500th training frame, one seed), then its
    evaluate stage over the whole test set."""
    tiny = write_params(work, npz, {"max_epochs": 1, "max_seeds": 1, "curve_points": 0, **{
        budget: {"train_stride": 500} for budget in ("simple_baseline", "semgcn", "modulated_gcn", "hgn", "gridconv",
                                                      "videopose3d", "rie_stage1", "rie_stage2", "rie")}})
    common = ["--params", str(tiny), "--aligned", str(work / "aligned")]
    rows = []
    for run, method, config in RUNS:
        if run not in runs:
            continue
        previous = None  # a later RIE stage starts from the one before
        for name, stage_config in RIE_CHAIN if run == "rie" else ((run, config),):
            init = ["--init", str(previous)] if previous else []
            model = work / "checkpoints" / f"{name}-gt"
            sets = [item for key, value in stage_config.items() for item in ("--set", f"{key}={value}")]
            stage(work, "train", *common, "--method", method, "--name", name, "--input2d", "gt", *sets, *init,
                  "--out", str(model), "--log", str(work / "logs" / f"{name}-gt.csv"))
            previous = model / "model.pt"
        measured = stage(work, "evaluate", *common, "--model", str(previous), "--input2d", "gt",
                         "--metrics", str(work / "metrics" / f"{run}-gt.json"),
                         "--predictions", str(work / "predictions" / f"{run}-gt.parquet"))
        rows.append({"run": run, **measured})
    return {"rows": rows}


def merged_rows(earlier: dict | None, rows: list[dict]) -> list[dict]:
    """``earlier``'s rows of the runs ``rows`` does not have, then ``rows``, in :data:`RUNS` order."""
    kept = [row for row in (earlier or {}).get("rows", []) if row["run"] not in {r["run"] for r in rows}]
    order = [run for run, *_ in RUNS]
    return sorted(kept + rows, key=lambda row: order.index(row["run"]))


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = cli.add_subparsers(dest="command")
    measure = commands.add_parser("measure", help="run the parts and merge their results into --out")
    measure.add_argument("--npz", type=Path, required=True, help="the synthetic files (benchmarks/h36m_synthetic.py)")
    measure.add_argument("--work", type=Path, required=True, help="a scratch folder for the stages' outputs")
    measure.add_argument("--parts", nargs="+", choices=["data", "knn", "speed", "evaluate"], required=True)
    measure.add_argument("--threads", type=int, default=1, help="training threads in the speed part")
    measure.add_argument("--rounds", type=int, default=3, help="alternating rounds of the speed part")
    measure.add_argument("--runs", nargs="+", default=[run for run, *_ in RUNS], choices=[run for run, *_ in RUNS],
                         help="the runs the speed and evaluate parts measure (default: all); their rows replace "
                              "those of the same runs in --out")
    measure.add_argument("--out", type=Path, default=Path("benchmarks/results/h36m-scale-cpu.json"))
    speed = commands.add_parser("train-speed", help="one method's training samples/s (a child of the speed part)")
    speed.add_argument("--method", required=True)
    speed.add_argument("--config", default="{}")
    speed.add_argument("--aligned", required=True)
    speed.add_argument("--steps", type=int, required=True)
    speed.add_argument("--threads", type=int, default=1)
    index = commands.add_parser("knn-index", help="query rates of the scikit-learn indexes (a child of the knn part)")
    index.add_argument("--aligned", required=True)
    args = cli.parse_args(argv)
    if args.command == "train-speed":
        print(json.dumps(train_speed(args.method, json.loads(args.config), args.aligned, args.steps, args.threads)))
        return
    if args.command == "knn-index":
        print(json.dumps(knn_index(args.aligned)))
        return
    if args.command != "measure":
        cli.error("choose a command: measure, train-speed or knn-index")
    args.work.mkdir(parents=True, exist_ok=True)
    params = write_params(args.work, args.npz)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    steps = {"default": 200, "videopose3d": 20, "rie": 6}
    for part in args.parts:
        if part == "data":
            results["data"] = part_data(args.work, params)
        elif part == "knn":
            results["knn"] = part_knn(args.work, params)
        elif part == "speed":
            measured = part_speed(args.work, args.runs, steps, args.threads, args.rounds)
            results["speed"] = {**measured, "rows": merged_rows(results.get("speed"), measured["rows"])}
        else:
            measured = part_evaluate(args.work, args.npz, args.runs)
            results["evaluate"] = {"rows": merged_rows(results.get("evaluate"), measured["rows"])}
        results["machine"] = machine()
        results["command"] = "python -m benchmarks.h36m_scale " + " ".join(sys.argv[1:] if argv is None else argv)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
