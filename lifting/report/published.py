"""Published Human3.6M figures: ``published.csv`` beside this module, loaded and checked.

The file holds only the rows of reference/methods.md §9 with a verified P1, one per paper
configuration and 2D input, each with its ``source`` (where the number is printed) and a ``note``
for protocol caveats. The first row of a (method, input kind) is the configuration our defaults
reproduce and is the one shown beside our runs in the leaderboard. Numbers stay text, exactly as
the source prints them ("44.40", not 44.4).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from pathlib import Path

import pandas as pd

from lifting.errors import DataError

PUBLISHED_LABEL = "published, Human3.6M"
#: The data file, inside this package (declared as package data in pyproject.toml).
PUBLISHED_FILE = "published.csv"
_NUMBER = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True)
class Published:
    """One published result on Human3.6M (S9+S11, mm), from reference/methods.md §9.

    Attributes:
        method: our method key (``simple_baseline``, ...), or the anchor's key.
        variant: the paper's configuration the numbers belong to.
        frames: temporal receptive field. input2d: the 2D input as the paper names it.
        input_kind: how our ``data.inputs2d`` names that input: ``gt`` or the prefix of a
            detection source (``cpn_ft``, ``sh_ft``, ``hrnet``); matched by :func:`published_for`.
        p1, p2: MPJPE and P-MPJPE in mm, as printed by the source (``None``: not published or
            not verified).
        params: parameter count as reported (or computed, where marked).
        source: where the number comes from. note: protocol caveats.
    """

    method: str
    variant: str
    frames: int
    input2d: str
    input_kind: str
    p1: str
    p2: str | None
    params: str | None
    source: str
    note: str = ""


COLUMNS = tuple(f.name for f in fields(Published))
_REQUIRED = ("method", "variant", "input2d", "input_kind", "p1", "source")


def _row(raw: dict, where: str, line: int) -> Published:
    def fail(problem: str):
        raise DataError(where, f"line {line}: {problem}", f"correct that row (columns: {', '.join(COLUMNS)})")

    values = {name: (raw.get(name) or "").strip() for name in COLUMNS}
    for name in _REQUIRED:
        if not values[name]:
            fail(f"empty {name!r}")
    for name in ("p1", "p2"):
        if values[name] and not _NUMBER.fullmatch(values[name]):
            fail(f"{name} {values[name]!r} is not a number of mm")
    if not values["frames"].isdigit() or int(values["frames"]) < 1:
        fail(f"frames {values['frames']!r} is not a positive integer")
    return Published(values["method"], values["variant"], int(values["frames"]), values["input2d"],
                     values["input_kind"], values["p1"], values["p2"] or None, values["params"] or None,
                     values["source"], values["note"])


def read_published(path: str | Path | None = None) -> tuple[Published, ...]:
    """The rows of ``path`` (default: this package's ``published.csv``), each checked.

    Raises:
        DataError: a missing column, an empty required field, a P1/P2 that is not a number, or
            frames that are not a positive integer (the message names the file and the line).
    """
    if path is None:
        source = resources.files(__package__) / PUBLISHED_FILE
        where, text = str(source), source.read_text(encoding="utf-8")
    else:
        where, text = str(path), Path(path).read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise DataError(where, f"published figures lack column(s) {missing}", f"the header is {','.join(COLUMNS)}")
    return tuple(_row(raw, where, line) for line, raw in enumerate(reader, start=2))


@cache
def published_rows() -> tuple[Published, ...]:
    """The package's published figures (read once)."""
    return read_published()


def published_for(method: str, input2d: str) -> Published | None:
    """The published row that matches one of our runs: same method, same kind of 2D input."""
    for row in published_rows():
        if row.method == method and (input2d == row.input_kind if row.input_kind == "gt"
                                     else input2d.startswith(row.input_kind)):
            return row
    return None


def published_table(methods=None) -> pd.DataFrame:
    """The published rows (of ``methods``, or all), as a table labelled "published, Human3.6M"."""
    rows = [row for row in published_rows() if methods is None or row.method in set(methods)]
    return pd.DataFrame({
        "method": [r.method for r in rows],
        "configuration": [r.variant for r in rows],
        "frames": [r.frames for r in rows],
        "2D input": [r.input2d for r in rows],
        "P1 (mm)": [r.p1 for r in rows],
        "P2 (mm)": [r.p2 for r in rows],
        "params": [r.params for r in rows],
        "source": [r.source + (f"; {r.note}" if r.note else "") for r in rows],
    })
