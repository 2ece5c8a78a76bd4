"""One person's track through a video: choose a person per frame, fill what the detector missed.

Following (:func:`follow`): in the first frame with people the highest-scoring one; after that the
person nearest to the previous choice (mean pixel distance over the keypoints confident in both),
or always the ``person``-th instance of each frame when asked. Filling (:func:`fill`): a keypoint
under ``min_score``, and every keypoint of a frame without a detection, is linearly interpolated
along the track from the nearest frames where it was seen, and held constant before the first and
after the last (VideoPose3D's practice for custom video); every filled keypoint is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lifting.errors import DataError
from lifting.predict.formats import Detections


@dataclass(frozen=True)
class Track:
    """One person, every frame from the first to the last the file covers.

    Attributes:
        frames: (T,) int64 consecutive frame numbers.
        pixels: (T, K, 2) float32 keypoints in the input's layout, pixels, gaps filled.
        scores: (T, K) the detector's confidences (0 in frames without a detection).
        detected: (T,) bool, a person was chosen in this frame.
        filled: (T, K) bool, the keypoint was interpolated (below min_score, or no detection).
        people: (T,) int, how many people the frame held.
    """

    frames: np.ndarray
    pixels: np.ndarray
    scores: np.ndarray
    detected: np.ndarray
    filled: np.ndarray
    people: np.ndarray

    @property
    def filled_frames(self) -> np.ndarray:
        """(T,) bool: anything in the frame was interpolated."""
        return self.filled.any(axis=1)


def follow(detections: Detections, person: int | None = None, min_score: float = 0.0) -> np.ndarray:
    """(T,) for every frame from the first to the last, the chosen instance's row, -1 for none.

    ``person``: always the K-th instance (0-based, in the file's order) of each frame; a frame with
    fewer people counts as a missed detection.
    """
    start = int(detections.frames[0])
    count = int(detections.frames[-1]) - start + 1
    slots = detections.frame_of - start
    first_row = np.searchsorted(slots, np.arange(count), side="left")
    people = np.searchsorted(slots, np.arange(count), side="right") - first_row
    chosen = np.full(count, -1, dtype=np.int64)
    if person is not None:
        has = people > person
        chosen[has] = first_row[has] + person
        return chosen
    if people.max(initial=0) <= 1:  # one person per frame: nothing to choose
        chosen[people == 1] = first_row[people == 1]
        return chosen
    previous = None
    for t in np.flatnonzero(people):
        rows = np.arange(first_row[t], first_row[t] + people[t])
        if previous is None or len(rows) == 1:
            pick = rows[np.argmax(detections.person_scores[rows])]
        else:
            pick = rows[np.argmin([_distance(detections, previous, r, min_score) for r in rows])]
        chosen[t] = previous = pick
    return chosen


def _distance(detections: Detections, a: int, b: int, min_score: float) -> float:
    """Mean pixel distance between two instances over the keypoints confident in both (inf if none)."""
    both = (detections.keypoint_scores[a] >= min_score) & (detections.keypoint_scores[b] >= min_score)
    if not both.any():
        return np.inf
    return float(np.linalg.norm(detections.keypoints[a, both] - detections.keypoints[b, both], axis=-1).mean())


def fill(detections: Detections, chosen: np.ndarray, min_score: float) -> Track:
    """The track of the instances ``chosen`` (from :func:`follow`), gaps interpolated."""
    count, joints = len(chosen), detections.keypoints.shape[1]
    frames = np.arange(count, dtype=np.int64) + int(detections.frames[0])
    detected = chosen >= 0
    pixels = np.zeros((count, joints, 2), dtype=np.float32)
    scores = np.zeros((count, joints), dtype=np.float32)
    pixels[detected] = detections.keypoints[chosen[detected]]
    scores[detected] = detections.keypoint_scores[chosen[detected]]
    seen = detected[:, None] & (scores >= min_score)
    for k in range(joints):
        known = np.flatnonzero(seen[:, k])
        if len(known) == 0:
            raise DataError(detections.source,
                            f"keypoint {detections.joint_names[k]} is never detected with score >= {min_score:g}",
                            "lower --min-score, or choose another person with --person")
        gaps = np.flatnonzero(~seen[:, k])
        for axis in range(2):  # the seen keypoints stay as they were, bit for bit
            pixels[gaps, k, axis] = np.interp(frames[gaps], frames[known], pixels[known, k, axis])
    people = np.bincount(detections.frame_of - frames[0], minlength=count)[:count]
    return Track(frames, pixels, scores, detected, ~seen, people)
