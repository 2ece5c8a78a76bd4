"""The training-time reader of the aligned data: one 2D source's train/test arrays in memory.

:func:`load_split` reads the align stage's files (:mod:`lifting.data.align`) from one folder:

* ``targets.parquet``: the keys, split and protocol flags of every row, and its root-relative
  camera-frame h36m17 joints (mm);
* ``inputs2d_<source>.parquet``: the same rows in the same order, screen-normalised 2D;
* ``stats.json`` and ``inputs2d_<source>.stats.json``: the training rows' per-coordinate mean and
  standard deviation of the targets (mm) and of the source's inputs;
* ``markers.parquet`` (when asked for and present): the rows' body-surface markers (camera frame,
  relative to the root joint, mm) and, in its metadata, their graph.

It returns them as :class:`LiftingData`: (N, J, 2) float32 inputs and (N, J, 3) float32 targets in
h36m17 or h36m16 order. Each paper's evaluation protocol is a filter on the flags
(:class:`Protocol`). :func:`evaluation_chunks` gives the test rows only, a few whole runs at a time, for
an evaluation whose memory must not grow with the test set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lifting.config import check_train_stride
from lifting.data.align import ROW_KEYS
from lifting.data.schema import poses_from_frame, read_table, read_table_batches
from lifting.data.store import surface_from_metadata
from lifting.data.surface.graph import SurfaceGraph
from lifting.errors import DataError
from lifting.images.context import ImageContext
from lifting.skeleton import H36M16, H36M17, get_joint_set


@dataclass(frozen=True)
class Protocol:
    """Which rows a paper's protocol trains and tests on.

    Attributes:
        exclude_s9_damaged: drop the S9 sequences with drifting 3D (GridConv on detections, HGN).
        test_every50: test only on every 50th frame (HGN).
        train_stride: keep every n-th training frame of each sequence (a budget knob: adjacent
            50 fps frames are near-duplicates).
    """

    exclude_s9_damaged: bool = False
    test_every50: bool = False
    train_stride: int = 1


@dataclass
class LiftingData:
    """In-memory arrays for one 2D source and joint set.

    Attributes:
        train_inputs, test_inputs: (N, J, 2) float32 screen-normalised 2D.
        train_targets, test_targets: (N, J, 3) float32 root-relative camera-frame mm.
        train_meta, test_meta: one row per sample: subject, action, sequence, camera, frame.
        input_mean, input_std: (J, 2) training statistics of the inputs (all training rows).
        target_mean, target_std: (J, 3) training statistics of the targets (mm).
        joint_set: the joint set's name.
        train_markers: (N, M, 3) float32 body-surface markers of the training rows (camera frame,
            relative to the root joint, mm), when asked for and the data has them; else None.
        surface: the graphs the markers are nodes of (with ``train_markers``).
        train_context, test_context: each row's image crop, for a method that looks at the frame
            (:func:`lifting.images.store.attach_images`); else None.
    """

    train_inputs: np.ndarray
    train_targets: np.ndarray
    test_inputs: np.ndarray
    test_targets: np.ndarray
    train_meta: pd.DataFrame
    test_meta: pd.DataFrame
    input_mean: np.ndarray
    input_std: np.ndarray
    target_mean: np.ndarray
    target_std: np.ndarray
    joint_set: str
    train_markers: np.ndarray | None = None
    surface: SurfaceGraph | None = None
    train_context: ImageContext | None = None
    test_context: ImageContext | None = None


def load_split(aligned_dir: str | Path, source2d: str, joint_set: str = "h36m17",
               protocol: Protocol = Protocol(), markers: bool = False) -> LiftingData:
    """Train/test arrays of one 2D source, filtered by ``protocol``, in ``joint_set`` order
    (and the training rows' body-surface markers and their graph if ``markers`` and
    ``markers.parquet`` exists)."""
    aligned_dir = Path(aligned_dir)
    targets, _ = read_table(aligned_dir / "targets.parquet", {"table": "targets", "joint_set": H36M17.name})
    inputs, _ = read_table(aligned_dir / f"inputs2d_{source2d}.parquet",
                           {"table": "inputs2d", "joint_set": H36M17.name, "source2d": source2d})
    if not targets[ROW_KEYS].equals(inputs[ROW_KEYS]):
        raise DataError(aligned_dir / f"inputs2d_{source2d}.parquet", "rows do not match targets.parquet",
                        "re-run `dvc repro align`")
    stats = _read_stats(aligned_dir, source2d)
    keep = _joint_indices(joint_set)
    x = poses_from_frame(inputs, H36M17, "uv")[:, keep]
    y = poses_from_frame(targets, H36M17, "xyz")[:, keep]
    meta = targets[["subject", "action", "sequence", "camera", "frame"]]
    split = targets["split"].to_numpy()
    frames = targets["frame"].to_numpy()
    check_train_stride(protocol.train_stride, int(frames[split == "train"].max(initial=-1)) + 1,
                       "the budget's train_stride")
    train = (split == "train") & (frames % protocol.train_stride == 0)
    test = _scored_test_rows(targets, protocol)
    train_markers, surface = read_markers(aligned_dir / "markers.parquet", targets[ROW_KEYS], train) if markers \
        else (None, None)
    return LiftingData(
        train_inputs=x[train], train_targets=y[train], test_inputs=x[test], test_targets=y[test],
        train_meta=meta[train].reset_index(drop=True), test_meta=meta[test].reset_index(drop=True),
        input_mean=stats["inputs"][0][keep], input_std=stats["inputs"][1][keep],
        target_mean=stats["targets"][0][keep], target_std=stats["targets"][1][keep], joint_set=joint_set,
        train_markers=train_markers, surface=surface)


#: Test rows per chunk of :func:`evaluation_chunks` (it holds whole runs, so a chunk may hold up to one run more).
EVALUATION_CHUNK_ROWS = 65_536
META_COLUMNS = ["subject", "action", "sequence", "camera", "frame"]


@dataclass
class EvaluationChunk:
    """Whole runs (subject, sequence, camera) of test rows, in the aligned tables' order.

    Attributes:
        inputs: (n, J, 2) float32 screen-normalised 2D.
        targets: (n, J, 3) float32 root-relative camera-frame mm.
        meta: the n rows' subject, action, sequence, camera and frame.
        scored: (n,) bool, the rows the protocol scores (all of them unless the chunk holds whole runs
            for a temporal method whose windows reach frames the protocol leaves out).
    """

    inputs: np.ndarray
    targets: np.ndarray
    meta: pd.DataFrame
    scored: np.ndarray


def evaluation_chunks(aligned_dir: str | Path, source2d: str, joint_set: str, protocol: Protocol = Protocol(),
                      whole_runs: bool = False, chunk_rows: int = EVALUATION_CHUNK_ROWS) -> Iterator[EvaluationChunk]:
    """The test rows of one 2D source in ``joint_set`` order, about ``chunk_rows`` at a time, each
    chunk whole runs, read from the tables a batch at a time (memory flat in the test size).

    Without ``whole_runs`` a chunk holds the protocol's rows only. With it (a temporal method) a
    chunk holds every frame of each run that has a protocol row, and ``scored`` marks those rows.
    """
    aligned_dir = Path(aligned_dir)
    inputs_path = aligned_dir / f"inputs2d_{source2d}.parquet"
    targets, _ = read_table_batches(aligned_dir / "targets.parquet", {"table": "targets", "joint_set": H36M17.name})
    inputs, _ = read_table_batches(inputs_path, {"table": "inputs2d", "joint_set": H36M17.name, "source2d": source2d})
    keep = _joint_indices(joint_set)

    def handed_out(chunk: EvaluationChunk) -> list[EvaluationChunk]:
        """The chunk as given to the caller: without the runs that hold no scored row; none if empty."""
        chunk = _scored_runs(chunk) if whole_runs else chunk
        return [chunk] if len(chunk.meta) else []

    pending: list[EvaluationChunk] = []
    for target_rows, input_rows in _paired_batches(_exact_batches(targets, chunk_rows),
                                                   _exact_batches(inputs, chunk_rows), inputs_path):
        scored = _scored_test_rows(target_rows, protocol)
        rows = (target_rows["split"] == "test").to_numpy() if whole_runs else scored
        pending.append(EvaluationChunk(poses_from_frame(input_rows[rows], H36M17, "uv")[:, keep],
                                       poses_from_frame(target_rows[rows], H36M17, "xyz")[:, keep],
                                       target_rows.loc[rows, META_COLUMNS].reset_index(drop=True), scored[rows]))
        if sum(len(chunk.meta) for chunk in pending) >= chunk_rows:
            complete, last_run = _split_last_run(_concatenate(pending))
            pending = [last_run]
            yield from handed_out(complete)
    if pending:
        yield from handed_out(_concatenate(pending))


def _scored_test_rows(targets: pd.DataFrame, protocol: Protocol) -> np.ndarray:
    """(N,) bool: the rows of the targets table ``targets`` that ``protocol`` tests on."""
    test = (targets["split"] == "test").to_numpy()
    if protocol.exclude_s9_damaged:
        test = test & ~targets["s9_damaged"].to_numpy()
    if protocol.test_every50:
        test = test & targets["every50"].to_numpy()
    return test


def _exact_batches(frames: Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """``frames`` re-cut into frames of exactly ``rows`` rows (the last may be shorter)."""
    held: list[pd.DataFrame] = []
    count = 0
    for frame in frames:
        held.append(frame)
        count += len(frame)
        while count >= rows:
            joined = pd.concat(held, ignore_index=True)
            yield joined.iloc[:rows]
            held, count = [joined.iloc[rows:]], len(joined) - rows
    if count:
        yield pd.concat(held, ignore_index=True)


def _paired_batches(targets: Iterator[pd.DataFrame], inputs: Iterator[pd.DataFrame], inputs_path: Path
                    ) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Equal batches of the two tables, whose rows must be the same keys in the same order."""
    while True:
        target_rows, input_rows = next(targets, None), next(inputs, None)
        if target_rows is None and input_rows is None:
            return
        if (target_rows is None or input_rows is None or len(target_rows) != len(input_rows)
                or not target_rows[ROW_KEYS].equals(input_rows[ROW_KEYS])):
            raise DataError(inputs_path, "rows do not match targets.parquet", "re-run `dvc repro align`")
        yield target_rows, input_rows


