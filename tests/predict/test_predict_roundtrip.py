"""Known 3D -> 2D files -> ``python -m lifting.predict`` -> 3D, with tiny runs trained as the pipeline does.

The known 3D is one test run of the embedded data (S9, its first sequence, one camera): world joints
through that camera's :class:`~lifting.geometry.Camera` (distortion included) to pixels. The runs
are trained on S1 with :func:`lifting.runner.train_method`, as tests/test_runner_temporal.py does:
a tiny Martinez MLP (64 wide, one block; seeds 0 and 1), a tiny VideoPose3D (widths 3, 3: 9
frames, 16 channels) and the nearest-neighbour floor on 16 joints.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lifting.data.split import Protocol, load_split
from lifting.data.schema import cameras_from_frame, poses_from_frame
from lifting.errors import DataError
from lifting.geometry import normalize_screen_coordinates
from lifting.models import knn, simple_baseline, videopose3d
from lifting.predict.__main__ import main
from lifting.predict.output import read_predictions
from lifting.predict.run import lift, load_run
from lifting.runner import RunSettings, load_method, train_method
from lifting.skeleton import H36M17, h36m17_to_h36m16
from tests.predict.keypoint_files import coco_body, write_coco, write_mmpose, write_openpose, write_parquet

SETTINGS = RunSettings(seeds=(0, 1), threads=1, max_epochs=4, batch_size=128, train_stride=2, lr_scale=3.0,
                       decay="cosine", warmup=0.0, bf16_cpu=False, curve_points=0, curve_test_stride=50,
                       val_fraction=0.1, checkpoint="last")


@pytest.fixture(scope="module")
def runs(aligned_s1_s9, tmp_path_factory):
    """{name: model.pt} of three tiny runs, in a checkpoints folder laid out as the pipeline's."""
    root = tmp_path_factory.mktemp("checkpoints")
    data = load_split(aligned_s1_s9, "gt", "h36m17", Protocol())
    train_method("simple_baseline", simple_baseline.Config(hidden=64, num_blocks=1, dropout=0.0), "gt", data, SETTINGS,
                 root / "simple_baseline-gt", root / "sb.csv", snapshot={}, progress=False)
    one_seed = RunSettings(**{**SETTINGS.__dict__, "seeds": (0,)})
    train_method("videopose3d", videopose3d.Config(filter_widths=(3, 3), channels=16, dropout=0.0), "gt", data, one_seed,
                 root / "videopose3d-gt", root / "vp.csv", snapshot={}, progress=False)
    data16 = load_split(aligned_s1_s9, "gt", "h36m16", Protocol())
    train_method("knn", knn.Config(), "gt", data16, one_seed, root / "knn16-gt", root / "knn.csv", snapshot={},
                 progress=False)
    return root


@pytest.fixture(scope="module")
def known(embedded_tables):
    """A test run's truth: (pixels (T, 17, 2), root-relative camera-frame mm (T, 17, 3), camera)."""
    poses3d = embedded_tables.poses3d
    sequence = sorted(poses3d.loc[poses3d["subject"] == "S9", "sequence"].unique())[0]
    rows = poses3d[(poses3d["subject"] == "S9") & (poses3d["sequence"] == sequence)].sort_values("frame")
    camera = [c for (s, _), c in cameras_from_frame(embedded_tables.cameras).items() if s == "S9"][0]
    body = camera.world_to_camera(poses_from_frame(rows, H36M17, "xyz").astype(np.float64))
    return camera.project(body), body - body[:, :1], camera, body


def _lift(tmp_path, path, run, checkpoints, camera, *extra):
    out = tmp_path / "out" / f"{path.name}.{run}.parquet"
    assert main([str(path), "--run", run, "--checkpoints", str(checkpoints), "--out", str(out),
                 "--image-size", str(camera.width), str(camera.height), "--fps", "50", *extra]) == 0
    return read_predictions(out)[1]


def _mpjpe(a, b):
    return float(np.linalg.norm(a - b, axis=-1).mean())


