"""The one exception type for bad input: it names the offending file and says how to fix it."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad or missing input. The message names the file and the fix."""

    def __init__(self, path: str | Path | None, problem: str, fix: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        self.fix = fix
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}. Fix: {fix}")
