"""Stage evaluate_3dhp_<method>@<input2d>: score a trained run zero-shot on MPI-INF-3DHP's test set.

Writes ``metrics/3dhp/<run>-<input2d>.json``: PCK@150 mm, AUC and P1 per scene group, sequence,
activity and joint, the mean over the run's seeds (:mod:`lifting.cross_dataset`), or, where
``data.mpi3dhp_dir`` is null (``normalize_3dhp`` skipped), a record saying so, without loading the run.
"""

from __future__ import annotations

from pathlib import Path

from lifting.config import DataParams
from lifting.io import write_json
from stages.common import data_params, parser, read_params, run, skipped_reason


def cli():
    command = parser(__doc__)
    command.add_argument("--model", required=True, help="model.pt written by the train stage")
    command.add_argument("--input2d", required=True, help="the 2D source the run was trained on")
    command.add_argument("--store", default="data/mpi3dhp", help="normalize_3dhp's folder")
    command.add_argument("--metrics", required=True, help="metrics JSON to write")
    return command


def settings(params: dict, args) -> DataParams:
    """What this stage takes from params.yaml: exactly the keys dvc.yaml declares for it
    (tests/test_stage_params.py checks this against every key of params.yaml)."""
    return data_params(params, "source")


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    data_cfg = settings(read_params(args.params), args)
    skipped = skipped_reason(args.store)
    if skipped is not None:
        write_json({"skipped": skipped}, args.metrics)
        return
    from lifting.cross_dataset import load_test_set, protocol, score  # torch and the method: only when scoring
    from lifting.runner import load_method

    saved, predictors = load_method(Path(args.model))
    test = load_test_set(args.store, saved.joint_set)
    # A temporal method predicts whole sequences (its windows reach frames that are not scored), the others
    # the scored frames only.
    if saved.input_spec["temporal"]:
        predicted = [predictor(test.inputs, test.meta)[test.valid] for predictor in predictors]
    else:
        predicted = [predictor(test.inputs[test.valid]) for predictor in predictors]
    scores, seeds = score(predicted, test, saved.record.seeds)
    write_json({"method": saved.name, "architecture": saved.method, "input2d": args.input2d,
                "protocol": protocol(test, data_cfg.source, args.input2d, saved), "metrics": scores, "seeds": seeds},
               args.metrics)


if __name__ == "__main__":
    run(main)
