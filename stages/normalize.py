"""Stage normalize: raw files of ``data.source`` -> the canonical Parquet store (data/parquet/)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lifting.data.embedded import build_embedded
from lifting.data.store import write_store
from lifting.io import atomic_dir
from lifting.config import DataParams, files_2d
from stages.common import data_params, parser, read_params, run

log = logging.getLogger("normalize")


def cli():
    command = parser(__doc__)
    command.add_argument("--raw", default="data/raw", help="raw data folder (fetch's output)")
    command.add_argument("--out", default="data/parquet", help="store folder")
    return command


def settings(params: dict, args) -> DataParams:
    """What this stage takes from params.yaml: exactly the keys dvc.yaml declares for it
    (tests/test_stage_params.py checks this against every key of params.yaml)."""
    return data_params(params, "source", "inputs2d")


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    data = settings(read_params(args.params), args)
    raw = Path(args.raw) / data.source
    if data.source == "embedded":
        tables = build_embedded(raw / "motions")
    else:
        from lifting.data.h36m import read_h36m

        manifest_path = raw / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        tables = read_h36m(raw, files_2d(data.inputs2d), origin_dir=manifest.get("h36m_dir"))
    with atomic_dir(args.out) as out:
        write_store(tables, out, data.source)
    log.info("%d 3D frames, %d 2D rows (%s)", len(tables.poses3d), len(tables.poses2d), ", ".join(tables.sources2d))


if __name__ == "__main__":
    run(main)
