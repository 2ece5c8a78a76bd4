"""Write and read the canonical Parquet store of one data source (data/parquet/)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from lifting.data.schema import StoreTables, read_table, write_table
from lifting.data.surface.graph import SurfaceGraph
from lifting.errors import DataError
from lifting.skeleton import H36M17

_POSES3D = {"table": "poses3d", "joint_set": H36M17.name, "units": "mm", "frame": "world"}
_POSES2D = {"table": "poses2d", "joint_set": H36M17.name, "units": "px", "frame": "image"}
_MARKERS = {"table": "markers", "units": "mm", "frame": "world"}
_CAMERAS = {"table": "cameras", "units": "px, mm", "frame": "orientation camera->world (w,x,y,z), translation = centre"}


def write_store(tables: StoreTables, out_dir: str | Path, data_source: str) -> None:
    """Write poses3d/poses2d/cameras.parquet with their key-value metadata into ``out_dir``."""
    out_dir = Path(out_dir)
    common = {"data_source": data_source}
    write_table(tables.poses3d, out_dir / "poses3d.parquet", {**_POSES3D, **common})
    write_table(tables.poses2d, out_dir / "poses2d.parquet",
                {**_POSES2D, **common, "sources2d": ",".join(tables.sources2d)})
    write_table(tables.cameras, out_dir / "cameras.parquet", {**_CAMERAS, **common})
    if tables.markers is not None:
        write_table(tables.markers, out_dir / "markers.parquet", {**_MARKERS, **common, **tables.surface.to_metadata()},
                    allow_float_nan=True)  # frames without an SMPL fit


def read_store(store_dir: str | Path, data_source: str) -> StoreTables:
    """Read the store back, checking that every table was written for ``data_source``."""
    store_dir = Path(store_dir)
    common = {"data_source": data_source}
    poses3d, _ = read_table(store_dir / "poses3d.parquet", {**_POSES3D, **common})
    poses2d, meta2d = read_table(store_dir / "poses2d.parquet", {**_POSES2D, **common})
    cameras, _ = read_table(store_dir / "cameras.parquet", {**_CAMERAS, **common})
    markers = surface = None
    if (store_dir / "markers.parquet").exists():
        markers, meta = read_table(store_dir / "markers.parquet", {**_MARKERS, **common})
        surface = surface_from_metadata(meta, store_dir / "markers.parquet")
    return StoreTables(poses3d, poses2d, cameras, meta2d["sources2d"].split(","), markers, surface)


def write_detected(poses2d: pd.DataFrame, path: str | Path, data_source: str) -> None:
    """Write the pipeline detector's 2D (``detect2d``; the ``detected`` source, with confidences)."""
    write_table(poses2d, path, {**_POSES2D, "data_source": data_source, "sources2d": "detected"})


def with_detected(tables: StoreTables, path: str | Path, data_source: str) -> StoreTables:
    """The store's tables with the ``detected`` 2D source of ``detect2d`` added."""
    detected, _ = read_table(path, {**_POSES2D, "data_source": data_source, "sources2d": "detected"})
    if set(detected["source"]) != {"detected"}:
        raise DataError(path, "holds sources other than 'detected'", "re-run `dvc repro detect2d`")
    return dataclasses.replace(tables, poses2d=pd.concat([tables.poses2d, detected], ignore_index=True),
                               sources2d=[*tables.sources2d, "detected"])


def surface_from_metadata(meta: dict[str, str], path: Path) -> SurfaceGraph:
    """The surface graph written into a markers table's metadata (one clear error if damaged)."""
    try:
        return SurfaceGraph.from_metadata(meta)
    except (KeyError, ValueError, IndexError) as err:
        raise DataError(path, f"the surface graph in its metadata is missing or damaged ({type(err).__name__}: {err})",
                        "rebuild it with `dvc repro normalize align`") from None
