"""Aligned tables: camera-frame targets, normalised 2D inputs, the split, protocol flags, statistics.

From the canonical store (world 3D, pixel 2D, cameras) :func:`align_store` computes one row per
(subject, sequence, camera, frame):

* ``targets``: keys, ``action``, ``split`` ("train", "test" or "unused"), the protocol flags
  ``s9_damaged`` and ``every50``, the root trajectory ``root_x/_y/_z`` (camera frame, mm) and
  the root-relative camera-frame joints ``<joint>_x/_y/_z`` (mm; the root is exactly 0);
* ``inputs`` for each 2D source: the same rows in the same order, screen-normalised
  ``<joint>_u/_v`` (and ``_c`` confidences where the source has them);
* ``stats``: per-coordinate mean and standard deviation over the training rows, for the
  methods that z-score their inputs and targets;
* ``markers`` where the source has HGN's body-surface markers: the same rows and keys, each
  marker in the camera frame relative to the root joint (mm).

:func:`lifting.data.split.load_split` reads them back for training and evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lifting.config import ParamsError
from lifting.data.schema import (POSES3D_KEYS, StoreTables, cameras_from_frame, joint_columns, poses_from_frame,
                                 poses_to_frame, write_table, write_table_parts)
from lifting.data.surface.graph import SurfaceGraph
from lifting.errors import DataError
from lifting.io import write_json
from lifting.skeleton import H36M17

#: The key columns of every aligned table, in their sort order (:mod:`lifting.data.split` reads by them).
ROW_KEYS = ["subject", "sequence", "camera", "frame"]
#: S9 sequences whose 3D ground truth drifts (VideoPose3D naming; the list GridConv excludes
#: for detector input, and the learnable-triangulation/HGN lineage's Greeting-2,
#: SittingDown-2, Waiting-1).
S9_DAMAGED_SEQUENCES = ("Greeting", "SittingDown 1", "Waiting 1")
SUBSAMPLE_STEP = 50


@dataclass
class AlignedTables:
    """The aligned tables. The markers are not held: :meth:`marker_parts` computes them one subject at
    a time (at Human3.6M's size the whole table is some 3 GB), and :func:`write_aligned` streams them."""

    targets: pd.DataFrame
    inputs: dict[str, pd.DataFrame]
    stats: dict
    store: StoreTables

    @property
    def surface(self) -> SurfaceGraph | None:
        """The graphs the markers are nodes of (None where the source has no markers)."""
        return self.store.surface

    def marker_parts(self) -> Iterator[pd.DataFrame]:
        """The markers table (:mod:`module docstring <lifting.data.align>`), one subject at a time in the
        row order of ``targets``; nothing where the source has no markers."""
        if self.store.markers is None:
            return
        cameras = cameras_from_frame(self.store.cameras)
        poses3d, markers = self.store.poses3d, self.store.markers
        columns = [c for c in markers.columns if c not in POSES3D_KEYS]
        for subject in sorted(set(self.targets["subject"])):
            joints = poses3d[poses3d["subject"] == subject]
            world = _subject_markers(joints, markers[markers["subject"] == subject], columns)
            root_world = poses_from_frame(joints, H36M17, "xyz").astype(np.float64)[:, :1]
            keys = joints[["subject", "sequence", "frame"]].reset_index(drop=True)
            parts = []
            for camera_id in sorted(camera for s, camera in cameras if s == subject):
                camera = cameras[(subject, camera_id)]
                root = camera.world_to_camera(root_world)
                on_surface = (camera.world_to_camera(world) - root).reshape(len(keys), -1).astype(np.float32)
                parts.append(pd.concat([keys.assign(camera=camera_id)[ROW_KEYS],
                                        pd.DataFrame(on_surface, columns=columns)], axis=1))
            yield pd.concat(parts, ignore_index=True).sort_values(ROW_KEYS, ignore_index=True)

    def markers(self) -> pd.DataFrame | None:
        """The whole markers table in memory (small data only; see :meth:`marker_parts`)."""
        parts = list(self.marker_parts())
        return pd.concat(parts, ignore_index=True) if parts else None


def align_store(tables: StoreTables, train_subjects, test_subjects) -> AlignedTables:
    """Compute the aligned tables (see module docstring) from a source's canonical tables.

    Raises :class:`ParamsError` when a subject of the split is not in the data (nothing is written).
    """
    present = sorted(set(tables.poses3d["subject"]))
    for name, subjects in (("train_subjects", train_subjects), ("test_subjects", test_subjects)):
        absent = [s for s in subjects if s not in present]
        if not subjects:
            raise ParamsError(f"data.{name} is empty; the data has subjects {present}")
        if absent:
            raise ParamsError(f"data.{name}: {absent} not in the data; it has subjects {present}")
    cameras = cameras_from_frame(tables.cameras)
    world = poses_from_frame(tables.poses3d, H36M17, "xyz").astype(np.float64)
    target_parts = []
    for (subject, camera_id), camera in sorted(cameras.items()):
        rows = (tables.poses3d["subject"] == subject).to_numpy()
        if not rows.any():
            continue
        in_camera = camera.world_to_camera(world[rows])
        root = in_camera[:, :1]
        keys = tables.poses3d.loc[rows, ["subject", "action", "sequence", "frame"]].reset_index(drop=True)
        keys.insert(2, "camera", camera_id)
        part = pd.concat([keys, pd.DataFrame(root[:, 0].astype(np.float32), columns=["root_x", "root_y", "root_z"]),
                          poses_to_frame(in_camera - root, H36M17, "xyz")], axis=1)
        target_parts.append(part)
    targets = pd.concat(target_parts, ignore_index=True).sort_values(ROW_KEYS, ignore_index=True)
    split = np.full(len(targets), "unused", dtype=object)
    split[targets["subject"].isin(list(train_subjects)).to_numpy()] = "train"
    split[targets["subject"].isin(list(test_subjects)).to_numpy()] = "test"
    targets.insert(5, "split", split)
    targets.insert(6, "s9_damaged", (targets["subject"] == "S9") & targets["sequence"].isin(S9_DAMAGED_SEQUENCES))
    targets.insert(7, "every50", targets["frame"] % SUBSAMPLE_STEP == 0)

    inputs = {source: _normalised_inputs(tables.poses2d, source, targets[ROW_KEYS], cameras)
              for source in tables.sources2d}
    train = (targets["split"] == "train").to_numpy()
    stats = {"targets": _moments(targets.loc[train, joint_columns(H36M17, "xyz")]),
             "inputs": {source: _moments(frame.loc[train, joint_columns(H36M17, "uv")])
                        for source, frame in inputs.items()}}
    return AlignedTables(targets, inputs, stats, tables)


def _subject_markers(joints: pd.DataFrame, markers: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """(n, M, 3) world-mm markers of one subject's ``joints`` rows, in their order (NaN rows for
    frames without them, e.g. without an SMPL fit)."""
    merged = joints[list(POSES3D_KEYS)].merge(markers, on=list(POSES3D_KEYS), how="left", validate="one_to_one",
                                              indicator=True)
    if (merged["_merge"] != "both").any():
        raise DataError(None, "the markers table lacks frames that have 3D joints", "re-run `dvc repro normalize`")
    return merged[columns].to_numpy(np.float64).reshape(len(merged), -1, 3)


def _normalised_inputs(poses2d: pd.DataFrame, source: str, row_keys: pd.DataFrame, cameras) -> pd.DataFrame:
    """Screen-normalised 2D of ``source`` in the row order of ``row_keys``."""
    of_source = poses2d[poses2d["source"] == source].drop(columns="source")
    merged = row_keys.merge(of_source, on=ROW_KEYS, how="left", validate="one_to_one")
    uv = joint_columns(H36M17, "uv")
    missing = merged[uv[0]].isna().to_numpy()
    if missing.any():
        first = merged.loc[missing, ROW_KEYS].iloc[0].to_dict()
        raise DataError(None, f"2D source {source!r} lacks {int(missing.sum())} frames that have 3D (first: {first})",
                        "re-run `dvc repro normalize`; every 2D source must cover every 3D frame")
    pixels = poses_from_frame(merged, H36M17, "uv")
    width = merged["camera"].map({cam: c.width for (_, cam), c in cameras.items()}).to_numpy(np.float64)
    height = merged["camera"].map({cam: c.height for (_, cam), c in cameras.items()}).to_numpy(np.float64)
    normalised = pixels / width[:, None, None] * 2.0 - np.stack([np.ones_like(width), height / width], -1)[:, None, :]
    out = pd.concat([merged[ROW_KEYS], poses_to_frame(normalised, H36M17, "uv")], axis=1)
    confidence = joint_columns(H36M17, "c")
    if confidence[0] in merged.columns and merged[confidence[0]].notna().all():
        out = pd.concat([out, merged[confidence].astype(np.float32)], axis=1)
    return out


def _moments(frame: pd.DataFrame) -> dict[str, list[float]]:
    values = frame.to_numpy(np.float64)
    return {"columns": list(frame.columns), "mean": values.mean(0).round(6).tolist(),
            "std": values.std(0).round(6).tolist()}


def write_aligned(aligned: AlignedTables, out_dir: Path, source_name: str) -> None:
    """Write ``targets.parquet`` with the targets' statistics in ``stats.json``, and per 2D source
    ``inputs2d_<source>.parquet`` with its statistics in ``inputs2d_<source>.stats.json``, into
    ``out_dir``: one file set per source, so that a stage depends on its own source's files only
    (a new detector re-runs the runs on ``detected``, not the others)."""
    common = {"joint_set": H36M17.name, "data_source": source_name}
    write_table(aligned.targets, out_dir / "targets.parquet",
                {**common, "table": "targets", "units": "mm", "frame": "camera, root-relative"})
    for source, frame in aligned.inputs.items():
        write_table(frame, out_dir / f"inputs2d_{source}.parquet",
                    {**common, "table": "inputs2d", "units": "screen-normalised", "frame": "image", "source2d": source})
        write_json(aligned.stats["inputs"][source], out_dir / f"inputs2d_{source}.stats.json")
    write_json({"targets": aligned.stats["targets"]}, out_dir / "stats.json")
    if aligned.surface is not None:
        write_table_parts(aligned.marker_parts(), out_dir / "markers.parquet",
                          {**common, "table": "markers", "units": "mm", "frame": "camera, relative to the root joint",
                           **aligned.surface.to_metadata()}, allow_float_nan=True)  # frames without an SMPL fit
