"""Temporal windows over the aligned data: each frame's receptive field, edge-padded, by index.

The temporal methods (VideoPose3D, Pose3D-RIE) predict a frame from the window of frames centred
on it within its own (subject, sequence, camera) run. Nothing is copied per sample: a
:class:`SequenceIndex` orders the rows of a split by run and frame, and :meth:`window_rows` turns a
batch of rows into a ``(B, R)`` matrix of row indices with the frames beyond a run's ends
clamped to its first or last frame (VideoPose3D's edge padding), so a batch of windows is one
gather from the in-memory ``(N, J, 2)`` inputs: ``inputs[index.window_rows(rows, R)]`` ->
``(B, R, J, 2)``. Evaluation runs whole runs instead (:meth:`SequenceIndex.runs`, :func:`padded_run`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

#: The columns that identify a run of consecutive frames (one camera's view of one sequence).
RUN_KEYS = ("subject", "sequence", "camera")


@dataclass(frozen=True)
class SequenceIndex:
    """Where every row of a split sits in its run.

    Attributes:
        order: (N,) int64, the split's rows sorted by run, then frame.
        position: (N,) int64, each row's place in :attr:`order`.
        first, last: (N,) int64, the :attr:`order` positions of each row's run's first and last frame.
    """

    order: np.ndarray
    position: np.ndarray
    first: np.ndarray
    last: np.ndarray

    @classmethod
    def from_meta(cls, meta: pd.DataFrame) -> SequenceIndex:
        """Index the rows of a split from its ``subject, sequence, camera, frame`` columns; the
        frames of a run must be consecutive (no gaps), as the aligned data's are."""
        runs = meta.groupby(list(RUN_KEYS), sort=False).ngroup().to_numpy(np.int64)  # a number per run
        frames = meta["frame"].to_numpy(np.int64)
        order = np.lexsort((frames, runs))
        sorted_runs, sorted_frames = runs[order], frames[order]
        new_run = np.r_[True, sorted_runs[1:] != sorted_runs[:-1]]
        gaps = ~new_run[1:] & (np.diff(sorted_frames) != 1)
        if gaps.any():
            where = int(np.flatnonzero(gaps)[0]) + 1
            name = "/".join(str(value) for value in meta.iloc[order[where]][list(RUN_KEYS)])
            raise ValueError(f"run {name} has a gap before frame {sorted_frames[where]}: "
                             "temporal windows need consecutive frames")
        starts = np.flatnonzero(new_run)
        ends = np.r_[starts[1:], len(order)] - 1
        run_of = np.cumsum(new_run) - 1
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        return cls(order, position, starts[run_of][position], ends[run_of][position])

    def window_rows(self, rows: np.ndarray, field: int) -> np.ndarray:
        """(B, field) row indices of the windows centred on ``rows`` (split order), edge-padded."""
        return self.windows(rows, field)[:].numpy()

    def windows(self, rows: np.ndarray, field: int, device: torch.device | None = None) -> Windows:
        """The windows of ``field`` frames centred on ``rows``, their rows made batch by batch
        (:class:`Windows`), on ``device``."""
        if field % 2 == 0:
            raise ValueError(f"a window is centred on its frame: odd field needed, got {field}")
        tensor = [torch.as_tensor(a, device=device) for a in
                  (self.order, self.position[rows], self.first[rows], self.last[rows])]
        return Windows(*tensor, field=field)

    def runs(self) -> list[np.ndarray]:
        """Each run's rows (split order), in frame order."""
        starts = np.unique(self.first)
        return [self.order[start:end + 1] for start, end in zip(starts, np.unique(self.last))]


@dataclass(frozen=True)
class Windows:
    """The rows of n windows of ``field`` frames, made per batch instead of held: ``windows[index]``
    (a slice or an index tensor) is the (B, field) matrix of those windows' rows, each window centred
    on its frame and clamped to its run's first and last frame. It holds N + 3n integers where the matrix holds ``field`` x n (Human3.6M's 1.56M
    training windows of 243 frames: 50 MB against 3 GB).

    Attributes:
        order: (N,) the pool's rows sorted by run, then frame (:attr:`SequenceIndex.order`).
        centre, first, last: (n,) each window's centre position in ``order`` and its run's first and last.
    """

    order: torch.Tensor
    centre: torch.Tensor
    first: torch.Tensor
    last: torch.Tensor
    field: int

    def __len__(self) -> int:
        return len(self.centre)

    def __getitem__(self, index: slice | torch.Tensor) -> torch.Tensor:
        offsets = torch.arange(self.field, device=self.centre.device) - self.field // 2
        positions = self.centre[index][:, None] + offsets
        return self.order[torch.clamp(positions, self.first[index][:, None], self.last[index][:, None])]


def padded_run(values: torch.Tensor, field: int) -> torch.Tensor:
    """(T + field - 1, ...) one run's (T, ...) frames with ``field // 2`` copies of its first and
    last frame at either end, for the dilated form: one output per frame."""
    pad = field // 2
    return torch.cat([values[:1].expand(pad, *values.shape[1:]), values, values[-1:].expand(pad, *values.shape[1:])])
