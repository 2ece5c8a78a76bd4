"""The report's robustness section: every run's P1 as its test 2D gets worse.

Reads the robustness stages' ``metrics/robustness/<run>-<input2d>.json`` (:mod:`stages.robustness`)
and builds, per kind of perturbation, a table and a figure (P1 against the level, one line per
method, one panel per 2D input), and the ranking the curves imply: the increase of P1 from level 0
to the top level, per kind, and the methods ordered by their mean rank over the kinds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lifting.errors import DataError
from lifting.report.artefacts import load_run_records
from lifting.report.figures import method_colours, new_figure
from lifting.robustness import DESCRIPTIONS, KINDS, TITLES, UNITS, level_label


def load_robustness(metrics_dir: str | Path, grid) -> dict[tuple[str, str], dict]:
    """``{(run, input2d): robustness record}`` for the pairs of ``grid`` whose file
    ``<metrics_dir>/robustness/<run>-<input2d>.json`` exists, in ``grid``'s order."""
    records = load_run_records(Path(metrics_dir) / "robustness", grid, "robustness")
    for (run, input2d), record in records.items():
        if not all(kind in record.get("metrics", {}) for kind in KINDS) or "levels" not in record.get("protocol", {}):
            raise DataError(Path(metrics_dir) / "robustness" / f"{run}-{input2d}.json",
                            f"a robustness record needs metrics and protocol levels of {list(KINDS)}",
                            "re-run its robustness stage (`dvc repro`)")
    return records


def _curve(record: dict, kind: str) -> tuple[list[float], list[float]]:
    """(levels, P1 mm at each) of one record's ``kind``."""
    levels = list(record["protocol"]["levels"][kind])
    return levels, [record["metrics"][kind][level_label(kind, level)]["p1_mm"] for level in levels]


def robustness_table(records: dict, kind: str) -> pd.DataFrame:
    """One row per run and 2D input: P1 (mm) at each level of ``kind`` (columns by level label) and
    its increase from level 0 to the top level."""
    levels = sorted({level for record in records.values() for level in record["protocol"]["levels"][kind]})
    rows = []
    for (run, input2d), record in records.items():
        own, p1 = _curve(record, kind)
        points = dict(zip(own, p1))
        rows.append([run, input2d, *(points.get(level, np.nan) for level in levels), round(p1[-1] - p1[0], 2)])
    return pd.DataFrame(rows, columns=["method", "2D input", *(level_label(kind, v) for v in levels),
                                       "increase (mm)"])


def kind_tables(records: dict) -> list[tuple[str, str, pd.DataFrame]]:
    """(kind, title, :func:`robustness_table`) of every kind, in :data:`lifting.robustness.KINDS` order."""
    return [(kind, f"{TITLES[kind]} ({UNITS[kind]})", robustness_table(records, kind)) for kind in KINDS]


def degradation(records: dict) -> pd.DataFrame:
    """The P1 increase (mm) from level 0 to the top level: one row per run and 2D input, one column per kind."""
    rows = []
    for (run, input2d), record in records.items():
        p1 = {kind: _curve(record, kind)[1] for kind in KINDS}
        rows.append([run, input2d, *[round(p1[kind][-1] - p1[kind][0], 2) for kind in KINDS]])
    return pd.DataFrame(rows, columns=["method", "2D input", *KINDS])


def ranking_sentences(records: dict) -> list[str]:
    """Per 2D input, the ranking the curves imply: the methods by their mean rank over the kinds
    (rank 1 = the smallest P1 increase from level 0 to the top level), then each kind's increases."""
    sentences = []
    for input2d, table in degradation(records).groupby("2D input", sort=False):
        table = table.assign(mean_rank=table[list(KINDS)].rank(method="min").mean(axis=1))
        order = table.sort_values(["mean_rank", *KINDS], kind="stable")
        overall = ", ".join(f"{row.method} ({row.mean_rank:g})" for row in order.itertuples())
        kinds = "; ".join(f"{TITLES[kind]}: " + " < ".join(f"{row.method} {getattr(row, kind):+.1f}" for row in
                                                             table.sort_values(kind, kind="stable").itertuples())
                          for kind in KINDS)
        sentences.append(f"On {input2d} 2D, {order.iloc[0]['method']} degrades least. Mean rank over the four kinds "
                         f"(1 = the smallest P1 increase from level 0 to the top level): {overall}. Increases (mm): "
                         f"{kinds}.")
    return sentences


def subsample_table(records: dict, runs: dict) -> pd.DataFrame:
    """Per run: the scored test frames, P1 at level 0 on them and the full test set's P1
    (``runs``: the evaluate stage's records, :func:`lifting.report.load_metrics`)."""
    rows = []
    for key, record in records.items():
        level0 = _curve(record, KINDS[0])[1][0]
        full = runs[key]["metrics"]["mpjpe_mm"]["action_mean"] if key in runs else np.nan
        rows.append([*key, record["protocol"]["test_frames"], level0, full, round(level0 - full, 2)])
    return pd.DataFrame(rows, columns=["method", "2D input", "scored frames", "P1 level 0 (subsample)",
                                       "P1 full test set", "difference"])


def protocol_text(records: dict) -> str:
    """What was perturbed and scored, from the records' protocol blocks (the first record's; the
    stride and seed are params shared by every run)."""
    protocol = next(iter(records.values()))["protocol"]
    kinds = "; ".join(f"**{TITLES[kind]}** ({UNITS[kind]}): {DESCRIPTIONS[kind]}" for kind in KINDS)
    return (f"Each trained run predicts its test 2D perturbed four ways, each at increasing levels (0 = unperturbed), "
            f"with no retraining: {kinds}. The perturbations are seeded (seed {protocol['perturbation_seed']}) "
            f"by the test frames' keys, identical for every method, and applied to every frame of each test run (a "
            f"temporal method's windows see the same corrupted frames); every {protocol['test_frame_stride']}th frame "
            f"of each run is scored ({protocol['test_frames']} frames). P1 is the action-mean MPJPE (mm) on the "
            "run's own joints, the mean over its seeds.")


def plot_robustness(records: dict, kind: str) -> Figure:
    """P1 against the level of ``kind``, one line per method, one panel per 2D input; the legend
    sits above the panels, where it hides no line."""
    inputs2d = list(dict.fromkeys(i for _, i in records))
    colours = method_colours(run for run, _ in records)
    figure = new_figure(4.6 * len(inputs2d) + 0.6, 4.0)
    axes = figure.subplots(1, len(inputs2d), squeeze=False)[0]
    handles = {}
    for ax, input2d in zip(axes, inputs2d):
        for (run, source), record in records.items():
            if source == input2d:
                levels, p1 = _curve(record, kind)
                (handles[run],) = ax.plot([v * 100 if kind != "jitter" else v for v in levels], p1, marker="o",
                                          label=run, color=colours[run])
        ax.set_xlabel("sigma, px" if kind == "jitter" else f"{UNITS[kind]}, %")
        ax.set_ylabel("P1 (MPJPE), mm")
        ax.set_title(f"{TITLES[kind]}, 2D input: {input2d}", fontsize=10)
        ax.grid(alpha=0.3)
    figure.legend(list(handles.values()), list(handles), loc="outside upper center", ncols=min(7, len(handles)),
                  fontsize=8)
    return figure
