"""HGN is built on the surface graph of the data it trains on, and its run says which."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from lifting.data.split import Protocol, load_split
from lifting.data.surface.markers import POSED_BY_ROTATIONS
from lifting.errors import DataError
from lifting.models import hgn
from lifting.runner import RunSettings, load_method, train_method

SETTINGS = RunSettings(seeds=(0,), threads=1, max_epochs=1, batch_size=64, train_stride=40, lr_scale=1.0,
                       decay="cosine", warmup=0.0, bf16_cpu=False, curve_points=0, curve_test_stride=50,
                       val_fraction=0.1, checkpoint="last")


@pytest.fixture(scope="module")
def aligned_dir(aligned_s1_s9):
    return aligned_s1_s9


def test_the_graph_travels_with_the_markers(aligned_dir, embedded_tables):
    data = load_split(aligned_dir, "gt", "h36m17", Protocol(train_stride=40), markers=True)
    stored = embedded_tables.surface
    assert data.surface.posed_by == POSED_BY_ROTATIONS and data.surface.name == stored.name
    for field in ("fine_adjacency", "coarse_adjacency", "fine_real", "coarse_real"):
        assert np.array_equal(getattr(data.surface, field), getattr(stored, field)), field
    assert (data.surface.fine_real.sum(), data.surface.coarse_real.sum()) == (81, 44)


@pytest.mark.parametrize("mesh_loss", [True, False])
def test_hgn_trains_on_the_datas_graph_and_its_label_says_so(aligned_dir, tmp_path, mesh_loss):
    data = load_split(aligned_dir, "gt", "h36m17", Protocol(train_stride=40), markers=True)
    cfg = hgn.Config(mesh_loss=mesh_loss)
    train_method("hgn", cfg, "gt", data, SETTINGS, tmp_path, tmp_path / "log.csv", snapshot={}, progress=False)
    saved, predictors = load_method(tmp_path / "model.pt")
    label = saved.configuration
    assert label.startswith("HGN, 1.04M") and data.surface.description in label
    assert ("not the paper's: mesh_loss=False" in label) == (not mesh_loss)
    model = hgn.build(cfg, 17, data.surface)
    assert saved.parameters == sum(p.numel() for p in model.parameters())
    predicted = predictors[0](data.test_inputs[:8])
    assert predicted.shape == (8, 17, 3) and np.isfinite(predicted).all()
    assert np.allclose(predicted[:, 0], 0.0)  # root-relative


def test_a_damaged_graph_is_one_clear_error(aligned_dir, tmp_path):
    path = aligned_dir / "markers.parquet"
    table = pq.read_table(path)
    metadata = {k: v for k, v in table.schema.metadata.items() if k != b"lifting.fine_edges"}
    damaged = tmp_path / "aligned"
    damaged.mkdir()
    for item in aligned_dir.iterdir():
        (damaged / item.name).write_bytes(item.read_bytes())
    pq.write_table(table.replace_schema_metadata(metadata), damaged / "markers.parquet")
    with pytest.raises(DataError, match=r"markers\.parquet.*surface graph in its metadata is missing or damaged"):
        load_split(damaged, "gt", "h36m17", Protocol(), markers=True)

