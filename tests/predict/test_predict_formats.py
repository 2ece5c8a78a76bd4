"""The four readers, the OpenPose mappings, person following, gap filling and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lifting.errors import DataError
from lifting.predict.formats import (BODY25_TO_COCO17, COCO18_TO_COCO17, check_inside, detect_format,
                                     openpose_to_coco17, read_keypoints, with_image_size)
from lifting.predict.track import fill, follow
from lifting.skeleton import COCO17
from tests.predict.keypoint_files import write_coco, write_mmpose, write_openpose, write_parquet

BODY25_NAMES = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
                "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe",
                "LHeel", "RBigToe", "RSmallToe", "RHeel")
COCO18_NAMES = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip", "RKnee",
                "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar")


def _coco_name(openpose_name: str) -> str:
    side = {"L": "left", "R": "right"}[openpose_name[0]]
    part = {"Eye": "eye", "Ear": "ear", "Shoulder": "shoulder", "Elbow": "elbow", "Wrist": "wrist", "Hip": "hip",
            "Knee": "knee", "Ankle": "ankle"}[openpose_name[1:]]
    return f"{side}_{part}"


@pytest.mark.parametrize("names, mapping", [(BODY25_NAMES, BODY25_TO_COCO17), (COCO18_NAMES, COCO18_TO_COCO17)])
def test_openpose_layouts_map_each_coco_keypoint_from_its_namesake(names, mapping):
    for coco_name, index in zip(COCO17.names, mapping):
        assert coco_name == ("nose" if names[index] == "Nose" else _coco_name(names[index]))
    keypoints = np.arange(len(names) * 3, dtype=float).reshape(len(names), 3)
    assert np.array_equal(openpose_to_coco17(keypoints), keypoints[list(mapping)])


@pytest.fixture
def pixels():
    rng = np.random.default_rng(0)
    return rng.uniform(100, 900, size=(6, 17, 2)).round(3), rng.uniform(0.5, 1.0, size=(6, 17)).round(3)


@pytest.mark.parametrize("fmt", ["coco", "openpose25", "openpose18", "mmpose"])
def test_each_json_format_reads_back_the_coco_keypoints_it_was_written_with(tmp_path, pixels, fmt):
    px, scores = pixels
    path = {"coco": lambda: write_coco(tmp_path / "r.json", pixels=px, scores=scores, first_id=10),
            "openpose25": lambda: write_openpose(tmp_path / "op", px, scores, layout=25),
            "openpose18": lambda: write_openpose(tmp_path / "op", px, scores, layout=18),
            "mmpose": lambda: write_mmpose(tmp_path / "m.json", px, scores)}[fmt]()
    assert detect_format(path) == fmt.rstrip("0123456789")
    det = read_keypoints(path)
    assert det.layout == "coco17" and det.keypoints.dtype == np.float32  # pixels to 1e-4 px up to 4,000 px
    assert np.array_equal(det.keypoints, px.astype(np.float32))
    assert np.array_equal(det.keypoint_scores, scores.astype(np.float32))
    assert list(det.frames) == list(range(10, 16) if fmt == "coco" else range(6))


def test_parquet_reads_h36m17_pixels_and_its_image_size(tmp_path, pixels):
    path = write_parquet(tmp_path / "p.parquet", pixels[0], 1000, 1002)
    det = read_keypoints(path)
    assert detect_format(path) == "parquet" and det.layout == "h36m17"
    assert (det.width, det.height) == (1000, 1002)
    assert np.array_equal(det.keypoints, pixels[0].astype(np.float32))


def _two_people(tmp_path):
    """A walks right (score 0.7); B stands still, scoring 0.9 in the first frame and 0.5 after."""
    base = np.full((17, 2), 100.0) + np.arange(17)[:, None]
    frames = []
    for t in range(5):
        a, b = base + [10.0 * t, 0], base + [400.0, 300.0]
        score_b = 0.9 if t == 0 else 0.5
        frames.append([(t, a, np.full(17, 0.7)), (t, b, np.full(17, score_b))])
    return write_coco(tmp_path / "two.json", frames), base


def test_the_best_person_is_followed_by_nearness_and_person_k_picks_by_order(tmp_path):
    path, base = _two_people(tmp_path)
    det = read_keypoints(path)
    chosen = follow(det)
    assert np.allclose(det.keypoints[chosen][:, 0], base[0] + [400.0, 300.0])  # B, its score fell below A's
    assert np.array_equal(follow(det, person=0), np.arange(0, 10, 2))


def test_gaps_and_weak_keypoints_are_interpolated_linearly_and_flagged(tmp_path):
    px = np.zeros((5, 17, 2)) + np.arange(5)[:, None, None] * 10.0
    scores = np.ones((5, 17))
    scores[2, 3] = 0.1  # one weak keypoint
    det = read_keypoints(write_mmpose(tmp_path / "m.json", px + 7.0, scores, missing=(1,)))
    track = fill(det, follow(det), min_score=0.3)
    assert list(track.detected) == [True, False, True, True, True]
    assert track.filled[1].all() and track.filled[2, 3] and track.filled.sum() == 18
    assert list(track.filled_frames) == [False, True, True, False, False]
    assert np.array_equal(track.pixels, px + 7.0)  # the motion is linear, so filling restores it exactly


def test_leading_gaps_hold_the_first_seen_value(tmp_path):
    px = np.arange(4)[:, None, None] * np.ones((4, 17, 2))
    scores = np.ones((4, 17))
    scores[:2, 0] = 0.0
    det = read_keypoints(write_coco(tmp_path / "c.json", pixels=px, scores=scores))
    assert list(fill(det, follow(det), 0.3).pixels[:, 0, 0]) == [2.0, 2.0, 2.0, 3.0]


def _error(path, match, **kwargs):
    with pytest.raises(DataError, match=match) as err:
        det = read_keypoints(path, **kwargs)
        det = with_image_size(det, None)
        check_inside(det, 0.25, 0.3)
    assert str(path) in str(err.value)


def test_bad_files_give_one_error_naming_the_file(tmp_path, pixels):
    px, scores = pixels
    (tmp_path / "empty.json").write_text("")
    _error(tmp_path / "empty.json", "empty")
    (tmp_path / "bad.json").write_text('[{"image_id": 0, "keypoints": [1, 2')
    _error(tmp_path / "bad.json", "malformed JSON")
    (tmp_path / "twenty.json").write_text(json.dumps([{"image_id": 0, "keypoints": [1.0] * 60, "score": 1}]))
    _error(tmp_path / "twenty.json", "20 keypoints; expected 17")
    (tmp_path / "nan.json").write_text(json.dumps([{"image_id": 0, "keypoints": [float("nan")] * 51, "score": 1}]))
    _error(tmp_path / "nan.json", "NaN")
    _error(write_coco(tmp_path / "c.json", pixels=px, scores=scores), "--image-size")
    (tmp_path / "empty_list.json").write_text("[]")
    _error(tmp_path / "empty_list.json", "no detections")
    _error(tmp_path / "missing.json", "not found")
    (tmp_path / "op").mkdir()
    _error(tmp_path / "op", "no .json files")


def test_openpose_with_21_keypoints_is_refused(tmp_path):
    folder = tmp_path / "op"
    folder.mkdir()
    (folder / "a_000000000000_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 63}]}))
    _error(folder, "21 keypoints; expected 25 or 18")


def test_confident_keypoints_far_outside_the_image_are_refused_weak_ones_are_not(tmp_path, pixels):
    px, scores = pixels
    px = px.copy()
    px[3, 5] = [1400.0, 10.0]  # 40 % beyond the right edge of a 1000 px image
    det = with_image_size(read_keypoints(write_coco(tmp_path / "c.json", pixels=px, scores=scores)), (1000, 800))
    with pytest.raises(DataError, match="frame 3, left_shoulder"):
        check_inside(det, 0.25, 0.3)
    check_inside(det, 0.5, 0.3)
    check_inside(det, 0.25, 0.99)  # below --min-score: interpolated, not checked


def test_a_parquet_table_of_several_runs_asks_for_one(tmp_path, pixels):
    import pandas as pd

    path = write_parquet(tmp_path / "p.parquet", pixels[0])
    frame = pd.read_parquet(path)
    frame["subject"] = ["S1"] * 3 + ["S9"] * 3
    frame.to_parquet(path)
    with pytest.raises(DataError, match="holds 2 runs.*--where subject=S1"):
        read_keypoints(path)
    assert len(read_keypoints(path, where={"subject": "S9"}).frames) == 3


def test_the_cli_ends_bad_input_with_one_line_and_writes_nothing(tmp_path, capsys):
    from lifting.predict.__main__ import main

    (tmp_path / "bad.json").write_text("{not json")
    out = tmp_path / "out" / "x.parquet"
    assert main([str(tmp_path / "bad.json"), "--run", "knn-gt", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'bad.json'}: malformed JSON") and "Fix:" in err[0]
    assert not out.parent.exists()
