"""Loading the pipeline's artefacts for the report, and the one thing computed from them.

Reads the evaluate stage's metrics JSON, the train stage's CSV logs, the prediction Parquet files,
the aligned targets and 2D inputs, and the cameras; every missing or malformed file is a
:class:`~lifting.errors.DataError` that names the file and the stage that writes it. Per-frame
errors (predictions vs targets, for the distribution plots) are the one thing computed, and they
are checked against the metrics' frame-mean.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

from lifting.config import STAGED_RUNS, run_stages
from lifting.data.schema import cameras_from_frame, joint_columns, read_metadata, read_table
from lifting.errors import DataError
from lifting.metrics import joint_errors_mpjpe
from lifting.speed import read_metrics
from lifting.skeleton import H36M17, JointSet, get_joint_set

#: Row keys shared by predictions and targets.
KEYS = ["subject", "action", "sequence", "camera", "frame"]


def run_grid(methods, inputs2d) -> list[tuple[str, str]]:
    """Every (method, 2D input) pair of ``methods`` x ``inputs2d``, method-major (the report's order).

    The pipeline's own grid, where GridConv runs on fewer inputs, is
    :func:`lifting.config.pipeline_runs`; the loaders below take either.
    """
    return [(method, input2d) for method in methods for input2d in inputs2d]


def load_metrics(metrics_dir: str | Path, grid) -> dict[tuple[str, str], dict]:
    """``{(method, input2d): metrics record}`` for every (method, input2d) pair of ``grid``, in order."""
    metrics_dir = Path(metrics_dir)
    runs = {}
    for method, input2d in grid:
        path = metrics_dir / f"{method}-{input2d}.json"
        rerun = f"re-run `dvc repro {_stage('evaluate', method, input2d)}`"
        try:
            record = read_metrics(path)  # with its speed sibling (lifting.speed)
        except FileNotFoundError:
            raise DataError(path, "metrics file not found",
                            f"run `dvc repro {_stage('evaluate', method, input2d)}` (or `dvc repro`)") from None
        except json.JSONDecodeError as err:
            raise DataError(path, f"not valid JSON ({err})", rerun) from None
        for key in ("method", "input2d", "protocol", "metrics"):
            if key not in record:
                raise DataError(path, f"metrics record lacks {key!r}", rerun)
        runs[(method, input2d)] = record
    if not runs:
        raise ValueError("no runs to report: `methods` or `data.inputs2d` is empty")
    return runs


def _stage(kind: str, run: str, input2d: str) -> str:
    """The ``dvc repro`` target of ``run``'s ``kind`` stage (train or evaluate: :func:`lifting.config.run_stages`)."""
    train, evaluate = run_stages(run, input2d)
    return train if kind == "train" else evaluate


#: Columns of the training logs as the report reads them. Old logs (epoch, train_loss,
#: val_mpjpe_mm, lr, seconds, samples_per_s) get NaN in the columns they lack.
LOG_COLUMNS = ["method", "input2d", "seed", "epoch", "step", "samples_seen", "core_seconds", "train_loss",
               "test_p1_mm", "val_mpjpe_mm", "lr", "seconds", "samples_per_s"]


def load_train_logs(log_dir: str | Path, grid) -> pd.DataFrame:
    """All training logs in one long table with :data:`LOG_COLUMNS` (numbers as floats).

    One row per evaluation point and seed (``test_p1_mm``: the logged test-set curve, never used
    for selection). A method without training (the k-NN lookup) has a header-only CSV and
    contributes no rows; a missing CSV is an error.
    """
    log_dir = Path(log_dir)
    frames = []
    for method, input2d in grid:
        path = log_dir / f"{method}-{input2d}.csv"
        if not path.exists():
            raise DataError(path, "training log not found", f"run `dvc repro {_stage('train', method, input2d)}`")
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows:
            frame = pd.DataFrame(rows)
            frame.insert(0, "input2d", input2d)
            frame.insert(0, "method", method)
            frames.append(frame)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=str if c in ("method", "input2d") else float) for c in LOG_COLUMNS})
    logs = pd.concat(frames, ignore_index=True).reindex(columns=LOG_COLUMNS)
    for column in LOG_COLUMNS[2:]:
        logs[column] = pd.to_numeric(logs[column], errors="coerce").astype(np.float64)
    return logs


