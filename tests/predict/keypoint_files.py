"""Keypoint files in the four input formats, written in code from known 3D.

A known h36m17 body (camera frame, mm) is projected through a :class:`lifting.geometry.Camera`.
For the COCO-style formats its 17 COCO keypoints are derived from the body (:func:`coco_body`):

* nose = the h36m17 Nose joint;
* eyes = the Head joint +- 32 mm along the shoulder line (so their midpoint, which
  ``coco17_to_h36m17`` takes as the head, as MMPose does, is exactly the Head joint);
* ears = 40 % of the way from the Head joint back from the Nose joint, +- 70 mm along the
  shoulder line (the h36m17 body has no ears; no converter here uses them);
* shoulders, elbows, wrists, knees, ankles = the same joints;
* hips = the h36m17 hips raised by ``hip_raise_mm`` along the pelvis -> thorax direction: COCO
  annotators mark the hip at the top of the thigh, above the hip-joint centre Human3.6M's mocap
  gives (methods.md §12). The 40 mm default is an assumed size of that bias, not a measured one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lifting.data.schema import poses_to_frame
from lifting.predict.formats import BODY25_TO_COCO17, COCO18_TO_COCO17
from lifting.skeleton import COCO17, H36M17

HIP_RAISE_MM = 40.0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def coco_body(body_mm: np.ndarray, hip_raise_mm: float = HIP_RAISE_MM) -> np.ndarray:
    """(T, 17, 3) h36m17 camera-frame mm -> (T, 17, 3) the COCO-17 keypoints of that body (module doc)."""
    j = {name: body_mm[:, i] for i, name in enumerate(H36M17.names)}
    across = _unit(j["LShoulder"] - j["RShoulder"])
    up = _unit(j["Thorax"] - j["Hip"])
    ears = j["Head"] - 0.4 * (j["Nose"] - j["Head"])
    coco = {"nose": j["Nose"], "left_eye": j["Head"] + 32 * across, "right_eye": j["Head"] - 32 * across,
            "left_ear": ears + 70 * across, "right_ear": ears - 70 * across,
            "left_hip": j["LHip"] + hip_raise_mm * up, "right_hip": j["RHip"] + hip_raise_mm * up}
    for side, name in (("left", "L"), ("right", "R")):
        coco.update({f"{side}_shoulder": j[f"{name}Shoulder"], f"{side}_elbow": j[f"{name}Elbow"],
                     f"{side}_wrist": j[f"{name}Wrist"], f"{side}_knee": j[f"{name}Knee"],
                     f"{side}_ankle": j[f"{name}Foot"]})
    return np.stack([coco[name] for name in COCO17.names], axis=1)


def _triples(pixels: np.ndarray, scores: np.ndarray) -> list[float]:
    return np.concatenate([pixels, scores[:, None]], axis=1).ravel().tolist()


def write_coco(path: Path, people: list[list[tuple[int, np.ndarray, np.ndarray]]] | None = None, *,
               pixels: np.ndarray | None = None, scores: np.ndarray | None = None, first_id: int = 0) -> Path:
    """COCO keypoint results: one record per (image_id, person). Either ``pixels`` (T, 17, 2) (one
    person per frame, image ids ``first_id`` ..) or ``people``: per frame, (image_id, (17, 2), (17,))."""
    if people is None:
        scores = np.ones(pixels.shape[:2]) if scores is None else scores
        people = [[(first_id + t, pixels[t], scores[t])] for t in range(len(pixels))]
    records = [{"image_id": image_id, "category_id": 1, "keypoints": _triples(p, s), "score": float(s.mean())}
               for frame in people for image_id, p, s in frame]
    path.write_text(json.dumps(records))
    return path


def openpose_keypoints(coco_px: np.ndarray, scores: np.ndarray, layout: int) -> np.ndarray:
    """(17, 2) COCO-17 pixels + scores -> (25 or 18, 3) OpenPose triples (neck and mid-hip as the
    midpoints of shoulders and hips; feet missing: 0, 0, 0)."""
    mapping = BODY25_TO_COCO17 if layout == 25 else COCO18_TO_COCO17
    out = np.zeros((layout, 3))
    out[list(mapping), :2] = coco_px
    out[list(mapping), 2] = scores
    out[1] = [*(0.5 * (coco_px[5] + coco_px[6])), 1.0]  # neck
    if layout == 25:
        out[8] = [*(0.5 * (coco_px[11] + coco_px[12])), 1.0]  # mid-hip
    return out


def write_openpose(folder: Path, coco_px: np.ndarray, scores: np.ndarray | None = None, layout: int = 25,
                   extra: dict[int, list[np.ndarray]] | None = None) -> Path:
    """One ``clip_<frame:012d>_keypoints.json`` per frame; ``extra``: more people (17, 2) per frame."""
    folder.mkdir(parents=True, exist_ok=True)
    scores = np.ones(coco_px.shape[:2]) if scores is None else scores
    for t in range(len(coco_px)):
        people = [coco_px[t], *((extra or {}).get(t, []))]
        body = [{"person_id": [-1], "pose_keypoints_2d":
                 openpose_keypoints(p, scores[t] if i == 0 else np.ones(17), layout).ravel().tolist()}
                for i, p in enumerate(people)]
        (folder / f"clip_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": body}))
    return folder


def write_mmpose(path: Path, coco_px: np.ndarray, scores: np.ndarray | None = None, missing: tuple[int, ...] = ()) -> Path:
    """MMPose ``--save-predictions`` of a video: frames in ``missing`` hold no instance."""
    scores = np.ones(coco_px.shape[:2]) if scores is None else scores
    info = [{"frame_id": t, "instances": [] if t in missing else [
        {"keypoints": coco_px[t].tolist(), "keypoint_scores": scores[t].tolist(),
         "bbox": [[*coco_px[t].min(0).tolist(), *coco_px[t].max(0).tolist()]], "bbox_score": 0.9}]}
        for t in range(len(coco_px))]
    path.write_text(json.dumps({"meta_info": {"dataset_name": "coco"}, "instance_info": info}))
    return path


def write_parquet(path: Path, pixels_h36m17: np.ndarray, width: int | None = None, height: int | None = None) -> Path:
    """Our 2D table: ``frame`` and the h36m17 ``_u/_v`` pixel columns (lifting.data.schema); the
    image size as ``lifting.width/height`` metadata when given."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = poses_to_frame(pixels_h36m17, H36M17, "uv")
    frame.insert(0, "frame", np.arange(len(pixels_h36m17)))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if width is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"lifting.width": str(width).encode(),
                                               b"lifting.height": str(height).encode()})
    pq.write_table(table, path)
    return path
