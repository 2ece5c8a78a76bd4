"""Rendered views in Parquet: bit-exact round trip; damaged or foreign files fail clearly."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifting.errors import DataError
from lifting.images.render import RenderedView
from lifting.images.store import read_views, write_views


def smooth_images(rng, frames, h, w):
    """Gradients with a little noise, like the renders (JPEG is made for such images)."""
    ys, xs = np.mgrid[0:h, 0:w]
    base = 40 + 8 * ys[None, :, :, None] + 6 * xs[None, :, :, None] + 20 * np.arange(3)
    return np.clip(base + rng.normal(0, 2, (frames, h, w, 3)), 0, 255).astype(np.uint8)


def views(count=2, frames=5, h=16, w=12):
    rng = np.random.default_rng(0)
    return [RenderedView(f"S{i}", "walk", "54138969", np.arange(frames, dtype=np.int32),
                         smooth_images(rng, frames, h, w),
                         rng.uniform(0, 1000, (frames, 2)).astype(np.float32),
                         rng.uniform(100, 400, (frames, 2)).astype(np.float32), (1000, 1002)) for i in range(count)]


def test_round_trip_keeps_keys_and_boxes_exact_and_images_within_jpeg_error(tmp_path):
    written = views()
    assert write_views(tmp_path / "views.parquet", iter(written), {"source": "embedded"}) == 10
    keys, images, centres, sizes, image_sizes = read_views(tmp_path / "views.parquet")
    assert list(keys.columns) == ["subject", "sequence", "camera", "frame"]
    assert keys["subject"].tolist() == ["S0"] * 5 + ["S1"] * 5 and keys["frame"].tolist() == [0, 1, 2, 3, 4] * 2
    difference = images.astype(int) - np.concatenate([v.images for v in written])
    assert np.abs(difference).mean() < 3.0 and np.abs(difference).max() < 40
    assert np.array_equal(read_views(tmp_path / "views.parquet").images, images)  # decoding is deterministic
    assert np.array_equal(centres, np.concatenate([v.centres for v in written]))
    assert np.array_equal(sizes, np.concatenate([v.sizes for v in written]))
    assert image_sizes.tolist() == [[1000, 1002]] * 10


def test_corrupt_image_bytes_fail_with_the_fix(tmp_path):
    path = tmp_path / "views.parquet"
    write_views(path, views(), {})
    table = pq.read_table(path)
    images = table.column("image").to_pylist()
    images[3] = images[3][:20] + b"\x00" * 30
    table = table.set_column(table.column_names.index("image"), "image", pa.array(images, pa.binary()))
    pq.write_table(table, path)
    with pytest.raises(DataError, match="row 3.*dvc repro render"):
        read_views(path)


def test_wrong_table_missing_or_garbage_file_fail(tmp_path):
    other = tmp_path / "other.parquet"
    table = pa.table({"x": [1]}).replace_schema_metadata({"lifting.table": "poses3d"})
    pq.write_table(table, other)
    with pytest.raises(DataError, match="table='poses3d'.*dvc repro render"):
        read_views(other)
    with pytest.raises(DataError, match="not found.*dvc repro render"):
        read_views(tmp_path / "absent.parquet")
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not a readable Parquet.*dvc repro render"):
        read_views(tmp_path / "garbage.parquet")
    bad_size = tmp_path / "size.parquet"
    write_views(bad_size, views(), {})
    table = pq.read_table(bad_size)
    meta = dict(table.schema.metadata)
    meta[b"lifting.width"] = b"13"
    pq.write_table(table.replace_schema_metadata(meta), bad_size)
    with pytest.raises(DataError, match="expected"):
        read_views(bad_size)
