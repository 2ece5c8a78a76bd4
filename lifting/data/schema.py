"""The canonical Parquet store: table layouts, key-value metadata and checked readers/writers.

Tables (one row per frame, or per frame and camera):

* ``poses3d``: subject, action, sequence, frame, then ``<joint>_x/_y/_z`` float32 columns
  (world coordinates, mm). ``action`` is the canonical action; ``sequence`` the raw name
  (e.g. "Waiting 1").
* ``poses2d``: subject, sequence, camera, source, frame, then ``<joint>_u/_v`` float32 pixel
  columns (plus ``<joint>_c`` confidences where the source has them).
* ``cameras``: subject, camera, width, height, fx, fy, cx, cy, k1, k2, k3, p1, p2,
  qw, qx, qy, qz (camera -> world), tx, ty, tz (camera centre, world, mm).

Layout: wide float32 columns written with zstd and byte_stream_split; dictionary encoding only
on string columns (pyarrow would otherwise dictionary-encode the floats too). Each file carries
key-value metadata (``lifting.table``, ``lifting.joint_set``, ``lifting.units``,
``lifting.frame``, ``lifting.sources``) that :func:`read_table` checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lifting.data.surface.graph import SurfaceGraph
from lifting.errors import DataError
from lifting.geometry import Camera
from lifting.io import atomic_path
from lifting.skeleton import JointSet

METADATA_PREFIX = "lifting."

POSES3D_KEYS = ("subject", "action", "sequence", "frame")
POSES2D_KEYS = ("subject", "sequence", "camera", "source", "frame")
CAMERA_COLUMNS = ("subject", "camera", "width", "height", "fx", "fy", "cx", "cy",
                  "k1", "k2", "k3", "p1", "p2", "qw", "qx", "qy", "qz", "tx", "ty", "tz")


@dataclass
class StoreTables:
    """The three canonical tables of one data source, as produced by a source's reader.

    Attributes:
        poses3d: POSES3D_KEYS + h36m17 ``_x/_y/_z`` columns, world mm.
        poses2d: POSES2D_KEYS + h36m17 ``_u/_v`` pixel columns (``_c`` confidences optional).
        cameras: CAMERA_COLUMNS.
        sources2d: the 2D sources present in ``poses2d``.
        markers: POSES3D_KEYS + ``<marker>_x/_y/_z`` columns, world mm: HGN's body-surface markers
            (:mod:`lifting.data.surface.markers`), or None where the source has none.
        surface: the graphs the markers are nodes of (required with ``markers``).
    """

    poses3d: pd.DataFrame
    poses2d: pd.DataFrame
    cameras: pd.DataFrame
    sources2d: list[str]
    markers: pd.DataFrame | None = None
    surface: SurfaceGraph | None = None

    def __post_init__(self) -> None:
        if (self.markers is None) != (self.surface is None):
            raise ValueError("markers and their surface graph come together (both or neither)")


def joint_columns(joint_set: JointSet, axes: str) -> list[str]:
    """Column names of a wide pose table, joint-major: ``["Hip_x", "Hip_y", ..., "RWrist_z"]``."""
    return [f"{name}_{axis}" for name in joint_set.names for axis in axes]


def poses_from_frame(frame: pd.DataFrame, joint_set: JointSet, axes: str) -> np.ndarray:
    """(N, J, len(axes)) float32 array from the wide joint columns of ``frame``."""
    columns = joint_columns(joint_set, axes)
    return frame[columns].to_numpy(np.float32, copy=True).reshape(len(frame), joint_set.num_joints, len(axes))


def poses_to_frame(poses: np.ndarray, joint_set: JointSet, axes: str) -> pd.DataFrame:
    """(N, J, D) array -> a DataFrame of wide float32 joint columns."""
    poses = np.asarray(poses, dtype=np.float32)
    if poses.ndim != 3 or poses.shape[1:] != (joint_set.num_joints, len(axes)):
        raise ValueError(f"expected poses of shape (N, {joint_set.num_joints}, {len(axes)}), got {poses.shape}")
    return pd.DataFrame(poses.reshape(len(poses), -1), columns=joint_columns(joint_set, axes))


def cameras_to_frame(cameras: dict[str, list[Camera]]) -> pd.DataFrame:
    """{subject: [Camera, ...]} -> the ``cameras`` table."""
    rows = []
    for subject, subject_cameras in cameras.items():
        for cam in subject_cameras:
            rows.append((subject, cam.id, cam.width, cam.height, *cam.focal, *cam.center,
                         *cam.radial, *cam.tangential, *cam.orientation, *cam.translation))
    return pd.DataFrame(rows, columns=list(CAMERA_COLUMNS))


def cameras_from_frame(frame: pd.DataFrame) -> dict[tuple[str, str], Camera]:
    """The ``cameras`` table -> {(subject, camera id): Camera}."""
    cameras = {}
    for row in frame.itertuples(index=False):
        cameras[(row.subject, row.camera)] = Camera(
            id=row.camera, width=int(row.width), height=int(row.height),
            focal=(row.fx, row.fy), center=(row.cx, row.cy),
            radial=(row.k1, row.k2, row.k3), tangential=(row.p1, row.p2),
            orientation=(row.qw, row.qx, row.qy, row.qz), translation=(row.tx, row.ty, row.tz))
    return cameras


def write_table(frame: pd.DataFrame, path: str | Path, metadata: dict[str, str], allow_float_nan: bool = False) -> None:
    """Write ``frame`` to Parquet atomically, with ``metadata`` as ``lifting.*`` key-value pairs.

    Every data page carries a CRC32 checksum, which :func:`read_table` verifies: a bit flip on disk
    (that DVC does not see when size and mtime are unchanged) fails the read instead of changing results.
    ``allow_float_nan``: NaN is allowed in the float columns (the markers of frames without an SMPL fit);
    anywhere else it is refused.
    """
    write_table_parts([frame], path, metadata, allow_float_nan)


def write_table_parts(parts: Iterable[pd.DataFrame], path: str | Path, metadata: dict[str, str],
                      allow_float_nan: bool = False) -> None:
    """:func:`write_table` for a table made one part at a time (each part becomes one or more row
    groups, in order), so that only one part is in memory. All parts must have the first one's
    columns and types. Nothing is left at ``path`` when a part is refused."""
    path = Path(path)
    with atomic_path(path) as tmp:
        writer = None
        try:
            for frame in parts:
                checked = frame.select_dtypes(exclude="floating") if allow_float_nan else frame
                if checked.isna().to_numpy().any():
                    bad = checked.columns[checked.isna().any()].tolist()
                    raise ValueError(f"refusing to write {path}: NaN in columns {bad[:5]}")
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    string_columns = [f.name for f in table.schema
                                      if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
                    float_columns = [f.name for f in table.schema if pa.types.is_floating(f.type)]
                    kv = dict(table.schema.metadata or {})
                    kv.update({f"{METADATA_PREFIX}{k}".encode(): str(v).encode() for k, v in metadata.items()})
                    schema = table.schema.with_metadata(kv)
                    writer = pq.ParquetWriter(tmp, schema, compression="zstd", use_dictionary=string_columns or False,
                                              use_byte_stream_split=float_columns or False, write_page_checksum=True)
                writer.write_table(table.replace_schema_metadata(schema.metadata))
            if writer is None:
                raise ValueError(f"refusing to write {path}: no parts")
        finally:
            if writer is not None:
                writer.close()


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``lifting.*`` key-value metadata of a Parquet file (prefix stripped)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found", "run `dvc repro` to build it")
    try:
        kv = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(path, f"not a readable Parquet file ({err})",
                        "delete it and run `dvc repro` to rebuild it") from None
    prefix = METADATA_PREFIX.encode()
    return {k[len(prefix):].decode(): v.decode() for k, v in kv.items() if k.startswith(prefix)}


def _check_metadata(path: Path, expect: dict[str, str]) -> dict[str, str]:
    metadata = read_metadata(path)
    for key, value in expect.items():
        if metadata.get(key) != value:
            raise DataError(path, f"metadata {key}={metadata.get(key)!r}, expected {value!r}",
                            "rebuild the store with `dvc repro` (it was written by another version or for another source)")
    return metadata


def _unreadable(path: Path, err: Exception) -> DataError:
    return DataError(path, f"cannot read table ({err})",
                     "delete it and run `dvc repro` to rebuild it (or `dvc checkout` to restore it from the cache)")


def read_table(path: str | Path, expect: dict[str, str], columns: list[str] | None = None,
               filters=None) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read a Parquet table and check its metadata against ``expect``.

    Args:
        path: the file.
        expect: metadata values the caller relies on, e.g. ``{"table": "poses3d", "units": "mm"}``.
        columns, filters: passed to :func:`pandas.read_parquet`.
    Returns:
        (the table, its full ``lifting.*`` metadata).
    Raises:
        DataError: missing or corrupt file, or metadata that differs from ``expect``.
    """
    metadata = _check_metadata(Path(path), expect)
    try:
        frame = pq.read_table(path, columns=columns, filters=filters, page_checksum_verification=True).to_pandas()
    except (pa.ArrowInvalid, OSError) as err:
        raise _unreadable(Path(path), err) from None
    return frame, metadata


def read_table_batches(path: str | Path, expect: dict[str, str], batch_rows: int = 65_536
                       ) -> tuple[Iterator[pd.DataFrame], dict[str, str]]:
    """:func:`read_table` a batch of ``batch_rows`` rows at a time, in order, so that a caller that keeps
    some of the rows never holds the whole table. Returns (the batches, the metadata); the metadata is
    checked at once, each batch's checksums as it is read."""
    path = Path(path)
    metadata = _check_metadata(path, expect)

    def batches() -> Iterator[pd.DataFrame]:
        try:
            with pq.ParquetFile(path, page_checksum_verification=True) as table:
                for batch in table.iter_batches(batch_size=batch_rows):
                    yield batch.to_pandas()
        except (pa.ArrowInvalid, OSError) as err:
            raise _unreadable(path, err) from None

    return batches(), metadata
