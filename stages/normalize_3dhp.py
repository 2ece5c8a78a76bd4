"""Stage normalize_3dhp: the user's MPI-INF-3DHP test set (``data.mpi3dhp_dir``) -> its canonical store.

Writes ``data/mpi3dhp/`` (poses3d, poses2d and cameras Parquet tables and ``manifest.json`` with each
file's sha256), or, with ``data.mpi3dhp_dir: null``, only ``summary.json`` saying that MPI-INF-3DHP is
skipped (then every ``evaluate_3dhp_<method>`` stage writes a skipped record and loads no model).
"""

from __future__ import annotations

from pathlib import Path

from lifting.config import DataParams
from lifting.io import atomic_dir, write_json
from stages.common import data_params, parser, read_params, run, write_skipped


def cli():
    command = parser(__doc__)
    command.add_argument("--out", default="data/mpi3dhp", help="store folder")
    return command


def settings(params: dict, args) -> DataParams:
    """What this stage takes from params.yaml: exactly the keys dvc.yaml declares for it
    (tests/test_stage_params.py checks this against every key of params.yaml)."""
    return data_params(params, "mpi3dhp_dir")


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    folder = settings(read_params(args.params), args).mpi3dhp_dir
    if folder is None:
        write_skipped(args.out, "data.mpi3dhp_dir is null: MPI-INF-3DHP's test set is not configured")
        return
    from lifting.data.mpi3dhp import SOURCE, read_mpi3dhp  # h5py, pandas, pyarrow: only with a file to read
    from lifting.data.store import write_store

    tables, manifest = read_mpi3dhp(Path(folder))
    with atomic_dir(args.out) as out:
        write_store(tables, out, SOURCE)
        write_json(manifest, out / "manifest.json")


if __name__ == "__main__":
    run(main)
