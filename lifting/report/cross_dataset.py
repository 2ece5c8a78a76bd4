"""The report's MPI-INF-3DHP table: every run scored zero-shot on 3DHP's test set (``metrics/3dhp/*.json``,
written by the ``evaluate_3dhp_<method>`` stages; :mod:`lifting.cross_dataset`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lifting.report.artefacts import load_run_records
from lifting.report.convergence import format_mean_std
from lifting.skeleton import COMMON_JOINTS

#: The scene groups' column labels, in the official table's order.
SCENE_LABELS = {"green_screen": "GS", "no_green_screen": "no GS", "outdoor": "outdoor"}
MPI3DHP_NOTE = ("Zero-shot on MPI-INF-3DHP's test set (TS1-TS6, its valid frames, ground-truth 2D): each run as "
                "trained, never shown 3DHP. PCK@150 mm and AUC (0-150 mm) in %, on 3DHP's 14 joints, per scene "
                "(GS: green screen, TS1-2; no GS: TS3-4; outdoor: TS5-6; frame-weighted) and over all frames, as "
                "the official mpii_compute_3d_pck.m; P1 (mm) on the run's joints and on "
                f"{COMMON_JOINTS.name}. The mean over seeds (± their sample std with several).")


def load_3dhp(metrics_dir: str | Path, grid) -> dict[tuple[str, str], dict]:
    """``{(run, input2d): record}`` of the runs of ``grid`` scored on MPI-INF-3DHP, in order; {} where
    ``data.mpi3dhp_dir`` is null (the records say skipped) or no file exists (a method not scored there)."""
    records = load_run_records(Path(metrics_dir) / "3dhp", grid, "evaluate_3dhp")
    return {key: record for key, record in records.items() if "skipped" not in record}


def _mean_std(record: dict, key: str) -> str:
    """A headline number of the seeds block as "mean ± std" (the mean alone with one seed)."""
    return format_mean_std(record["seeds"]["mean"][key], record["seeds"]["std"].get(key))


def mpi3dhp_table(records: dict[tuple[str, str], dict]) -> pd.DataFrame:
    """One row per run, best PCK first: its training 2D input, seeds, PCK and AUC over all frames and per
    scene, P1 and P1 on the common joints; values as display text."""
    rows = []
    for (run, input2d), record in records.items():
        metrics = record["metrics"]
        row = {"method": run, "trained on": input2d, "seeds": len(record["seeds"]["seeds"]),
               "PCK %": _mean_std(record, "pck150"), "AUC %": _mean_std(record, "auc")}
        for key, short in (("pck150_pct", "PCK"), ("auc_pct", "AUC")):
            row.update({f"{short} {label}": f"{metrics[key]['by_scene'][scene]:.1f}"
                        for scene, label in SCENE_LABELS.items()})
        row.update({"P1 mm": _mean_std(record, "p1"),
                    f"P1 {COMMON_JOINTS.name}": _mean_std(record, f"p1_{COMMON_JOINTS.name}"),
                    "frames": metrics["num_frames"], "_pck": metrics["pck150_pct"]["all"]})
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values("_pck", ascending=False, kind="stable").drop(columns="_pck").reset_index(drop=True)
