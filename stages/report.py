"""Stage report: execute reports/comparison.ipynb with papermill and render it to HTML (code hidden).

Reads only artefacts (metrics JSON, training logs, the recorded convergence runs and experiments, predictions,
aligned data, cameras). Writes ``reports/comparison.html`` and ``reports/results.md`` (the
leaderboard as Markdown, committed).
The notebook receives the params.yaml keys its ``parameters`` cell declares (methods, data,
report), the runs to report (``run_grid``: every (run, 2D input) pair the pipeline trains, see
:func:`lifting.config.pipeline_runs`) and the artefact paths below.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from lifting.config import pipeline_runs, report_options
from lifting.report import notebook_parameters, render_report
from stages.common import parser, read_params, run

log = logging.getLogger("stages.report")


def cli():
    command = parser(__doc__)
    command.add_argument("--notebook", default="reports/comparison.ipynb", help="the report notebook")
    command.add_argument("--html", default="reports/comparison.html", help="the HTML to write")
    command.add_argument("--results-md", default="reports/results.md", help="the Markdown leaderboard to write")
    command.add_argument("--metrics", default="metrics", help="folder of <method>-<input2d>.json")
    command.add_argument("--train-logs", default="metrics/train", help="folder of <method>-<input2d>.csv")
    command.add_argument("--convergence", default="benchmarks/results/convergence",
                         help="folder of <run>-<input2d>.json convergence records (may be absent)")
    command.add_argument("--experiments", default="benchmarks/results/experiments",
                         help="folder of the runs outside the default pipeline (Context-Aware PoseFormer's; may be absent)")
    command.add_argument("--predictions", default="data/predictions", help="folder of <method>-<input2d>.parquet")
    command.add_argument("--aligned", default="data/aligned")
    command.add_argument("--cameras", default="data/parquet/cameras.parquet")
    return command


def settings(params: dict, args) -> dict:
    """What this stage takes from params.yaml (exactly the keys dvc.yaml declares for it; checked by
    tests/test_stage_params.py): the notebook's parameters besides the paths.

    The notebook gets the run names and the (run, input) pairs of ``runs`` (each method on its own
    2D inputs, GridConv once per SGT variant).
    """
    grid = pipeline_runs(params)
    return {"methods": list(dict.fromkeys(run for run, _ in grid)), "run_grid": [list(pair) for pair in grid],
            "data": {"inputs2d": list(params["data"]["inputs2d"])}, "report": report_options(params.get("report"))}


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    params = settings(read_params(args.params), args)
    paths = {"metrics_dir": args.metrics, "train_logs_dir": args.train_logs, "convergence_dir": args.convergence,
             "experiments_dir": args.experiments,
             "predictions_dir": args.predictions, "aligned_dir": args.aligned, "cameras_path": args.cameras,
             "results_md": args.results_md}
    # The kernel runs in this directory, so relative paths mean the same there as here.
    paths = {name: str(Path(value).resolve()) for name, value in paths.items()}
    started = time.perf_counter()
    size = render_report(args.notebook, args.html, notebook_parameters(args.notebook, params, paths), cwd=Path.cwd())
    log.info("wrote %s (%.1f MB) and %s in %.1f s", args.html, size / 1e6, args.results_md,
             time.perf_counter() - started)


if __name__ == "__main__":
    run(main)
