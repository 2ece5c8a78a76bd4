"""Stage fetch: make the raw inputs of ``data.source`` available under data/raw/<source>/."""

from __future__ import annotations

from pathlib import Path

from lifting.data import deepmimic
from lifting.io import atomic_dir, write_json
from lifting.config import DataParams, files_2d
from stages.common import data_params, parser, read_params, run


def cli():
    command = parser(__doc__)
    command.add_argument("--out", default="data/raw", help="raw data folder")
    return command


def settings(params: dict, args) -> DataParams:
    """What this stage takes from params.yaml: exactly the keys dvc.yaml declares for it
    (tests/test_stage_params.py checks this against every key of params.yaml)."""
    return data_params(params, "source", "h36m_dir", "smpl_dir", "download", "inputs2d")


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    data = settings(read_params(args.params), args)
    with atomic_dir(Path(args.out)) as out:
        raw = out / data.source
        if data.source == "embedded":
            manifest = deepmimic.copy_clips(raw / "motions")
        else:
            from lifting.data.h36m import fetch_h36m

            manifest = fetch_h36m(Path(data.h36m_dir), files_2d(data.inputs2d), raw, data.download,
                                  smpl_dir=Path(data.smpl_dir) if data.smpl_dir else None)
        write_json(manifest, raw / "manifest.json")


if __name__ == "__main__":
    run(main)