@pytest.mark.parametrize("run, seed", [("simple_baseline-gt", None), ("simple_baseline-gt", "1"),
                                       ("videopose3d-gt", None)])
def test_h36m_input_gives_exactly_what_the_predictor_gives(tmp_path, runs, known, run, seed):
    pixels, truth, camera, _ = known
    path = write_parquet(tmp_path / "known.parquet", pixels.astype(np.float32))
    lifted = _lift(tmp_path, path, run, runs, camera, *(["--seed", seed] if seed else []))
    saved, predictors = load_method(runs / run / "model.pt")
    inputs = normalize_screen_coordinates(pixels.astype(np.float32).astype(np.float64), camera.width, camera.height)
    meta = {"subject": "x", "action": "x", "sequence": "x", "camera": "x"}
    if saved.input_spec["temporal"]:
        import pandas as pd

        meta = pd.DataFrame({**meta, "frame": np.arange(len(inputs))})
    direct = [p(inputs.astype(np.float32), meta) for p in predictors]
    expected = direct[int(seed)] if seed else (direct[0].astype(np.float64) + direct[1]) / 2 if len(direct) == 2 \
        else direct[0]
    assert np.array_equal(lifted, np.asarray(expected, dtype=np.float32))
    print(f"{run} seed {seed}: {_mpjpe(lifted, truth):.1f} mm from the truth")
    assert _mpjpe(lifted, truth) < 300  # mm: the tiny run's own error (four epochs), not the tool's


def test_coco_input_is_within_a_stated_bound_of_the_h36m_input(tmp_path, runs, known):
    """COCO keypoints derived from the same body (tests/predict/keypoint_files.py) differ from its
    h36m17 joints in pelvis, spine and thorax (midpoints, not the mocap's joints) and in the hips
    (raised 40 mm). Measured on this run (tiny MLP, 64 frames): 15.5 mm MPJPE between the COCO-input
    and the h36m-input predictions with the 40 mm raise, 6.9 mm without it (the mapping alone);
    the h36m input is 131.9 mm from the truth (the tiny run's own error), the COCO input 135.8 mm."""
    pixels, truth, camera, body = known
    h36m = _lift(tmp_path, write_parquet(tmp_path / "known.parquet", pixels), "simple_baseline-gt", runs, camera)
    errors = {}
    for raise_mm in (40.0, 0.0):
        coco = camera.project(coco_body(body, raise_mm))
        path = write_coco(tmp_path / f"coco{raise_mm:g}.json", pixels=coco)
        lifted = _lift(tmp_path, path, "simple_baseline-gt", runs, camera)
        errors[raise_mm] = _mpjpe(lifted, h36m)
        errors[f"truth{raise_mm:g}"] = _mpjpe(lifted, truth)
    print(f"COCO vs h36m input: {errors[40.0]:.1f} mm (hips raised 40 mm), {errors[0.0]:.1f} mm (mapping only); "
          f"h36m input vs truth {_mpjpe(h36m, truth):.1f} mm, COCO input vs truth {errors['truth40']:.1f} mm")
    assert errors[0.0] < errors[40.0] < 25.0
    assert errors[0.0] < 10.0


@pytest.mark.parametrize("writer", ["openpose", "mmpose"])
def test_openpose_and_mmpose_of_the_same_body_give_the_coco_result(tmp_path, runs, known, writer):
    pixels, _, camera, body = known
    coco = camera.project(coco_body(body))
    reference = _lift(tmp_path, write_coco(tmp_path / "c.json", pixels=coco), "videopose3d-gt", runs, camera)
    path = write_openpose(tmp_path / "op", coco) if writer == "openpose" else write_mmpose(tmp_path / "m.json", coco)
    assert np.array_equal(_lift(tmp_path, path, "videopose3d-gt", runs, camera), reference)


def test_a_temporal_run_in_overlapping_chunks_equals_one_pass(runs, known):
    pixels, _, camera, _ = known
    run = load_run("videopose3d-gt", checkpoints=runs)
    whole = np.concatenate([p for _, p in lift(run, pixels, camera.width, camera.height)])
    chunked = np.concatenate([p for _, p in lift(run, pixels, camera.width, camera.height, chunk=7)])
    assert run.field == 9 and np.allclose(chunked, whole, atol=1e-3)