def _concatenate(chunks: list[EvaluationChunk]) -> EvaluationChunk:
    return EvaluationChunk(np.concatenate([c.inputs for c in chunks]), np.concatenate([c.targets for c in chunks]),
                           pd.concat([c.meta for c in chunks], ignore_index=True),
                           np.concatenate([c.scored for c in chunks]))


def _take(chunk: EvaluationChunk, rows: np.ndarray | slice) -> EvaluationChunk:
    return EvaluationChunk(chunk.inputs[rows], chunk.targets[rows], chunk.meta.iloc[rows].reset_index(drop=True),
                           chunk.scored[rows])


def _split_last_run(chunk: EvaluationChunk) -> tuple[EvaluationChunk, EvaluationChunk]:
    """(every run of ``chunk`` but its last, which may go on in the next batch; the last run)."""
    keys = run_keys(chunk.meta)
    start = len(keys) - int(np.argmax(keys[::-1] != keys[-1])) if (keys != keys[-1]).any() else 0
    return _take(chunk, slice(0, start)), _take(chunk, slice(start, None))


def run_keys(meta: pd.DataFrame) -> np.ndarray:
    """(n,) one string per row naming its run: subject/sequence/camera."""
    return (meta["subject"].astype(str) + "/" + meta["sequence"].astype(str) + "/" + meta["camera"].astype(str)).to_numpy()


