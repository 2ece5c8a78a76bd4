"""lifting/io.py: outputs appear whole or not at all, and a killed writer's temporaries are cleaned up."""

import errno
import os
import subprocess
import sys

import pytest

from lifting.errors import DataError
from lifting.io import atomic_dir, atomic_path


def a_dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def test_a_failed_write_keeps_the_previous_output_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("previous")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the writer failed")
    assert path.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with atomic_path(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_killed_writers_temporaries_are_removed_and_a_running_ones_kept(tmp_path):
    dead, alive = a_dead_pid(), os.getpid()
    (tmp_path / f".images.{dead}.abc123.tmp").mkdir()
    (tmp_path / f".images.{dead}.abc123.tmp" / "views.parquet").write_bytes(b"half")
    (tmp_path / f".model.pt.{dead}.x1.tmp").write_bytes(b"half")
    (tmp_path / f".images.{alive}.def456.tmp").mkdir()
    with atomic_dir(tmp_path / "images") as out:
        (out / "views.parquet").write_bytes(b"whole")
    with atomic_path(tmp_path / "model.pt") as tmp:
        tmp.write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".images.{alive}.def456.tmp", "images", "model.pt"]
    assert (tmp_path / "images" / "views.parquet").read_bytes() == b"whole"


def test_an_error_inside_a_folder_names_the_final_path_not_the_temporary(tmp_path):
    with pytest.raises(DataError) as caught, atomic_dir(tmp_path / "images") as out, atomic_path(out / "views.parquet"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.path == tmp_path / "images" / "views.parquet"
    assert "could not write (No space left on device)" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
