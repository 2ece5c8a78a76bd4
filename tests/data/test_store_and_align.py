"""The Parquet store, the aligned tables and the loader that hands methods their arrays."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from lifting.data.align import ROW_KEYS, align_store, write_aligned
from lifting.data.split import Protocol, load_split, read_markers, run_keys, evaluation_chunks
from lifting.data.schema import (cameras_from_frame, joint_columns, poses_from_frame, read_metadata,
                                 read_table, read_table_batches, write_table, write_table_parts)
from lifting.data.store import read_store, with_detected, write_detected, write_store
from lifting.errors import DataError
from lifting.skeleton import H36M17


@pytest.fixture(scope="module")
def aligned_dir(embedded_tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("aligned")
    aligned = align_store(embedded_tables, ("S1", "S5", "S6", "S7", "S8"), ("S9", "S11"))
    write_aligned(aligned, out, "embedded")
    return out


def test_store_round_trip_keeps_values_and_metadata(embedded_tables, tmp_path):
    write_store(embedded_tables, tmp_path, "embedded")
    back = read_store(tmp_path, "embedded")
    assert back.sources2d == ["gt", "noisy"]
    pd.testing.assert_frame_equal(back.poses3d, embedded_tables.poses3d, check_dtype=False)
    assert back.poses3d[joint_columns(H36M17, "xyz")].dtypes.eq(np.float32).all()
    meta = read_metadata(tmp_path / "poses3d.parquet")
    assert meta["units"] == "mm" and meta["joint_set"] == "h36m17" and meta["frame"] == "world"
    with pytest.raises(DataError, match="poses3d.parquet: metadata data_source='embedded', expected 'h36m'"):
        read_store(tmp_path, "h36m")


def test_parquet_layout_uses_byte_stream_split_and_string_dictionaries(embedded_tables, tmp_path):
    import pyarrow.parquet as pq

    write_store(embedded_tables, tmp_path, "embedded")
    column_chunks = pq.ParquetFile(tmp_path / "poses3d.parquet").metadata.row_group(0)
    encodings = {column_chunks.column(i).path_in_schema: column_chunks.column(i).encodings
                 for i in range(column_chunks.num_columns)}
    assert "BYTE_STREAM_SPLIT" in encodings["Hip_x"]
    assert not any("DICTIONARY" in e for e in encodings["Hip_x"])
    assert any("DICTIONARY" in e for e in encodings["subject"])
    assert column_chunks.column(0).compression == "ZSTD"


def test_bad_files_give_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="missing.parquet: file not found"):
        read_table(tmp_path / "missing.parquet", {})
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="corrupt.parquet: not a readable Parquet file"):
        read_table(corrupt, {})
    with pytest.raises(ValueError, match="NaN"):
        write_table(pd.DataFrame({"x": [1.0, np.nan]}), tmp_path / "nan.parquet", {})
    assert not (tmp_path / "nan.parquet").exists()
    assert list(tmp_path.glob(".*tmp")) == []  # no temporary left behind


def test_targets_are_root_relative_camera_frame(embedded_tables, aligned_dir):
    targets, _ = read_table(aligned_dir / "targets.parquet", {"table": "targets"})
    rel = poses_from_frame(targets, H36M17, "xyz")
    assert np.abs(rel[:, 0]).max() == 0.0
    # Bone lengths in the camera frame equal those in the world frame (a rigid transform).
    row = targets.iloc[123]
    world_row = embedded_tables.poses3d[(embedded_tables.poses3d["subject"] == row.subject)
                                        & (embedded_tables.poses3d["sequence"] == row.sequence)
                                        & (embedded_tables.poses3d["frame"] == row.frame)]
    camera = cameras_from_frame(embedded_tables.cameras)[(row.subject, row.camera)]
    in_camera = camera.world_to_camera(poses_from_frame(world_row, H36M17, "xyz")[0])
    np.testing.assert_allclose(rel[123], in_camera - in_camera[0], atol=1e-3)
    np.testing.assert_allclose(row[["root_x", "root_y", "root_z"]].to_numpy(float), in_camera[0], atol=1e-3)
    assert set(targets["split"]) == {"train", "test"}
    assert targets.loc[targets["split"] == "test", "subject"].unique().tolist() == ["S11", "S9"]
    assert targets["every50"].sum() == (targets["frame"] % 50 == 0).sum() > 0
    assert not targets["s9_damaged"].any()  # the embedded data has no drifting sequences


def test_load_split_shapes_statistics_and_protocol_filters(aligned_dir):
    data = load_split(aligned_dir, "gt")
    assert data.train_inputs.shape[1:] == (17, 2) and data.train_targets.shape[1:] == (17, 3)
    assert len(data.test_inputs) == len(data.test_meta) and set(data.test_meta["subject"]) == {"S9", "S11"}
    np.testing.assert_allclose(data.target_mean, data.train_targets.mean(0), atol=1e-2)
    assert np.abs(data.train_inputs).max() < 1.5  # screen-normalised
    strided = load_split(aligned_dir, "gt", protocol=Protocol(train_stride=2, test_every50=True))
    assert len(strided.train_inputs) == pytest.approx(len(data.train_inputs) / 2, rel=0.01)
    assert (strided.test_meta["frame"] % 50 == 0).all()
    assert len(strided.test_meta) == (data.test_meta["frame"] % 50 == 0).sum()
    sixteen = load_split(aligned_dir, "noisy", joint_set="h36m16")
    assert sixteen.train_inputs.shape[1:] == (16, 2) and sixteen.target_mean.shape == (16, 3)
    np.testing.assert_array_equal(sixteen.train_targets[:, 9], data.train_targets[:, 10])  # Head after the nose


def test_2d_inputs_match_the_camera_projection(embedded_tables, aligned_dir):
    data = load_split(aligned_dir, "gt")
    row = data.test_meta.iloc[0]
    cameras = cameras_from_frame(embedded_tables.cameras)
    camera = cameras[(row.subject, row.camera)]
    p2 = embedded_tables.poses2d
    pixels = poses_from_frame(p2[(p2.subject == row.subject) & (p2.camera == row.camera) & (p2.sequence == row.sequence)
                                 & (p2.frame == row.frame) & (p2.source == "gt")], H36M17, "uv")[0]
    np.testing.assert_allclose(data.test_inputs[0], camera.normalize(pixels), atol=1e-6)


def test_the_detected_source_joins_the_store_with_its_confidences(embedded_tables, tmp_path):
    """detect2d's table (pixels + confidences) is aligned like the store's own sources."""
    gt = embedded_tables.poses2d[(embedded_tables.poses2d["source"] == "gt") &
                                 embedded_tables.poses2d["subject"].isin(["S1", "S9"])]
    detected = gt.assign(source="detected").reset_index(drop=True)
    uv = joint_columns(H36M17, "uv")
    detected[uv] = detected[uv] + 10.0
    confidence = pd.DataFrame(0.5, index=detected.index, columns=joint_columns(H36M17, "c"), dtype=np.float32)
    detected = pd.concat([detected, confidence], axis=1)
    write_detected(detected, tmp_path / "poses2d.parquet", "embedded")
    tables = with_detected(embedded_tables, tmp_path / "poses2d.parquet", "embedded")
    subset = dataclasses.replace(tables, poses3d=tables.poses3d[tables.poses3d["subject"].isin(["S1", "S9"])])
    aligned = align_store(subset, ("S1",), ("S9",))
    shift = aligned.inputs["detected"][uv].to_numpy() - aligned.inputs["gt"][uv].to_numpy()
    assert shift == pytest.approx(np.full_like(shift, 10.0 / 1000 * 2), abs=1e-5)  # 10 px on 1000-px-wide images
    assert (aligned.inputs["detected"][joint_columns(H36M17, "c")].to_numpy() == 0.5).all()
    assert joint_columns(H36M17, "c")[0] not in aligned.inputs["gt"].columns
    write_detected(detected.assign(source="noisy"), tmp_path / "other.parquet", "embedded")
    with pytest.raises(DataError, match="other.parquet.*sources other than 'detected'.*detect2d"):
        with_detected(embedded_tables, tmp_path / "other.parquet", "embedded")


def test_a_table_written_in_parts_reads_back_whole_and_in_batches(embedded_tables, tmp_path):
    frame = embedded_tables.poses3d
    parts = [frame.iloc[:5000], frame.iloc[5000:9000], frame.iloc[9000:]]
    write_table_parts(parts, tmp_path / "parts.parquet", {"table": "poses3d"})
    whole, meta = read_table(tmp_path / "parts.parquet", {"table": "poses3d"})
    pd.testing.assert_frame_equal(whole, frame.reset_index(drop=True))
    batches, _ = read_table_batches(tmp_path / "parts.parquet", {"table": "poses3d"}, batch_rows=1234)
    batches = list(batches)
    assert [len(b) for b in batches[:3]] == [1234] * 3
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), whole)
    # a refused part leaves nothing behind, not the parts before it
    bad = frame.iloc[5000:6000].copy()
    bad.iloc[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_table_parts([frame.iloc[:5000], bad], tmp_path / "bad.parquet", {"table": "poses3d"})
    assert not (tmp_path / "bad.parquet").exists()


def test_markers_read_in_batches_keep_exactly_the_selected_rows(aligned_dir):
    targets, _ = read_table(aligned_dir / "targets.parquet", {"table": "targets"})
    whole, _ = read_table(aligned_dir / "markers.parquet", {"table": "markers"})
    rows = (targets["split"] == "train").to_numpy() & (targets["frame"] % 3 == 0).to_numpy()
    markers, surface = read_markers(aligned_dir / "markers.parquet", targets[ROW_KEYS], rows, batch_rows=999)
    expected = whole.drop(columns=ROW_KEYS).to_numpy(np.float32)[rows]
    assert surface is not None and np.array_equal(markers.reshape(len(markers), -1), expected)
    shuffled = targets[ROW_KEYS].sample(frac=1.0, random_state=0).reset_index(drop=True)
    with pytest.raises(DataError, match="markers.parquet: rows do not match targets.parquet"):
        read_markers(aligned_dir / "markers.parquet", shuffled, rows, batch_rows=999)


@pytest.mark.parametrize("protocol", [Protocol(), Protocol(test_every50=True),
                                      Protocol(exclude_s9_damaged=True, test_every50=True)])
def test_evaluation_chunks_are_whole_runs_of_exactly_the_protocols_test_rows(aligned_dir, protocol):
    data = load_split(aligned_dir, "noisy", "h36m16", protocol)
    chunks = list(evaluation_chunks(aligned_dir, "noisy", "h36m16", protocol, chunk_rows=60))
    assert len(chunks) > 3 and all(chunk.scored.all() for chunk in chunks)
    assert np.array_equal(np.concatenate([c.inputs for c in chunks]), data.test_inputs)
    assert np.array_equal(np.concatenate([c.targets for c in chunks]), data.test_targets)
    pd.testing.assert_frame_equal(pd.concat([c.meta for c in chunks], ignore_index=True), data.test_meta)
    runs = [set(run_keys(chunk.meta)) for chunk in chunks]
    assert sum(len(r) for r in runs) == len(set().union(*runs))  # no run is split between two chunks


def test_whole_run_chunks_hold_every_frame_and_mark_the_protocols_rows(aligned_dir):
    every50 = load_split(aligned_dir, "gt", protocol=Protocol(test_every50=True))
    everything = load_split(aligned_dir, "gt")
    chunks = list(evaluation_chunks(aligned_dir, "gt", "h36m17", Protocol(test_every50=True), whole_runs=True,
                              chunk_rows=700))
    meta = pd.concat([c.meta for c in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(meta, everything.test_meta)  # frame 0 of every run is scored
    scored = np.concatenate([c.scored for c in chunks])
    pd.testing.assert_frame_equal(meta[scored].reset_index(drop=True), every50.test_meta)
    assert np.array_equal(np.concatenate([c.inputs for c in chunks]), everything.test_inputs)


def test_evaluation_chunks_refuse_inputs_whose_rows_differ_from_the_targets(aligned_dir, tmp_path):
    for name in ("targets.parquet", "inputs2d_gt.parquet"):
        (tmp_path / name).write_bytes((aligned_dir / name).read_bytes())
    inputs, _ = read_table(tmp_path / "inputs2d_gt.parquet", {"table": "inputs2d"})
    write_table(inputs.iloc[::-1], tmp_path / "inputs2d_gt.parquet", read_metadata(tmp_path / "inputs2d_gt.parquet"))
    with pytest.raises(DataError, match="inputs2d_gt.parquet: rows do not match targets.parquet"):
        list(evaluation_chunks(tmp_path, "gt", "h36m17", chunk_rows=700))