def _scored_runs(chunk: EvaluationChunk) -> EvaluationChunk:
    """``chunk`` without the runs none of whose rows the protocol scores."""
    run = pd.factorize(run_keys(chunk.meta))[0]
    has_scored = np.bincount(run, weights=chunk.scored, minlength=run.max(initial=-1) + 1) > 0
    return _take(chunk, has_scored[run])


def read_markers(path: Path, row_keys: pd.DataFrame, rows: np.ndarray, batch_rows: int = 65_536
                 ) -> tuple[np.ndarray | None, SurfaceGraph | None]:
    """(n, M, 3) float32 markers of the selected ``rows`` (bool, one per row of ``row_keys``) of the
    aligned data and their graph, or (None, None) without a file. Read ``batch_rows`` rows at a
    time, so memory holds the selected rows only."""
    if not path.exists():
        return None, None
    batches, meta = read_table_batches(path, {"table": "markers"}, batch_rows)
    selected, start = [], 0
    for frame in batches:
        stop = start + len(frame)
        if stop > len(row_keys) or not frame[ROW_KEYS].equals(row_keys.iloc[start:stop].reset_index(drop=True)):
            raise DataError(path, "rows do not match targets.parquet", "re-run `dvc repro align`")
        selected.append(frame.loc[rows[start:stop]].drop(columns=ROW_KEYS).to_numpy(np.float32))
        start = stop
    if start != len(row_keys):
        raise DataError(path, "rows do not match targets.parquet", "re-run `dvc repro align`")
    values = np.concatenate(selected)
    return values.reshape(len(values), -1, 3), surface_from_metadata(meta, path)


def _joint_indices(joint_set: str) -> list[int]:
    names = get_joint_set(joint_set).names
    if joint_set not in (H36M17.name, H36M16.name):
        raise ValueError(f"aligned data is stored as h36m17 and can be read as h36m17 or h36m16, not {joint_set!r}")
    return [H36M17.index(name) for name in names]


def _read_stats(aligned_dir: Path, source2d: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The training statistics of the targets (``stats.json``) and of ``source2d``'s inputs."""
    path = aligned_dir / "stats.json"
    try:
        targets = json.loads(path.read_text())["targets"]
        path = aligned_dir / f"inputs2d_{source2d}.stats.json"
        inputs = json.loads(path.read_text())
        return {"inputs": (np.asarray(inputs["mean"], np.float32).reshape(-1, 2),
                           np.asarray(inputs["std"], np.float32).reshape(-1, 2)),
                "targets": (np.asarray(targets["mean"], np.float32).reshape(-1, 3),
                            np.asarray(targets["std"], np.float32).reshape(-1, 3))}
    except FileNotFoundError:
        raise DataError(path, "file not found", "run `dvc repro align`") from None
    except (ValueError, KeyError) as err:
        raise DataError(path, f"unreadable statistics ({err!r})", "re-run `dvc repro align`") from None
