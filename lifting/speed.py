"""Machine-dependent figures (seconds, samples/s) kept beside a metrics file, not in it.

DVC compares the files a stage declares as metrics (``dvc metrics diff``, ``dvc exp show``); a
run's training seconds and samples/s differ from machine to machine and from run to run, so
there every line of the diff was timing and no accuracy figure stood out. :func:`write_metrics`
therefore splits a stage's record: the figures of :data:`SPEED_KEYS` go to
``<metrics folder>/speed/<name>.json`` (an output, not a declared metric), the rest to the
metrics file; :func:`read_metrics` puts them back together for the report and the benchmarks.
"""

from __future__ import annotations

import json
from pathlib import Path

from lifting.io import write_json

#: Leaf keys, at any depth, whose values measure the machine rather than the method.
SPEED_KEYS = frozenset({"seconds", "train_seconds", "core_seconds", "samples_per_s", "inference_samples_per_s",
                        "views_per_s"})


def speed_path(metrics_path: str | Path) -> Path:
    """``metrics/x.json`` -> ``metrics/speed/x.json``."""
    metrics_path = Path(metrics_path)
    return metrics_path.parent / "speed" / metrics_path.name


def split_speed(record: dict) -> tuple[dict, dict]:
    """(``record`` without the :data:`SPEED_KEYS` leaves, those leaves in the same nesting)."""
    kept, speed = {}, {}
    for key, value in record.items():
        if isinstance(value, dict):
            kept[key], inner = split_speed(value)
            if inner:
                speed[key] = inner
        elif key in SPEED_KEYS:
            speed[key] = value
        else:
            kept[key] = value
    return kept, speed


def merge_speed(record: dict, speed: dict) -> dict:
    """The inverse of :func:`split_speed`."""
    merged = dict(record)
    for key, value in speed.items():
        merged[key] = merge_speed(merged.get(key) or {}, value) if isinstance(value, dict) else value
    return merged


def write_metrics(record: dict, path: str | Path) -> None:
    """Write ``record``'s accuracy to ``path`` and its speed to :func:`speed_path` (both atomically)."""
    kept, speed = split_speed(record)
    write_json(speed, speed_path(path))
    write_json(kept, path)


def read_metrics(path: str | Path) -> dict:
    """A metrics file with its speed sibling merged back (when there is one)."""
    record = json.loads(Path(path).read_text())
    sibling = speed_path(path)
    return merge_speed(record, json.loads(sibling.read_text())) if sibling.is_file() else record
