"""Readers of the 2D keypoint files users have, into one table of detected people.

Four formats, detected by content (:func:`detect_format`) or named:

* ``coco``: COCO keypoint results, ``[{image_id, keypoints: [x, y, score] x 17, score, bbox?}]``.
* ``openpose``: a folder of OpenPose per-frame JSON files (or one such file),
  ``{people: [{pose_keypoints_2d: [x, y, c] x 25 or x 18}]}`` (BODY_25 or COCO-18; a keypoint
  OpenPose did not find is 0, 0, 0). Both layouts are mapped to COCO-17 here
  (:data:`BODY25_TO_COCO17`, :data:`COCO18_TO_COCO17`).
* ``mmpose``: MMPose ``--save-predictions`` JSON, ``{meta_info, instance_info: [{frame_id,
  instances: [{keypoints, keypoint_scores, bbox, bbox_score}]}]}`` (an image's file holds the
  instances directly).
* ``parquet``: our own 2D table (:mod:`lifting.data.schema`): ``<joint>_u/_v`` pixel columns of
  the h36m17 joints (``_c`` confidences optional), ``frame`` optional.

Every reader returns a :class:`Detections`: one row per detected person (an *instance*), in
pixels, with the frame it belongs to. The first three give COCO-17 keypoints, the Parquet reader
h36m17 joints. Bad input gives one :class:`~lifting.errors.DataError` naming the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lifting.data.schema import METADATA_PREFIX, joint_columns
from lifting.errors import DataError
from lifting.skeleton import COCO17, H36M17

FORMATS = ("coco", "openpose", "mmpose", "parquet")

#: OpenPose BODY_25 index of each COCO-17 keypoint (BODY_25: 0 Nose, 1 Neck, 2-4 right arm, 5-7 left
#: arm, 8 MidHip, 9-11 right leg, 12-14 left leg, 15 REye, 16 LEye, 17 REar, 18 LEar, 19-24 feet).
#: Neck, MidHip and the feet have no COCO-17 counterpart and are dropped.
BODY25_TO_COCO17 = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)
#: OpenPose COCO-18 index of each COCO-17 keypoint (COCO-18: 0 Nose, 1 Neck, 2-4 right arm, 5-7 left
#: arm, 8-10 right leg, 11-13 left leg, 14 REye, 15 LEye, 16 REar, 17 LEar). Neck is dropped.
COCO18_TO_COCO17 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)
OPENPOSE_LAYOUTS = {25: ("BODY_25", BODY25_TO_COCO17), 18: ("COCO-18", COCO18_TO_COCO17)}


def openpose_to_coco17(keypoints: np.ndarray) -> np.ndarray:
    """(..., 25 or 18, C) OpenPose BODY_25 / COCO-18 keypoints -> (..., 17, C) COCO-17.

    A pure re-indexing: OpenPose's hips, like COCO's, sit higher on the body (at the top of the
    thigh, seen from outside) than Human3.6M's hip-joint centres, so a lifter trained on Human3.6M
    sees a shorter pelvis-to-knee segment than it learnt; the 3D is biased accordingly
    (:func:`lifting.skeleton.coco17_to_h36m17` inherits the same bias).
    """
    count = keypoints.shape[-2]
    if count not in OPENPOSE_LAYOUTS:
        raise ValueError(f"OpenPose keypoints come as 25 (BODY_25) or 18 (COCO-18), got {count}")
    return keypoints[..., list(OPENPOSE_LAYOUTS[count][1]), :]


@dataclass(frozen=True)
class Detections:
    """Every person a keypoint file holds, one row per detected instance.

    Attributes:
        source: the file or folder read. format: one of :data:`FORMATS`.
        layout: "coco17" or "h36m17": the joint order of ``keypoints``.
        frames: (F,) int64, sorted: every frame the file covers, with or without a person.
        frame_of: (M,) int64, the frame of each instance (ascending).
        keypoints: (M, 17, 2) float32 pixels. keypoint_scores: (M, 17) float32 confidences (1
            where the file has none).
        person_scores: (M,) the detector's score of each instance (the mean keypoint score where
            the file has none).
        width, height: the image size in pixels, where the file says it (else None).
        notes: what the reader had to assume (shown in the summary).
    """

    source: Path
    format: str
    layout: str
    frames: np.ndarray
    frame_of: np.ndarray
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    person_scores: np.ndarray
    width: int | None = None
    height: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def joint_names(self) -> tuple[str, ...]:
        return (COCO17 if self.layout == "coco17" else H36M17).names


def detect_format(path: Path) -> str:
    """The format of ``path`` from its content: a folder or a ``people`` dict is OpenPose, a list of
    ``keypoints`` records COCO, an ``instance_info`` dict MMPose, a Parquet magic number ours."""
    if path.is_dir():
        return "openpose"
    head = _read_bytes(path)[:4]
    if head == b"PAR1":
        return "parquet"
    data = _load_json(path)
    if isinstance(data, list) and (not data or isinstance(data[0], dict) and "keypoints" in data[0]):
        return "coco"
    if isinstance(data, dict) and "instance_info" in data:
        return "mmpose"
    if isinstance(data, dict) and "people" in data:
        return "openpose"
    raise DataError(path, "not a keypoint file this tool knows (no COCO `keypoints` records, OpenPose `people`, "
                          "MMPose `instance_info`, nor Parquet)",
                    f"give COCO results, an OpenPose folder, MMPose --save-predictions JSON or our Parquet 2D, or name "
                    f"the format with --format {{{','.join(FORMATS)}}}")


def read_keypoints(path: str | Path, fmt: str | None = None, where: dict[str, str] | None = None) -> Detections:
    """Read ``path`` in format ``fmt`` (None: detected). ``where``: for a Parquet table holding
    several runs, the values of its key columns that pick one (e.g. ``{"subject": "S9"}``)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "keypoint file not found", "check the path")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise DataError(path, f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    reader = {"coco": _read_coco, "openpose": _read_openpose, "mmpose": _read_mmpose}.get(fmt)
    detections = reader(path) if reader is not None else _read_parquet(path, where or {})
    _check_finite(detections)
    return detections


# --- JSON helpers -------------------------------------------------------------------------------

def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if not data.strip():
        raise DataError(path, "the file is empty", "give the detector's output file (it may not have finished writing)")
    return data


def _load_json(path: Path):
    try:
        return json.loads(_read_bytes(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(path, f"malformed JSON ({err})", "re-export the keypoints; the file may be truncated") from None


def _last_number(text: str) -> int | None:
    found = re.findall(r"\d+", text)
    return int(found[-1]) if found else None


def _frame_numbers(ids: list, path: Path, what: str) -> np.ndarray:
    """Integer frame numbers for image ids / file names: the id itself, or the last number in it;
    the order of appearance only when no id has a number (noted by the caller)."""
    numbers = [i if isinstance(i, int) and not isinstance(i, bool) else _last_number(str(i)) for i in ids]
    if any(n is None for n in numbers):
        if all(n is None for n in numbers):
            return np.unique(np.asarray([str(i) for i in ids]), return_inverse=True)[1].astype(np.int64)
        raise DataError(path, f"some {what} carry a frame number and some do not", f"name every {what} by its frame")
    return np.asarray(numbers, dtype=np.int64)


def _instances(path: Path, frames_in_file, frame_of, keypoints, scores, person_scores, layout: str, fmt: str,
               width=None, height=None, notes=()) -> Detections:
    """Detections from per-instance lists or arrays, sorted by frame (float32: a few hundred bytes a
    frame, so an hour of video stays small)."""
    frame_of = np.asarray(frame_of, dtype=np.int64)
    kp = np.asarray(keypoints, dtype=np.float32).reshape(-1, 17, 2)
    sc = np.asarray(scores, dtype=np.float32).reshape(-1, 17)
    person = np.asarray(person_scores, dtype=np.float32).reshape(-1)
    if np.any(np.diff(frame_of) < 0):
        order = np.argsort(frame_of, kind="stable")
        frame_of, kp, sc, person = frame_of[order], kp[order], sc[order], person[order]
    return Detections(path, fmt, layout, np.unique(frames_in_file), frame_of, kp, sc, person, width, height, tuple(notes))


def _size_from(record: dict) -> tuple[int | None, int | None]:
    """(width, height) where a JSON dict states them (``width``/``height`` or ``img_shape``=(h, w))."""
    if isinstance(record.get("width"), (int, float)) and isinstance(record.get("height"), (int, float)):
        return int(record["width"]), int(record["height"])
    shape = record.get("img_shape") or record.get("ori_shape")
    if isinstance(shape, list) and len(shape) >= 2 and all(isinstance(v, (int, float)) for v in shape[:2]):
        return int(shape[1]), int(shape[0])
    return None, None


def _triples(values, path: Path, where: str, counts: tuple[int, ...]) -> np.ndarray:
    """A flat [x, y, c] * K list -> (K, 3), K one of ``counts``."""
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise DataError(path, f"{where}: keypoints are not a flat list of numbers", "re-export the keypoints")
    if len(values) % 3 or len(values) // 3 not in counts:
        raise DataError(path, f"{where}: {len(values)} numbers = {len(values) / 3:g} keypoints; expected "
                              f"{' or '.join(str(c) for c in counts)} (x, y, score) triples",
                        "give COCO-17 keypoints (OpenPose: BODY_25 or COCO-18); other skeletons (Halpe-26, "
                        "whole-body) are not supported")
    return np.asarray(values, dtype=np.float64).reshape(-1, 3)


# --- the readers --------------------------------------------------------------------------------

def _read_coco(path: Path) -> Detections:
    data = _load_json(path)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(path, "COCO results must be a JSON list of records", "re-export the keypoints")
    if not data:
        raise DataError(path, "holds no detections (an empty list)", "run the detector on the video first")
    ids, keypoints, scores, person = [], [], [], []
    width = height = None
    for n, record in enumerate(data):
        if "image_id" not in record or "keypoints" not in record:
            raise DataError(path, f"record {n} lacks image_id or keypoints", "give COCO keypoint results")
        triples = _triples(record["keypoints"], path, f"record {n} (image_id {record['image_id']})", (17,))
        ids.append(record["image_id"])
        keypoints.append(triples[:, :2])
        scores.append(triples[:, 2])
        score = record.get("score")
        person.append(float(score) if isinstance(score, (int, float)) else float(triples[:, 2].mean()))
        width, height = _size_from(record) if width is None else (width, height)
    frames = _frame_numbers(ids, path, "image_id")
    notes = [] if all(isinstance(i, int) for i in ids) else ["frame numbers taken from the last number in each image_id"]
    return _instances(path, frames, frames, keypoints, scores, person, "coco17", "coco", width, height, notes)


def _openpose_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
    if not files:
        raise DataError(path, "the folder holds no .json files", "point at OpenPose's --write_json folder")
    return files


def _read_openpose(path: Path) -> Detections:
    files = _openpose_files(path)
    numbers = _frame_numbers([f.stem for f in files], path, "file name")
    order = np.argsort(numbers, kind="stable")
    if len(np.unique(numbers)) != len(numbers):
        raise DataError(path, "two files carry the same frame number", "keep one video's frames per folder")
    frame_of, keypoints, scores, person = [], [], [], []
    layouts = set()
    width = height = None
    for i in order:
        file, frame = files[i], int(numbers[i])
        data = _load_json(file)
        if not isinstance(data, dict) or not isinstance(data.get("people"), list):
            raise DataError(file, "not an OpenPose frame (no `people` list)", "point at OpenPose's --write_json output")
        if width is None:
            width, height = _size_from(data)
        for p, entry in enumerate(data["people"]):
            values = entry.get("pose_keypoints_2d") if isinstance(entry, dict) else None
            triples = _triples(values, file, f"person {p}", tuple(OPENPOSE_LAYOUTS))
            layouts.add(len(triples))
            coco = openpose_to_coco17(triples)
            frame_of.append(frame)
            keypoints.append(coco[:, :2])
            scores.append(coco[:, 2])
            person.append(float(triples[:, 2].mean()))
    if len(layouts) > 1:
        raise DataError(path, "mixes BODY_25 and COCO-18 keypoints", "run OpenPose with one --model_pose")
    if not frame_of:
        raise DataError(path, "no person in any frame", "check the video and OpenPose's output")
    note = f"OpenPose {OPENPOSE_LAYOUTS[layouts.pop()][0]} mapped to COCO-17 (keypoints at 0, 0, 0 are missing)"
    return _instances(path, numbers, frame_of, keypoints, scores, person, "coco17", "openpose", width, height, [note])


def _mmpose_instance(instance, path: Path, where: str) -> tuple[np.ndarray, np.ndarray, float]:
    if not isinstance(instance, dict) or "keypoints" not in instance:
        raise DataError(path, f"{where}: not an MMPose instance (no keypoints)", "give MMPose --save-predictions JSON")
    try:
        kp = np.asarray(instance["keypoints"], dtype=np.float64)
        sc = np.asarray(instance.get("keypoint_scores", np.ones(kp.shape[:-1])), dtype=np.float64)
    except (ValueError, TypeError):
        raise DataError(path, f"{where}: keypoints are not an array of numbers", "re-export the predictions") from None
    kp, sc = kp.reshape(-1, *kp.shape[-2:]) if kp.ndim >= 2 else kp, sc.reshape(-1)
    if kp.ndim != 3 or kp.shape[0] != 1 or kp.shape[-1] != 2 or sc.shape != kp.shape[1:2]:
        raise DataError(path, f"{where}: keypoints of shape {list(kp.shape)} with {sc.size} scores",
                        "give one (x, y) pair and one score per keypoint")
    if kp.shape[1] != 17:
        raise DataError(path, f"{where}: {kp.shape[1]} keypoints; expected 17 (COCO)",
                        "use a COCO-17 2D model (other skeletons are not supported)")
    bbox_score = instance.get("bbox_score")
    if isinstance(bbox_score, list) and bbox_score:
        bbox_score = bbox_score[0]
    person = float(bbox_score) if isinstance(bbox_score, (int, float)) else float(sc.mean())
    return kp[0], sc, person


def _read_mmpose(path: Path) -> Detections:
    data = _load_json(path)
    info = data.get("instance_info") if isinstance(data, dict) else None
    if not isinstance(info, list):
        raise DataError(path, "not MMPose predictions (no `instance_info` list)", "give MMPose --save-predictions JSON")
    if not info:
        raise DataError(path, "holds no frames (empty instance_info)", "run MMPose on the video first")
    meta = data.get("meta_info") if isinstance(data.get("meta_info"), dict) else {}
    width, height = _size_from(data)
    if width is None:
        width, height = _size_from(meta)
    video = all(isinstance(f, dict) and "instances" in f for f in info)
    frames_raw = [f.get("frame_id", n) for n, f in enumerate(info)] if video else [0]
    per_frame = [f["instances"] for f in info] if video else [info]
    frames = _frame_numbers(frames_raw, path, "frame_id")
    frame_of, keypoints, scores, person = [], [], [], []
    for frame, instances in zip(frames, per_frame):
        if not isinstance(instances, list):
            raise DataError(path, f"frame {frame}: instances is not a list", "give MMPose --save-predictions JSON")
        for p, instance in enumerate(instances):
            kp, sc, ps = _mmpose_instance(instance, path, f"frame {frame}, instance {p}")
            frame_of.append(int(frame))
            keypoints.append(kp)
            scores.append(sc)
            person.append(ps)
    if not frame_of:
        raise DataError(path, "no person in any frame", "check the video and MMPose's output")
    return _instances(path, frames, frame_of, keypoints, scores, person, "coco17", "mmpose", width, height)


RUN_COLUMNS = ("subject", "sequence", "camera", "source")


def _read_parquet(path: Path, where: dict[str, str]) -> Detections:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(path, f"not a readable Parquet file ({err})", "re-export the 2D table") from None
    if table.num_rows == 0:
        raise DataError(path, "the table has no rows", "give a table with one row per frame")
    names = set(table.column_names)
    axes = next((a for a in ("uv", "xy") if set(joint_columns(H36M17, a)) <= names), None)
    if axes is None:
        missing = [c for c in joint_columns(H36M17, "uv") if c not in names]
        raise DataError(path, f"lacks the h36m17 pixel columns ({', '.join(missing[:3])}, ...)",
                        "write the 2D with lifting.data.schema.poses_to_frame(pixels, H36M17, 'uv')")
    keys = [c for c in RUN_COLUMNS if c in names]
    frame = table.select(keys + [c for c in ("width", "height") if c in names]).to_pandas()
    mask = np.ones(table.num_rows, dtype=bool)
    for key, value in where.items():
        if key not in keys:
            raise DataError(path, f"--where names column {key!r}, which the table lacks",
                            f"use one of {', '.join(keys) or 'no key column'}")
        mask &= (frame[key].astype(str) == str(value)).to_numpy()
    if not mask.any():
        raise DataError(path, f"no row matches --where {where}", "check the values (they must match exactly)")
    runs = frame.loc[mask, keys].drop_duplicates() if keys else frame.iloc[:1, :0]
    if len(runs) > 1:
        first = " ".join(f"--where {k}={runs.iloc[0][k]}" for k in keys)
        raise DataError(path, f"holds {len(runs)} runs ({'/'.join(keys)})", f"pick one with --where, e.g. {first}")
    rows = np.flatnonzero(mask)

    def columns(names_: list[str]) -> np.ndarray:  # column by column: no (N, 34) float64 copy
        out = np.empty((len(rows), len(names_)), dtype=np.float32)
        for i, name in enumerate(names_):
            out[:, i] = table.column(name).to_numpy()[rows]
        return out

    pixels = columns(joint_columns(H36M17, axes)).reshape(-1, 17, 2)
    confidence = [f"{n}_c" for n in H36M17.names]
    scores = columns(confidence) if set(confidence) <= names else np.ones(pixels.shape[:2], dtype=np.float32)
    frames = table.column("frame").to_numpy()[rows].astype(np.int64) if "frame" in names else rows.astype(np.int64)
    width, height = _parquet_size(path, table.schema.metadata or {}, frame.loc[mask] if len(frame.columns) else frame,
                                  runs)
    return _instances(path, frames, frames, pixels, scores, scores.mean(axis=1), "h36m17", "parquet", width, height)


def _parquet_size(path: Path, kv: dict, frame, runs) -> tuple[int | None, int | None]:
    """Image size from the table's ``lifting.width/height`` metadata, ``width``/``height`` columns, or
    the ``cameras.parquet`` beside it (our store) for the run's subject and camera."""
    meta = {k.decode(): v.decode() for k, v in kv.items()}
    if f"{METADATA_PREFIX}width" in meta and f"{METADATA_PREFIX}height" in meta:
        return int(meta[f"{METADATA_PREFIX}width"]), int(meta[f"{METADATA_PREFIX}height"])
    if {"width", "height"} <= set(frame.columns):
        return int(frame["width"].iloc[0]), int(frame["height"].iloc[0])
    cameras = path.parent / "cameras.parquet"
    if cameras.exists() and {"subject", "camera"} <= set(runs.columns) and len(runs) == 1:
        table = pq.read_table(cameras).to_pandas()
        row = table[(table["subject"] == runs.iloc[0]["subject"]) & (table["camera"] == runs.iloc[0]["camera"])]
        if len(row):
            return int(row["width"].iloc[0]), int(row["height"].iloc[0])
    return None, None


def _check_finite(detections: Detections) -> None:
    bad = ~np.isfinite(detections.keypoints).all(axis=(1, 2)) | ~np.isfinite(detections.keypoint_scores).all(axis=1)
    if bad.any():
        frame = int(detections.frame_of[np.flatnonzero(bad)[0]])
        raise DataError(detections.source, f"NaN or infinite keypoints in {int(bad.sum())} detections (first: frame "
                                           f"{frame})",
                        "mark a missing keypoint with score 0 (OpenPose: 0, 0, 0) instead of NaN")


def with_image_size(detections: Detections, size: tuple[int, int] | None) -> Detections:
    """``detections`` with the image size ``size`` (W, H) given on the command line, which wins
    over the file's; one clear error when neither says it."""
    if size is not None:
        width, height = (int(v) for v in size)
        if width <= 0 or height <= 0:
            raise DataError(detections.source, f"--image-size {width} {height} is not a positive size",
                            "give the video's width and height in pixels")
        notes = detections.notes
        if detections.width is not None and (detections.width, detections.height) != (width, height):
            notes = (*notes, f"--image-size {width}x{height} overrides the file's {detections.width}x{detections.height}")
        return replace(detections, width=width, height=height, notes=notes)
    if detections.width is None:
        raise DataError(detections.source, "the file does not say the image size",
                        "give the video's size with --image-size W H (pixels)")
    return detections


def check_inside(detections: Detections, margin: float, min_score: float) -> None:
    """Refuse confident keypoints (score >= ``min_score``) more than ``margin`` x the image's width
    or height outside the image: they mean a wrong ``--image-size`` or normalised coordinates.
    Keypoints below ``min_score`` are not checked (they are interpolated anyway)."""
    w, h = detections.width, detections.height
    x, y = detections.keypoints[..., 0], detections.keypoints[..., 1]
    outside = (x < -margin * w) | (x > (1 + margin) * w) | (y < -margin * h) | (y > (1 + margin) * h)
    outside &= detections.keypoint_scores >= min_score
    if outside.any():
        m, k = (int(v[0]) for v in np.nonzero(outside))
        raise DataError(detections.source,
                        f"{int(outside.sum())} confident keypoints lie more than {margin:.0%} outside the {w}x{h} image "
                        f"(first: frame {int(detections.frame_of[m])}, {detections.joint_names[k]} at "
                        f"({x[m, k]:.1f}, {y[m, k]:.1f}))",
                        "give the video's real size with --image-size W H (keypoints must be in pixels), or raise "
                        "--margin")