def test_a_track_shorter_than_the_window_is_edge_padded(tmp_path, runs, known):
    pixels, _, camera, _ = known
    lifted = _lift(tmp_path, write_parquet(tmp_path / "short.parquet", pixels[:3]), "videopose3d-gt", runs, camera)
    assert lifted.shape == (3, 17, 3) and np.isfinite(lifted).all()


def test_a_16_joint_run_lifts_h36m17_input_to_16_joints(tmp_path, runs, known):
    pixels, truth, camera, _ = known
    lifted = _lift(tmp_path, write_parquet(tmp_path / "k.parquet", pixels), "knn16-gt", runs, camera)
    assert lifted.shape == (len(pixels), 16, 3)
    assert _mpjpe(lifted, h36m17_to_h36m16(truth)) < 150


def _refused(tmp_path, args, match):
    out = tmp_path / "refused"
    with pytest.raises(DataError, match=match):
        from lifting.predict.pipeline import Request, predict

        predict(Request(out=out / "x.parquet", **args))
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_bad_runs_are_refused_before_anything_is_written(tmp_path, runs, known):
    pixels, _, camera, _ = known
    path = write_parquet(tmp_path / "k.parquet", pixels, camera.width, camera.height)
    _refused(tmp_path, {"input": path, "run": "nope-gt", "checkpoints": runs}, "no trained run 'nope-gt'.*knn16-gt")
    saved = torch.load(runs / "simple_baseline-gt" / "model.pt", weights_only=True)
    for change, match in ((lambda s: s.update(joint_set="coco17"), "joint set 'coco17'"),
                          (lambda s: s["input_spec"].update(images=True), "needs the video frames")):
        copy = {**saved, "input_spec": dict(saved["input_spec"])}
        change(copy)
        (tmp_path / "other").mkdir(exist_ok=True)
        torch.save(copy, tmp_path / "other" / "model.pt")
        _refused(tmp_path, {"input": path, "model": tmp_path / "other" / "model.pt"}, match)
    _refused(tmp_path, {"input": path, "run": "simple_baseline-gt", "checkpoints": runs, "seed": 7}, "no seed 7")
    _refused(tmp_path, {"input": path, "run": "simple_baseline-gt", "checkpoints": runs, "png_frames": (10_000,)},
             "--png asks for frames")


def test_pictures_and_bvh_are_written_beside_the_parquet(tmp_path, runs, known):
    pixels, _, camera, body = known
    coco = camera.project(coco_body(body))
    scores = np.ones(coco.shape[:2])
    scores[5:8] = 0.0  # three frames without a confident keypoint: filled, flagged
    path = write_mmpose(tmp_path / "m.json", coco, scores)
    out = tmp_path / "out" / "walk.parquet"
    assert main([str(path), "--run", "videopose3d-gt", "--checkpoints", str(runs), "--out", str(out), "--image-size",
                 str(camera.width), str(camera.height), "--fps", "25", "--png", "0,6", "--gif",
                 "--bvh", str(tmp_path / "out" / "walk.bvh")]) == 0
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert out.with_suffix(".gif").read_bytes()[:6] == b"GIF89a"
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["track"]["frames_filled"] == 3 and "NOT resampled" in summary["input"]["fps_note"]
    assert summary["bvh"]["fk_vs_lifted_mm"]["mean"] < 50
    assert (tmp_path / "out" / "walk.bvh").read_text().startswith("HIERARCHY\nROOT Hip")
    import pandas as pd

    flags = pd.read_parquet(out)[["frame", "detected", "filled", "filled_keypoints"]]
    assert list(flags["filled"][4:9]) == [False, True, True, True, False]
    assert list(flags["filled_keypoints"][5:8]) == [17, 17, 17] and flags["detected"].all()
    assert sorted(p.name for p in out.parent.iterdir()) == ["walk.bvh", "walk.gif", "walk.json", "walk.parquet",
                                                            "walk.png"]
