"""Stage align: the store -> camera-frame targets, normalised 2D, split, flags and statistics."""

from __future__ import annotations

import logging
from pathlib import Path

from lifting.data.align import align_store, write_aligned
from lifting.data.store import read_store, with_detected
from lifting.errors import DataError
from lifting.io import atomic_dir, write_json
from lifting.config import DETECTED, DataParams
from stages.common import data_params, parser, read_params, run

log = logging.getLogger("align")


def cli():
    command = parser(__doc__)
    command.add_argument("--store", default="data/parquet", help="store folder (normalize's output)")
    command.add_argument("--detected", help="detect2d's folder: adds the detected 2D source when "
                                             "data.inputs2d names it")
    command.add_argument("--out", default="data/aligned", help="aligned folder")
    return command


def settings(params: dict, args) -> DataParams:
    """What this stage takes from params.yaml: exactly the keys dvc.yaml declares for it
    (tests/test_stage_params.py checks this against every key of params.yaml)."""
    return data_params(params, "source", "inputs2d", "train_subjects", "test_subjects")


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    data = settings(read_params(args.params), args)
    tables = read_store(args.store, data.source)
    if DETECTED in data.inputs2d:
        if not args.detected:
            raise DataError(None, "data.inputs2d names 'detected' and no --detected folder was given",
                            "run align through `dvc repro` (its command passes detect2d's folder)")
        tables = with_detected(tables, Path(args.detected) / "poses2d.parquet", data.source)
    aligned = align_store(tables, data.train_subjects, data.test_subjects)
    counts = aligned.targets.groupby(["split", "subject"]).size()
    with atomic_dir(args.out) as out:
        write_aligned(aligned, out, data.source)
        write_json({"pairs": {f"{split}/{subject}": int(n) for (split, subject), n in counts.items()},
                    "sources2d": sorted(aligned.inputs)}, out / "summary.json")
    log.info("aligned %d pairs: %s", len(aligned.targets), counts.to_dict())


if __name__ == "__main__":
    run(main)
