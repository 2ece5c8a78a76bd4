"""The lifted track as Parquet, written chunk by chunk (memory stays flat in the video's length).

Columns: ``frame`` (int64), ``detected`` (a person was found in the frame), ``filled`` (something
in the frame was interpolated: no detection, or a keypoint under ``--min-score``),
``filled_keypoints`` (how many of the input's keypoints were), then ``<joint>_x/_y/_z`` float32:
root-relative camera-frame millimetres (x right, y down, z away from the camera) of the run's joint
set. Key-value metadata: ``lifting.table=predicted3d``, ``joint_set``, ``units=mm``, ``frame``,
``run``, ``fps``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lifting.data.schema import METADATA_PREFIX, joint_columns, poses_from_frame
from lifting.io import atomic_path
from lifting.predict.track import Track
from lifting.skeleton import get_joint_set

FRAME = "camera, root-relative (x right, y down, z forward)"


def _schema(joint_set: str, metadata: dict[str, str]) -> pa.Schema:
    fields = [pa.field("frame", pa.int64()), pa.field("detected", pa.bool_()), pa.field("filled", pa.bool_()),
              pa.field("filled_keypoints", pa.int16())]
    fields += [pa.field(c, pa.float32()) for c in joint_columns(get_joint_set(joint_set), "xyz")]
    kv = {f"{METADATA_PREFIX}{k}": str(v) for k, v in
          {"table": "predicted3d", "joint_set": joint_set, "units": "mm", "frame": FRAME, **metadata}.items()}
    return pa.schema(fields, metadata=kv)


def write_predictions(path: Path, track: Track, joint_set: str, chunks: Iterable[tuple[int, np.ndarray]],
                      metadata: dict[str, str], keep: bool = False) -> np.ndarray | None:
    """Write every ``(start, (n, J, 3) mm)`` chunk of ``chunks`` with the track's flags, atomically.

    Returns the whole (T, J, 3) float32 prediction when ``keep`` (for pictures and BVH), else None.
    """
    schema = _schema(joint_set, metadata)
    kept = [] if keep else None
    filled = track.filled_frames
    counts = track.filled.sum(axis=1).astype(np.int16)
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for start, pred in chunks:
                stop = start + len(pred)
                columns = [pa.array(track.frames[start:stop]), pa.array(track.detected[start:stop]),
                           pa.array(filled[start:stop]), pa.array(counts[start:stop])]
                flat = np.ascontiguousarray(pred, dtype=np.float32).reshape(len(pred), -1)
                columns += [pa.array(flat[:, i]) for i in range(flat.shape[1])]
                writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))
                if kept is not None:
                    kept.append(np.asarray(pred, dtype=np.float32))
    return np.concatenate(kept) if kept is not None else None


def read_predictions(path: str | Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(frames (T,), joints (T, J, 3) mm, joint set) of a file :func:`write_predictions` wrote."""
    table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    joint_set = meta[f"{METADATA_PREFIX}joint_set"]
    frame = table.to_pandas()
    return frame["frame"].to_numpy(), poses_from_frame(frame, get_joint_set(joint_set), "xyz"), joint_set
