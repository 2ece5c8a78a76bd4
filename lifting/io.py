"""Atomic writes: outputs appear under their final name only once complete.

Every writer goes through :func:`atomic_path` (one file) or :func:`atomic_dir` (a directory), so a
stage that fails half-way leaves no half-written output behind.
"""

from __future__ import annotations

import contextlib
import errno
import csv
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from lifting.errors import DataError


def _default_mode(directory: bool) -> int:
    """The permissions a plain open()/mkdir() would give under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


#: errno values that mean "this output cannot be written here" (disk full, quota, read-only, denied).
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


@contextlib.contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    """Disk full, a read-only or forbidden folder: one :class:`DataError` naming ``path``.

    torch reports a failed write as a RuntimeError from its stream writer ("enforce fail").
    """
    fix = "free disk space or make the folder writable, then re-run; the previous output, if any, is unchanged"
    try:
        yield
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        raise DataError(path, f"could not write ({os.strerror(err.errno)})", fix) from None
    except RuntimeError as err:
        if "PytorchStreamWriter" not in str(err) and "enforce fail" not in str(err):
            raise
        raise DataError(path, "could not write (the disk is full or the folder is not writable)", fix) from None


def _temporary_prefix(path: Path) -> str:
    """``.<name>.<pid>.``: the temporary beside ``path`` says which process writes it."""
    return f".{path.name}.{os.getpid()}."


def _remove_leftovers(path: Path) -> None:
    """Delete the temporaries beside ``path`` whose process no longer runs (killed with -9: its
    ``finally`` never ran), so an interrupted stage leaves no stray copy once it runs again."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = stale.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    with _write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(path)
        fd, tmp_name = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        tmp.chmod(_default_mode(directory=False))
        try:
            yield tmp
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; it replaces ``path`` on success.

    An error about a file inside it names the file's final path (``images/views.parquet``, not the
    temporary directory's)."""
    path = Path(path)
    with _write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(path)
        tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent))
        tmp.chmod(_default_mode(directory=True))
        try:
            try:
                yield tmp
            except DataError as err:
                if err.path is None or not err.path.is_relative_to(tmp):
                    raise
                raise DataError(path / err.path.relative_to(tmp), err.problem, err.fix) from None
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(data, path: str | Path) -> None:
    """Write ``data`` as stable, human-readable JSON (sorted keys, trailing newline), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(rows: list[dict], path: str | Path, columns) -> None:
    """Write ``rows`` (dicts keyed by ``columns``) as CSV with a header, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)
