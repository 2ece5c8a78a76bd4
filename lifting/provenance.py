"""A fingerprint of the code that produced an output, so that a checkpoint never outlives its code.

A training stage keeps its checkpoint between runs (DVC ``persist: true``) to resume after an
interruption. DVC re-runs the stage when its code changes; without the fingerprint the new run
would find a finished checkpoint with the same params and resume it, i.e. keep the old model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def code_digest(*extra_files: str | Path, package: Path = PACKAGE) -> str:
    """sha256 (hex) over the relative path and content of every ``*.py`` file of ``package`` (the
    ``lifting`` library by default), in sorted order, then of ``extra_files`` (e.g. the stage)."""
    digest = hashlib.sha256()
    files = [(path.relative_to(package).as_posix(), path) for path in sorted(package.rglob("*.py"))]
    files += [(Path(extra).name, Path(extra)) for extra in extra_files]
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def file_digest(path: str | Path) -> str:
    """sha256 (hex) of one file's content (e.g. the previous stage's model a stage starts from)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