def load_detector(metrics_dir: str | Path) -> dict | None:
    """``metrics/detector.json`` (detect2d: the ``detected`` source's 2D accuracy), or None where
    the pipeline made no detected source."""
    path = Path(metrics_dir) / "detector.json"
    if not path.exists():
        return None
    record = read_metrics(path)
    return None if "skipped" in record else record


def load_context_runs(experiments_dir: str | Path | None) -> list[dict]:
    """Context-Aware PoseFormer's recorded runs outside the default pipeline (metrics files named
    ``context_poseformer*-<input2d>.json`` in ``experiments_dir``, e.g. its ablation without the
    image), sorted by 2D input and file name; [] where the folder or the files are absent."""
    if experiments_dir is None or not Path(experiments_dir).is_dir():
        return []
    records = []
    for path in sorted(Path(experiments_dir).glob("context_poseformer*.json")):
        record = read_metrics(path)
        network = record.get("architecture", record.get("method"))  # the run's name may be its own
        if network != "context_poseformer":
            raise ValueError(f"{path}: not a Context-Aware PoseFormer metrics file (network {network!r})")
        records.append({**record, "file": path.name})
    return sorted(records, key=lambda r: (r["input2d"], r["file"]))


def load_run_records(folder: str | Path, grid, stage: str) -> dict[tuple[str, str], dict]:
    """``{(run, input2d): record}`` of the files ``<folder>/<run>-<input2d>.json`` of ``grid`` that
    exist, in ``grid``'s order, each with its speed sibling merged (:func:`lifting.speed.read_metrics`).
    A file that is not JSON is an error naming ``stage``, the stage that writes it."""
    records = {}
    for run, input2d in grid:
        path = Path(folder) / f"{run}-{input2d}.json"
        if not path.is_file():
            continue
        try:
            records[(run, input2d)] = read_metrics(path)
        except json.JSONDecodeError as err:
            raise DataError(path, f"not valid JSON ({err})", f"re-run its {stage} stage (`dvc repro`)") from None
    return records


def load_convergence(convergence_dir: str | Path | None, grid) -> dict[tuple[str, str], dict]:
    """``{(run, input2d): convergence record}`` of the files that exist in ``convergence_dir``.

    A run may have no file (its plateau is then shown as "–"), and the folder may be absent.
    A file that is not JSON, or whose ``run``/``input2d`` disagree with its name, is an error.
    """
    found = {}
    if convergence_dir is None or not Path(convergence_dir).is_dir():
        return found
    for method, input2d in grid:
        path = Path(convergence_dir) / f"{method}-{input2d}.json"
        if not path.exists():
            continue
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DataError(path, f"not valid JSON ({err})", "re-run the convergence benchmark of this run") from None
        named = (record.get("run", method), record.get("input2d", input2d))
        if named != (method, input2d) or not isinstance(record.get("recipes", []), list):
            raise DataError(path, f"holds run {named[0]!r} on {named[1]!r}, or recipes that are not a list",
                            "name the file <run>-<input2d>.json after the run it holds")
        found[(method, input2d)] = record
    return found


def experiment_grid(convergence_dir: str | Path | None, grid) -> list[tuple[str, str]]:
    """The (run, input2d) pairs with a convergence record in ``convergence_dir`` that ``grid`` (the
    pipeline's runs) leaves out: runs made as experiments (VideoPose3D, Context-Aware PoseFormer),
    whose plateau the report still shows. An earlier stage of a staged method (``rie_stage1``) is
    not a run: its curve is part of the last stage's chain."""
    if convergence_dir is None or not Path(convergence_dir).is_dir():
        return []
    pairs = []
    for path in sorted(Path(convergence_dir).glob("*-*.json")):
        run, _, input2d = path.stem.rpartition("-")
        if run not in STAGED_RUNS and (run, input2d) not in set(grid):
            pairs.append((run, input2d))
    return pairs


def load_targets(aligned_dir: str | Path) -> pd.DataFrame:
    """The test rows of ``targets.parquet``: keys + h36m17 root-relative camera-frame joints (mm)."""
    path = Path(aligned_dir) / "targets.parquet"
    frame, _ = read_table(path, {"table": "targets", "joint_set": H36M17.name},
                          columns=KEYS + ["split"] + joint_columns(H36M17, "xyz"))
    return frame[frame["split"] == "test"].drop(columns="split").reset_index(drop=True)


