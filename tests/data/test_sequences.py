"""Temporal windows by index: edge padding at the ends of each run, never across runs."""

import numpy as np
import pandas as pd
import pytest
import torch

from lifting.data.sequences import SequenceIndex, padded_run
from lifting.models.tcn import TemporalConvNet


def _meta(runs: dict[tuple[str, str, int], int], seed: int = 0) -> pd.DataFrame:
    """A split's metadata with the given runs' frames, rows shuffled."""
    parts = [pd.DataFrame({"subject": s, "sequence": q, "camera": c, "frame": np.arange(n)})
             for (s, q, c), n in runs.items()]
    frame = pd.concat(parts, ignore_index=True)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_windows_are_centred_and_clamped_to_their_own_run():
    meta = _meta({("S1", "walk", 1): 6, ("S1", "walk", 2): 4, ("S5", "run", 1): 3})
    index = SequenceIndex.from_meta(meta)
    windows = index.window_rows(np.arange(len(meta)), 5)
    for row, window in enumerate(windows):
        same_run = (meta.loc[window, ["subject", "sequence", "camera"]] == meta.loc[row, ["subject", "sequence", "camera"]]).all(axis=1)
        assert same_run.all()
        last = int((meta[["subject", "sequence", "camera"]] == meta.loc[row, ["subject", "sequence", "camera"]]).all(axis=1).sum()) - 1
        expected = np.clip(meta.loc[row, "frame"] + np.arange(-2, 3), 0, last)
        assert meta.loc[window, "frame"].tolist() == expected.tolist()


def test_windows_made_per_batch_are_the_window_rows():
    meta = _meta({("S1", "walk", 1): 9, ("S1", "walk", 2): 2, ("S5", "run", 1): 14}, seed=1)
    index = SequenceIndex.from_meta(meta)
    rows = np.array([5, 0, 17, 3, 24, 11, 8])
    lazy = index.windows(rows, 7)
    assert len(lazy) == len(rows)
    expected = index.window_rows(rows, 7)
    assert np.array_equal(lazy[torch.tensor([2, 0, 6])].numpy(), expected[[2, 0, 6]])
    assert np.array_equal(lazy[1:5].numpy(), expected[1:5])
    with pytest.raises(ValueError, match="odd field"):
        index.windows(rows, 4)


def test_runs_come_in_frame_order_and_a_gap_is_refused():
    meta = _meta({("S1", "walk", 1): 6, ("S9", "jump", 3): 5}, seed=3)
    runs = SequenceIndex.from_meta(meta).runs()
    assert sorted(len(r) for r in runs) == [5, 6]
    assert all(meta.loc[r, "frame"].tolist() == list(range(len(r))) for r in runs)
    with pytest.raises(ValueError, match="gap before frame 4"):
        SequenceIndex.from_meta(meta[meta["frame"] != 3])


def test_gathered_windows_give_the_dilated_forms_output_on_a_padded_run():
    """Training gathers windows by index; evaluation pads whole runs: both predict each frame alike."""
    torch.manual_seed(0)
    net = TemporalConvNet(2, 3, (3, 3), channels=8, dropout=0.0).eval()
    meta = _meta({("S1", "walk", 1): 12, ("S1", "walk", 2): 7})
    values = np.random.default_rng(0).normal(size=(len(meta), 2)).astype(np.float32)
    index = SequenceIndex.from_meta(meta)
    with torch.no_grad():
        windows = torch.as_tensor(values[index.window_rows(np.arange(len(meta)), 9)]).transpose(1, 2)
        per_row = net(windows, strided=True)[:, :, 0]
        for run in index.runs():
            whole = net(padded_run(torch.as_tensor(values[run]), 9).T[None], strided=False)[0].T
            assert torch.allclose(whole, per_row[run], atol=1e-5)
