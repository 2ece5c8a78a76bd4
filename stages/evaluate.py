"""Stage evaluate_<method>@<input2d>: score a trained method on the test subjects.

Writes ``metrics/<method>-<input2d>.json`` (small, stable, no timestamps or paths; every metric
is the mean over the run's seeds, with the per-seed headline numbers and their spread under
``seeds``) and ``data/predictions/<method>-<input2d>.parquet`` (the first seed's predictions).
The test rows are read, predicted, scored and written a few whole runs at a time
(:func:`lifting.data.split.evaluation_chunks`), so memory does not grow with the test set.
"""

from __future__ import annotations

import time
from pathlib import Path

from lifting.config import DataParams, EvalParams, parse_section
from lifting.data.split import Protocol, evaluation_chunks
from lifting.data.schema import write_table_parts
from lifting.evaluation import SeedScores, predictions_frame, protocol_block, summarize_seed_scores
from lifting.images.store import ViewCrops, images_folder
from lifting.runner import load_method
from lifting.speed import write_metrics
from stages.common import data_params, parser, read_params, run


def cli():
    command = parser(__doc__)
    command.add_argument("--model", required=True, help="model.pt written by the train stage")
    command.add_argument("--input2d", required=True)
    command.add_argument("--aligned", default="data/aligned")
    command.add_argument("--images", help="render's folder, for a method that looks at the image")
    command.add_argument("--metrics", required=True, help="metrics JSON to write")
    command.add_argument("--predictions", required=True, help="predictions Parquet to write")
    return command


def settings(params: dict, args) -> tuple[DataParams, EvalParams]:
    """What this stage takes from params.yaml: exactly the keys dvc.yaml declares for it
    (tests/test_stage_params.py checks this against every key of params.yaml)."""
    return (data_params(params, "source", "test_subjects"),
            parse_section(EvalParams, params.get("eval", {}), "eval"))


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    data_cfg, evaluation = settings(read_params(args.params), args)
    saved, predictors = load_method(Path(args.model))
    record = saved.record
    protocol = Protocol(exclude_s9_damaged=evaluation.exclude_s9_damaged, test_every50=evaluation.test_every50,
                        train_stride=record.budget["train_stride"])
    # A temporal method predicts whole runs (its windows reach frames the protocol may leave out),
    # then keeps the protocol's rows.
    chunks = evaluation_chunks(args.aligned, args.input2d, saved.joint_set, protocol, whole_runs=saved.input_spec["temporal"])
    crops = ViewCrops(images_folder(args.images)) if saved.input_spec["images"] else None
    scores = [SeedScores(saved.joint_set) for _ in predictors]
    timed = {"seconds": 0.0, "rows": 0}

    def predicted_parts():
        """Each chunk's first-seed predictions as the predictions table's rows, every seed scored on the way."""
        for chunk in chunks:
            context = crops.context(chunk.meta) if crops is not None else None
            meta = chunk.meta[chunk.scored].reset_index(drop=True)
            targets = chunk.targets[chunk.scored]
            started = time.perf_counter()
            predicted = [predictor(chunk.inputs, chunk.meta, context)[chunk.scored] for predictor in predictors]
            timed["seconds"] += time.perf_counter() - started
            timed["rows"] += len(meta)
            for score, seed_predicted in zip(scores, predicted):
                score.add(seed_predicted, targets, meta)
            yield predictions_frame(predicted[0], meta, saved.joint_set)

    write_table_parts(predicted_parts(), args.predictions,
                      {"table": "predictions", "joint_set": saved.joint_set, "units": "mm",
                       "frame": "camera, root-relative", "method": saved.name, "source2d": args.input2d})
    metrics, seeds = summarize_seed_scores([score.result() for score in scores], record.seeds)
    result = {
        "method": saved.name,
        "architecture": saved.method,
        "input2d": args.input2d,
        "protocol": protocol_block(data_cfg.source, saved.joint_set, protocol, data_cfg.test_subjects,
                                   saved.input_spec["flip_test"],
                                   record.checkpoint, record.budget, saved),
        "metrics": metrics,
        "seeds": seeds,
        "config": saved.config,
        "parameters": saved.parameters,
        "training": {"seconds": record.train_seconds, "epochs": record.epochs,
                     "selected_epoch": record.selected_epoch, "samples": record.train_samples,
                     "samples_per_s": record.samples_per_s, "samples_seen": record.samples_seen,
                     "core_seconds": record.core_seconds, "schedule": record.schedule,
                     **({"stages": record.stages} if record.stages is not None else {})},
        "inference_samples_per_s": round(timed["rows"] * len(predictors) / max(timed["seconds"], 1e-9), 1),
    }
    write_metrics(result, args.metrics)


if __name__ == "__main__":
    run(main)
