"""Every bad input a hostile but fair user tried gets one clear error and changes no output.

A small workspace (tiny Human3.6M-format files, fetched, normalised, aligned, a k-NN trained and
scored by the stages themselves) is built once; each case copies it, spoils one thing (a param, a
file, the disk), runs one stage's ``main`` and checks: the error is the project's own (so
``stages.common.run`` prints it as one line), its message holds the expected fragment, and no file
of the workspace's outputs changed. The key-by-key check that every stage declares what it reads
is tests/test_stage_params.py.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import logging
import os
import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from lifting import train
from lifting.config import ParamsError
from lifting.data.store import read_store
from lifting.data.surface import smpl
from lifting.detector import DetectorSettings, load_detector, save_detector
from lifting.data.safe_npz import load_npz
from lifting.errors import DataError
from lifting.models import METHOD_NAMES
from lifting.images.video import video_path
from lifting.models.hrnet import PAPER_CONFIGS, HRNet
from lifting.run_file import FORMAT
from tests.data.h36m_fixtures import SEQUENCES, write_2d, write_3d, write_h36m_fixture
from tests.data.surface.smpl_fixtures import write_model

REPO = Path(__file__).resolve().parents[1]
ARGV = {
    "check_params": [],
    "fetch": ["--out", "raw"],
    "normalize": ["--raw", "raw", "--out", "parquet"],
    "align": ["--store", "parquet", "--out", "aligned"],
    "train": ["--method", "knn", "--input2d", "gt", "--aligned", "aligned", "--out", "checkpoints/knn-gt",
              "--log", "train-knn-gt.csv"],
    "train_mlp": ["--method", "simple_baseline", "--input2d", "gt", "--aligned", "aligned",
                  "--out", "checkpoints/mlp-gt", "--log", "train-mlp-gt.csv"],
    "train_gridconv": ["--method", "gridconv", "--set", "sgt=learnable", "--input2d", "gt", "--aligned", "aligned",
                       "--out", "checkpoints/gridconv-gt", "--log", "train-gridconv-gt.csv"],
    "evaluate": ["--model", "checkpoints/knn-gt/model.pt", "--input2d", "gt", "--aligned", "aligned",
                 "--metrics", "metrics.json", "--predictions", "predictions.parquet"],
    "render": ["--raw", "raw", "--store", "parquet", "--out", "images"],
    "train_detector": ["--images", "images", "--store", "parquet", "--out", "detector", "--log", "detector.csv"],
    "detect2d": ["--images", "images", "--detector", "detector/model.pt", "--store", "parquet", "--out", "detected",
                 "--metrics", "detector.json"],
}
#: What the workspace's stages wrote: no case may change any of it.
OUTPUTS = ["raw", "parquet", "aligned", "checkpoints", "metrics.json", "predictions.parquet", "train-knn-gt.csv",
           "videos", "images", "detector", "detector.csv", "detected", "detector.json"]
#: The image chain at a tiny size: 32 x 32 crops of 64 x 64 videos, a 4-wide detector for one epoch.
TINY_IMAGES = {"data.inputs2d": ["gt", "detected"], "data.h36m_videos": "videos", "render.width": 32,
               "render.height": 32, "detector.width": 4, "detector.stem_width": 8, "detector.epochs": 1,
               "detector.train_stride": 1, "detector.flip_test": False}


def run_stage(name: str) -> None:
    module = importlib.import_module(f"stages.{name.removesuffix('_mlp').removesuffix('_gridconv')}")
    module.main(["--params", "params.yaml", *ARGV[name]])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("workspace")
    write_h36m_fixture(root / "h36m", sources=("gt",))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(source="h36m", h36m_dir="h36m", download=False, inputs2d=["gt"], train_subjects=["S1"],
                          test_subjects=["S9", "S11"])
    params["runs"] = {method: [i for i in inputs if i == "gt"] for method, inputs in params["runs"].items()}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for stage in ("fetch", "normalize", "align", "train", "evaluate"):
            run_stage(stage)
    finally:
        os.chdir(cwd)
    return root


def write_videos(root: Path) -> None:
    """One 64 x 64 video per sequence and camera of the workspace's store, a frame per 3D pose
    (grey noise: the geometry does not matter to these cases)."""
    tables = read_store(root / "parquet", "h36m")
    rng = np.random.default_rng(0)
    for (subject, sequence), rows in tables.poses3d.groupby(["subject", "sequence"]):
        for camera in tables.cameras.loc[tables.cameras["subject"] == subject, "camera"]:
            write_video(video_path(root / "videos", subject, sequence, camera),
                        rng.integers(0, 255, (int(rows["frame"].max()) + 1, 64, 64, 3), dtype=np.uint8))


def write_video(path: Path, frames: np.ndarray) -> None:
    """(T, H, W, 3) uint8 RGB frames -> an MPEG-4 file at 50 fps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=50)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def image_workspace(workspace, tmp_path_factory) -> Path:
    """The workspace with videos and the image chain run on them (render, train_detector, detect2d)."""
    root = tmp_path_factory.mktemp("images") / "workspace"
    shutil.copytree(workspace, root)
    write_videos(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for key, value in TINY_IMAGES.items():
        _set(params, key, value)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for stage in ("fetch", "normalize", "render", "train_detector", "detect2d"):  # `detected` has no file to fetch
            run_stage(stage)
        importlib.import_module("stages.align").main(["--params", "params.yaml", *ARGV["align"], "--detected", "detected"])
    finally:
        os.chdir(cwd)
    return root


def _digests(root: Path) -> dict[str, str]:
    found = {}
    for name in OUTPUTS:
        path = root / name
        if not path.exists():
            continue
        for file in ([path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())):
            found[str(file.relative_to(root))] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def _set(params: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for part in parents:
        params = params.setdefault(part, {})
    params[last] = value


def _params(**changes):
    def spoil(root: Path, monkeypatch) -> None:
        params = yaml.safe_load((root / "params.yaml").read_text())
        for key, value in changes.items():
            _set(params, key.replace("__", "."), value)
        (root / "params.yaml").write_text(yaml.safe_dump(params))
    return spoil


def _flip_a_data_page_byte(root: Path, monkeypatch) -> None:
    path = root / "aligned" / "targets.parquet"
    column = pq.ParquetFile(path).metadata.row_group(0).column(10)  # a joint coordinate column
    offset = column.data_page_offset + column.total_compressed_size // 2  # inside the page body
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x04
    path.write_bytes(bytes(data))


def _positions_in_mm(root: Path, monkeypatch) -> None:
    positions = load_npz(root / "h36m" / "data_3d_h36m.npz")["positions_3d"]
    write_3d(root / "h36m", {s: {q: p * 1000.0 for q, p in seqs.items()} for s, seqs in positions.items()})
    shutil.rmtree(root / "raw" / "h36m")  # a fresh fetch of the user's new file (fetch itself is not watched)


def _in_the_2d_file(value: float):
    """``value`` (NaN, infinity) at one joint of one frame of the user's ground-truth 2D file."""
    def spoil(root: Path, monkeypatch) -> None:
        positions = load_npz(root / "h36m" / "data_2d_h36m_gt.npz")["positions_2d"]
        positions["S1"]["Directions"][0][1, 3, 0] = value
        write_2d(root / "h36m", "gt", positions)
        shutil.rmtree(root / "raw" / "h36m")
    return spoil


def _smpl_dir(model: str | None, fits_subject: int | None = None):
    """``data.smpl_dir: smpl`` holding ``model`` ("plain": the test model, "objects": an npz with an
    object array, None: no model) and a fits file of ``fits_subject`` (no sequence of the 3D)."""
    def spoil(root: Path, monkeypatch) -> None:
        folder = root / "smpl"
        folder.mkdir()
        if model == "plain":
            write_model(folder / smpl.MODEL_FILE)
        elif model == "objects":
            np.savez(folder / smpl.MODEL_FILE, v_template=np.array([{"x": 1}], dtype=object))
        if fits_subject is not None:
            (folder / f"Human36M_subject{fits_subject}_smpl_param.json").write_text(json.dumps(
                {"2": {"1": {"0": {"pose": [0.0] * 72, "shape": [0.0] * 10, "trans": [0.0, 0.0, 0.9]}}}}))
        _params(data__smpl_dir="smpl")(root, monkeypatch)
        shutil.rmtree(root / "raw" / "h36m")
    return spoil


def _corrupt_deflate_start(root: Path, monkeypatch) -> None:
    """Garbage at the start of the deflate stream of the 3D archive's member."""
    import zipfile

    path = root / "h36m" / "data_3d_h36m.npz"
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[0]
    data = bytearray(path.read_bytes())
    name_length, extra_length = (int.from_bytes(data[info.header_offset + i:info.header_offset + i + 2], "little")
                                 for i in (26, 28))
    start = info.header_offset + 30 + name_length + extra_length
    data[start:start + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    shutil.rmtree(root / "raw" / "h36m")


def _os_error_from(target: str, code: int):
    """Calling ``target`` (a dotted name) raises ``OSError(code)``: a full disk (ENOSPC) or a
    read-only folder (EROFS) met by that writer."""
    def spoil(root: Path, monkeypatch) -> None:
        def fail(*args, **kwargs):
            raise OSError(code, os.strerror(code))
        monkeypatch.setattr(target, fail)
    return spoil


_disk_full_on_parquet = _os_error_from("lifting.data.schema.pq.ParquetWriter.write_table", errno.ENOSPC)


def _torch_writer_fails(root: Path, monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . PytorchStreamWriter failed writing file")
    monkeypatch.setattr("lifting.run_file.torch.save", fail)


def _model_file(content: dict | object):
    def spoil(root: Path, monkeypatch) -> None:
        torch.save(content, root / "checkpoints" / "knn-gt" / "model.pt")
    return spoil


def _replace_video(frames: int | None):
    """S1 Directions' first camera: a video of ``frames`` frames (fewer than its 3D), or junk (None)."""
    def spoil(root: Path, monkeypatch) -> None:
        path = sorted((root / "videos" / "S1" / "Videos").glob("Directions.*.mp4"))[0]
        if frames is None:
            path.write_bytes(b"not a video")
        else:
            write_video(path, np.zeros((frames, 64, 64, 3), np.uint8))
    return spoil


def _detector_checkpoint(content):
    """``detector.checkpoint`` pointing at a file of ``content``: bytes, a torch-saved object, or a
    callable that writes the file."""
    def spoil(root: Path, monkeypatch) -> None:
        path = root / "user.pth"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif callable(content):
            content(root, path)
        else:
            torch.save(content, path)
        _params(detector__checkpoint="user.pth")(root, monkeypatch)
    return spoil


def _truncated_copy_of_the_detector(root: Path, path: Path) -> None:
    data = (root / "detector" / "model.pt").read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _the_workspace_detector(root: Path, path: Path) -> None:
    """Our own 4-wide detector given as an official checkpoint (another width than W32 and W48)."""
    shutil.copy(root / "detector" / "model.pt", path)


def _w32_with_renamed_keys(root: Path, path: Path) -> None:
    state = HRNet(PAPER_CONFIGS["w32"]).state_dict()
    torch.save({k.replace("stage4", "stage_four"): v for k, v in state.items()}, path)


def _detector_for_other_crops(root: Path, monkeypatch) -> None:
    model, saved = load_detector(root / "detector" / "model.pt")
    save_detector(root / "detector" / "model.pt", model, (48, 64), saved["record"],
                  DetectorSettings(**{**saved["settings"], "stage_modules": tuple(saved["settings"]["stage_modules"])}))


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


#: (case, stage, spoil, error type, message fragment); the outputs the spoiling itself replaces
#: (a model.pt, a flipped byte) are compared after the spoiling.
CASES = [
    ("batch_size_negative", "train", _params(budget__batch_size=-5), ParamsError, "budget.batch_size must be >= 1"),
    ("batch_size_zero", "train", _params(budget__batch_size=0), ParamsError, "budget.batch_size must be >= 1"),
    ("train_subject_unknown", "align", _params(data__train_subjects=["S99"]), ParamsError,
     "data.train_subjects: ['S99'] not in the data"),
    ("train_subjects_empty", "align", _params(data__train_subjects=[]), ParamsError, "data.train_subjects is empty"),
    ("test_subjects_empty", "align", _params(data__test_subjects=[]), ParamsError, "data.test_subjects is empty"),
    ("test_subjects_empty_at_evaluate", "evaluate", _params(data__test_subjects=[]), ParamsError,
     "data.test_subjects is empty"),
    # a stage refuses unknown keys in its own method's section; the rest of params.yaml is check_params' (the
    # gate every stage depends on), so a stage need not import every method to know their keys
    ("unknown_key_in_the_methods_section", "train_gridconv", _params(model__gridconv__dropot=0.1), ParamsError,
     "model.gridconv: unknown key(s) ['dropot']"),
    ("unknown_key_no_stage_reads", "check_params", _params(model__paddin="c"), ParamsError,
     "unknown key model.paddin (did you mean model.padding?)"),
    ("bad_value_no_stage_reads_yet", "check_params", _params(model__gridconv__dropout=2.0), ParamsError,
     "dropout must be in [0, 1)"),
    ("crop_below_the_stride", "check_params", _params(render__width=16), ParamsError,
     "render.width and render.height must be multiples of 16 and at least 32"),
    ("crop_odd_size", "check_params", _params(render__height=100), ParamsError,
     "render.width and render.height must be multiples of 16"),
    ("crop_zero", "check_params", _params(render__width=0), ParamsError,
     "render.width and render.height must be multiples of 16 and at least 32"),
    ("detector_width_negative", "check_params", _params(detector__width=-4), ParamsError,
     "detector.width must be at least 1, got -4"),
    ("render_body_unknown", "check_params", _params(render__body="robot"), ParamsError,
     "render.body: expected one of ['mannequin', 'marked', 'person']"),
    ("detector_epochs_zero", "check_params", _params(detector__epochs=0), ParamsError,
     "detector.epochs must be at least 1, got 0"),
    ("detector_train_stride_negative", "check_params", _params(detector__train_stride=-2), ParamsError,
     "detector.train_stride must be at least 1, got -2"),
    ("detector_rotation_too_large", "check_params", _params(detector__rotation=400), ParamsError,
     "detector.rotation must lie in [0, 90] degrees"),
    ("string_for_a_number", "train", _params(budget__batch_size="abc"), ParamsError,
     "budget.batch_size: expected int, got 'abc'"),
    ("list_for_a_scalar", "train", _params(budget__lr_scale=[1, 2]), ParamsError,
     "budget.lr_scale: expected float, got [1, 2]"),
    ("null_for_a_number", "train", _params(train__threads=None), ParamsError, "train.threads: expected int, got None"),
    ("null_for_a_list", "train", _params(train__seeds=None), ParamsError, "train.seeds: expected a list, got None"),
    ("train_stride_longer_than_every_sequence", "train_mlp", _params(budget__simple_baseline__train_stride=100000),
     ParamsError, "the budget's train_stride is 100000, not below the longest training sequence (8 frames)"),
    ("2d_source_without_a_file", "fetch", _params(data__inputs2d=["gt", "nope"]), DataError,
     "h36m/data_2d_h36m_nope.npz: file not found. Fix: place data_2d_h36m_nope.npz in h36m"),
    ("public_2d_source_not_downloaded", "fetch", _params(data__inputs2d=["gt", "cpn_ft_h36m_dbb"]), DataError,
     "or set data.download: true"),
    ("embedded_only_2d_source_for_h36m", "fetch", _params(data__inputs2d=["gt", "noisy"]), DataError,
     "h36m/data_2d_h36m_noisy.npz: file not found"),
    ("h36m_only_2d_source_for_embedded", "check_params", _params(data__source="embedded", data__inputs2d=["cpn"]),
     ParamsError, "the embedded data has 2D sources gt, noisy and detected"),
    ("runs_all_empty", "check_params", _params(runs={m: [] for m in METHOD_NAMES}), ParamsError,
     "runs: no method has a 2D input"),
    ("runs_a_name_not_a_list", "check_params", _params(runs__knn="gt"), ParamsError,
     "runs.knn must be a list of names in brackets ([a, b]), got 'gt'"),
    ("runs_of_an_unknown_method", "check_params", _params(runs__hgnn=["gt"]), ParamsError,
     "unknown key runs.hgnn (did you mean runs.hgn?)"),
    ("nan_in_a_2d_file", "normalize", _in_the_2d_file(float("nan")), DataError,
     "h36m/data_2d_h36m_gt.npz: S1/Directions camera 54138969: NaN or infinite values in 1 frame(s), first at frame 1"),
    ("infinity_in_a_2d_file", "normalize", _in_the_2d_file(float("inf")), DataError,
     "NaN or infinite values in 1 frame(s)"),
    ("smpl_dir_missing", "fetch", _params(data__smpl_dir="no/such/folder"), DataError,
     "no/such/folder: no such folder. Fix: set data.smpl_dir to the folder with SMPL_NEUTRAL.npz"),
    ("smpl_dir_without_the_model", "fetch", _smpl_dir(None, fits_subject=1), DataError,
     "smpl/SMPL_NEUTRAL.npz: not found"),
    ("smpl_model_with_object_arrays", "normalize", _smpl_dir("objects", fits_subject=1), DataError,
     "SMPL_NEUTRAL.npz: not a plain-array .npz"),
    ("smpl_fits_of_other_subjects", "normalize", _smpl_dir("plain", fits_subject=5), DataError,
     "no SMPL fit matches a sequence of the 3D data"),
    ("bit_flip_in_targets", "evaluate", _flip_a_data_page_byte, DataError, "CRC checksum verification failed"),
    ("3d_in_millimetres", "normalize", _positions_in_mm, DataError, "it seems to be in millimetres"),
    ("threads_zero", "train", _params(train__threads=0), ParamsError, "train.threads must be >= 1, got 0"),
    ("seed_negative", "train", _params(train__seeds=[-1]), ParamsError, "train.seeds must be distinct integers >= 0"),
    ("dropout_above_one", "train_mlp", _params(model__simple_baseline__dropout=1.5), ParamsError,
     "model.simple_baseline: dropout is a probability in [0, 1), got 1.5"),
    ("knn_k_zero", "train", _params(model__knn__k=0), ParamsError, "model.knn: k (neighbours averaged per query) must"),
    ("lr_scale_negative", "train", _params(budget__lr_scale=-1), ParamsError, "budget.lr_scale must be > 0, got -1"),
    ("padding_unknown", "train_gridconv", _params(model__padding="q"), ParamsError,
     "model.padding: unknown GridConv padding 'q'"),
    ("corrupt_deflate_in_npz_names_the_users_file", "normalize", _corrupt_deflate_start, DataError,
     "h36m/data_3d_h36m.npz: "),
    ("disk_full_writing_predictions", "evaluate", _disk_full_on_parquet, DataError,
     "predictions.parquet: could not write (No space left on device)"),
    ("disk_full_writing_model", "train", _torch_writer_fails, DataError, "model.pt: could not write"),
    ("read_only_output_folder", "evaluate", _os_error_from("lifting.io.tempfile.mkstemp", errno.EROFS), DataError,
     "could not write (Read-only file system)"),
    ("model_of_unknown_method", "evaluate", _model_file({"format": FORMAT, "method": "nope"}), DataError,
     "not a model of this pipeline (method 'nope'"),
    ("model_of_an_earlier_format", "evaluate", _model_file({"method": "knn", "config": {}}), DataError,
     f"a run file of no format (an earlier version of the pipeline); this version reads format {FORMAT}"),
    ("model_lacking_fields", "evaluate", _model_file({"format": FORMAT, "method": "knn", "config": {}, "x": 1}),
     DataError, f"a run file (format {FORMAT}) that lacks name, kind, configuration"),
    ("hostile_model_file", "evaluate", _model_file({"method": "knn", "payload": _RunsCode()}), DataError,
     "holds objects other than tensors and plain types"),
]

#: The same for the image chain, in the workspace with videos (Human3.6M's images are cut from them).
IMAGE_CASES = [
    ("h36m_videos_missing", "render", _params(data__h36m_videos="no/such/videos"), DataError,
     "no/such/videos/S1/Videos/Directions.54138969.mp4: video not found. Fix: place your Human3.6M videos as"),
    ("video_that_does_not_decode", "render", _replace_video(None), DataError,
     "videos/S1/Videos/Directions.54138969.mp4: not a readable video"),
    ("video_shorter_than_its_3d", "render", _replace_video(2), DataError,
     "Directions.54138969.mp4: 2 frames, but its sequence has 5 poses"),
    ("disk_full_during_render", "render",
     _os_error_from("lifting.images.store.pq.ParquetWriter.write_table", errno.ENOSPC), DataError,
     "images/views.parquet: could not write (No space left on device)"),
    ("read_only_data_folder_at_render", "render", _os_error_from("lifting.io.tempfile.mkdtemp", errno.EROFS), DataError,
     "images: could not write (Read-only file system)"),
    ("hostile_detector_checkpoint", "train_detector", _detector_checkpoint({"state_dict": {}, "x": _RunsCode()}),
     DataError, "user.pth: not a weights-only checkpoint"),
    ("truncated_detector_checkpoint", "train_detector", _detector_checkpoint(_truncated_copy_of_the_detector),
     DataError, "user.pth: not a readable torch checkpoint"),
    ("detector_checkpoint_of_another_width", "train_detector", _detector_checkpoint(_the_workspace_detector),
     DataError, "user.pth: does not match the HRNet config; missing keys: layer1.1.conv1.weight"),
    ("detector_checkpoint_with_other_keys", "train_detector", _detector_checkpoint(_w32_with_renamed_keys),
     DataError, "unexpected keys: stage_four.0.branches.0.0.conv1.weight"),
    ("detector_train_stride_longer_than_every_sequence", "train_detector", _params(detector__train_stride=50),
     ParamsError, "detector.train_stride is 50, not below the longest training sequence (8 frames)"),
    ("detector_made_for_other_crops", "detect2d", _detector_for_other_crops, DataError,
     "made for 48 x 64 crops"),
    ("disk_full_during_detect2d", "detect2d", _disk_full_on_parquet, DataError,
     "poses2d.parquet: could not write (No space left on device)"),
]


def _spoil_and_run(base: Path, tmp_path: Path, monkeypatch, name, stage, spoil, error, fragment) -> None:
    root = tmp_path / "workspace"
    shutil.copytree(base, root)
    monkeypatch.chdir(root)
    spoil(root, monkeypatch)
    if stage == "normalize":  # the user's file changed: fetch picks it up first (it does not fail)
        run_stage("fetch")
    before = _digests(root)
    with pytest.raises(error) as caught:
        run_stage(stage)
    message = str(caught.value)
    assert fragment in message, message
    assert "weights_only" not in message and "Traceback" not in message
    if name.endswith("names_the_users_file"):
        assert str(caught.value.path).startswith("h36m/") or caught.value.path == Path("h36m/data_3d_h36m.npz")
    assert _digests(root) == before
    assert not [p for p in root.rglob("*.tmp")], "a temporary file was left behind"


@pytest.mark.parametrize("name, stage, spoil, error, fragment", CASES, ids=[case[0] for case in CASES])
def test_bad_input_gets_one_clear_error_and_changes_no_output(workspace, tmp_path, monkeypatch, name, stage, spoil,
                                                              error, fragment):
    _spoil_and_run(workspace, tmp_path, monkeypatch, name, stage, spoil, error, fragment)


@pytest.mark.parametrize("name, stage, spoil, error, fragment", IMAGE_CASES, ids=[case[0] for case in IMAGE_CASES])
def test_bad_input_to_the_image_chain_gets_one_clear_error_and_changes_no_output(image_workspace, tmp_path,
                                                                                 monkeypatch, name, stage, spoil,
                                                                                 error, fragment):
    _spoil_and_run(image_workspace, tmp_path, monkeypatch, name, stage, spoil, error, fragment)


def test_the_workspace_itself_runs_clean(workspace):
    assert (workspace / "metrics.json").is_file() and (workspace / "predictions.parquet").is_file()
    assert len(SEQUENCES) == 3


def test_an_unreadable_checkpoint_is_logged_and_discarded(tmp_path, caplog):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.INFO, logger="lifting.train"):
        assert train._load_checkpoint(path, {"run": 1}) is None
    assert "checkpoint unreadable, starting over" in caplog.text


def test_the_image_workspace_itself_runs_clean(image_workspace):
    assert (image_workspace / "detected" / "poses2d.parquet").is_file()
    assert json.loads((image_workspace / "aligned" / "summary.json").read_text())["sources2d"] == ["detected", "gt"]
    assert json.loads((image_workspace / "detector.json").read_text())["test"]["mean_px"] > 0