def load_inputs2d(aligned_dir: str | Path, source2d: str) -> pd.DataFrame:
    """Screen-normalised h36m17 2D of one source (all rows; keys subject, sequence, camera, frame)."""
    path = Path(aligned_dir) / f"inputs2d_{source2d}.parquet"
    frame, _ = read_table(path, {"table": "inputs2d", "joint_set": H36M17.name, "source2d": source2d},
                          columns=["subject", "sequence", "camera", "frame"] + joint_columns(H36M17, "uv"))
    return frame


def load_cameras(path: str | Path) -> dict:
    """``{(subject, camera id): Camera}`` from ``cameras.parquet``."""
    frame, _ = read_table(path, {"table": "cameras"})
    return cameras_from_frame(frame)


def load_predictions(predictions_dir: str | Path, grid) -> dict[tuple[str, str], tuple[pd.DataFrame, JointSet]]:
    """``{(method, input2d): (predictions table, its joint set)}`` from the evaluate stage's Parquet."""
    predictions_dir = Path(predictions_dir)
    out = {}
    for method, input2d in grid:
        path = predictions_dir / f"{method}-{input2d}.parquet"
        metadata = read_metadata(path)
        frame, _ = read_table(path, {"table": "predictions", "method": method, "source2d": input2d})
        out[(method, input2d)] = (frame, get_joint_set(metadata["joint_set"]))
    return out


# ------------------------------------------------------------------------------------------------
# Per-frame errors (predictions vs targets)


def per_frame_errors(predictions: dict, targets: pd.DataFrame) -> pd.DataFrame:
    """Per-frame P1 (mm) of every run, from its predictions and the aligned targets.

    Args:
        predictions: ``{(method, input2d): (table, joint set)}`` from :func:`load_predictions`.
        targets: :func:`load_targets` (h36m17 test rows).
    Returns:
        Long table: method, input2d, the KEYS, ``mpjpe_mm``.
    """
    parts = []
    for (method, input2d), (frame, joint_set) in predictions.items():
        columns = joint_columns(joint_set, "xyz")
        merged = frame[KEYS + columns].merge(targets[KEYS + columns], on=KEYS, how="left", suffixes=("", "_gt"),
                                             validate="one_to_one")
        if merged[f"{columns[0]}_gt"].isna().any():
            raise DataError(None, f"predictions of {method}-{input2d} have rows without a test target",
                            "re-run `dvc repro` so that predictions and data/aligned agree")
        predicted = merged[columns].to_numpy(np.float64).reshape(len(merged), joint_set.num_joints, 3)
        truth = merged[[f"{c}_gt" for c in columns]].to_numpy(np.float64).reshape(len(merged), joint_set.num_joints, 3)
        errors = joint_errors_mpjpe(predicted, truth).mean(axis=1)
        part = merged[KEYS].copy()
        part.insert(0, "input2d", input2d)
        part.insert(0, "method", method)
        part["mpjpe_mm"] = errors
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def check_against_metrics(errors: pd.DataFrame, runs: dict, tolerance_mm: float = 0.05) -> pd.DataFrame:
    """P1 recomputed from the predictions beside the metrics file's, per run.

    A single-seed run is checked on the frame-mean. A run of several seeds stores the mean over
    seeds, while its prediction file holds the first seed's predictions: it is checked on the
    action-mean against that seed's entry in ``seeds.per_seed`` (not judged, "–", without one).
    """
    rows = []
    for (method, input2d), record in runs.items():
        mine = errors.loc[(errors["method"] == method) & (errors["input2d"] == input2d)]
        block = record.get("seeds") or {}
        seeds = block.get("seeds") or [None]
        if len(seeds) == 1:
            compared, value, stored = "P1 frame-mean", float(mine["mpjpe_mm"].mean()), \
                record["metrics"]["mpjpe_mm"]["frame_mean"]
        else:
            first = ((block.get("per_seed") or {}).get("p1") or [None])[0]
            compared, stored = f"P1 action-mean of seed {seeds[0]}", first
            value = float(mine.groupby("action")["mpjpe_mm"].mean().mean())
        agree = None if stored is None else bool(abs(value - stored) <= tolerance_mm)
        rows.append({"run": f"{method} / {input2d}", "seeds": len(seeds), "compared": compared, "frames": len(mine),
                     "from predictions": value, "metrics file": stored, "agree": agree})
    return pd.DataFrame(rows)
