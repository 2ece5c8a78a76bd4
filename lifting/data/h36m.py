"""Human3.6M in the VideoPose3D file format: fetch, read into the canonical tables, export back.

Files (methods.md §1.2), all read with :func:`lifting.data.safe_npz.load_npz` (no plain pickle):

* ``data_3d_h36m.npz``: ``positions_3d`` = {subject: {sequence: (N, 32, 3) float32}}, world
  coordinates in **metres**, 50 fps. Made by VideoPose3D's ``data/prepare_data_h36m.py`` from the
  licensed *D3 Positions*; S11 "Directions" is absent on purpose (corrupted video).
* ``data_2d_h36m_<source>.npz``: ``positions_2d`` = {subject: {sequence: [4 arrays (N, 17, C)]}}
  in pixels, one array per camera in :data:`~lifting.data.h36m_cameras.CAMERA_IDS` order, C = 2
  (u, v) or 3 (u, v, confidence); ``metadata`` = {num_joints, keypoints_symmetry[, layout_name]}.

Quirks handled by :func:`read_h36m`:

* sequence keys are ``"<Action>"`` or ``"<Action> <n>"``; the action is the exact first word, with
  the raw-H36M names TakingPhoto/WalkingDog mapped to Photo/WalkDog (:func:`canonical_action`).
  2D keys are matched to 3D keys through the same renaming.
* 2D is often longer than the mocap: it is truncated to the 3D length (shorter is an error).
* 2D sequences or subjects without 3D (S11 Directions, the unlabelled S2-S4 of the detection
  files) are skipped with a warning; subjects without a calibration are skipped.
* 16-joint 2D files are refused, not converted: they are either SemGCN's ``data_2d_h36m_gt.npz``
  (h36m17 without the nose) or VideoPose3D's Stacked-Hourglass files (MPII joint order), and
  inventing a nose would put made-up numbers into a 17-joint benchmark.

HGN's body-surface markers (the ``markers`` table) come from the user's SMPL model and fits where
``data.smpl_dir`` supplies them (upstream's hierarchy, :mod:`lifting.data.surface.smpl`; the fetch stage
puts them in ``smpl/``), else from the 3D joints on the canonical body
(:mod:`lifting.data.surface.markers_from_joints`); the table's metadata and every HGN run's configuration
label say which.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from lifting.data.h36m_cameras import CAMERA_IDS, SUBJECTS, h36m_cameras
from lifting.data.safe_npz import load_npz, save_npz
from lifting.data.schema import (POSES2D_KEYS, StoreTables, cameras_to_frame, joint_columns,
                                 poses_from_frame, poses_to_frame)
from lifting.data.surface import smpl
from lifting.data.surface.markers_from_joints import markers_table
from lifting.errors import DataError
from lifting.skeleton import H36M17, H36M32_TO_H36M17, h36m32_to_h36m17

log = logging.getLogger(__name__)

#: The 15 Human3.6M actions in the one order used for every per-action table and JSON
#: (the ``define_actions`` order of Martinez/SemGCN/VideoPose3D).
H36M_ACTIONS = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
                "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether")

#: Raw Human3.6M / H36M-Toolbox action names -> the canonical ones.
ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog", "WalkingTogether": "WalkTogether"}

FILE_3D = "data_3d_h36m.npz"
#: Where the fetch stage puts the user's SMPL model and fits (data.smpl_dir), beside the npz files.
SMPL_SUBDIR = "smpl"
MM_PER_M = 1000.0

#: VideoPose3D's own downloads (VideoPose3D DATASETS.md, "Mask R-CNN and CPN detections").
DOWNLOAD_URL = "https://dl.fbaipublicfiles.com/video-pose-3d/data_2d_h36m_{source}.npz"
DOWNLOADABLE_SOURCES = ("cpn_ft_h36m_dbb", "detectron_ft_h36m")

#: Published sha256 of each downloadable file. None: no checksum is published (VideoPose3D gives
#: none, and none was found in its issues or in projects that use these files), so a download is
#: recorded with its computed sha256 and logged as unverified.
EXPECTED_SHA256: Mapping[str, str | None] = MappingProxyType({"cpn_ft_h36m_dbb": None, "detectron_ft_h36m": None})

#: How to obtain each 2D source that cannot be downloaded (the text of the "missing file" fix).
_HOW_TO_GET = {
    "gt": "create it with VideoPose3D's data/prepare_data_h36m.py (it writes data_3d_h36m.npz and the "
          "17-joint data_2d_h36m_gt.npz from the licensed Human3.6M 'D3 Positions')",
    "sh_pt_mpii": "VideoPose3D's data/prepare_data_2d_h36m_sh.py makes it from h36m.zip, but that file has 16 "
                  "joints in MPII order, which this benchmark does not read; convert it to the 17-joint h36m "
                  "layout first",
    "sh_ft_h36m": "VideoPose3D's data/prepare_data_2d_h36m_sh.py makes it from "
                  "stacked_hourglass_fined_tuned_240.tar.gz, but that file has 16 joints in MPII order, which this "
                  "benchmark does not read; convert it to the 17-joint h36m layout first",
    "detectron_pt_h36m": "it is not a VideoPose3D download: convert the COCO keypoints of "
                         "https://dl.fbaipublicfiles.com/video-pose-3d/data_2d_h36m_detectron_pt_coco.npz to the "
                         "h36m layout (lifting.skeleton.coco17_to_h36m17) and save them in the same format",
}

#: The 15 of the 32 mocap slots that h36m17 drops, each filled on export with the kept joint it
#: coincides with or hangs from (toes and foot ends -> ankle, spine base -> pelvis, collar bones ->
#: thorax, thumbs and hand ends -> wrist), so no slot is zero or NaN for upstream code.
UNUSED_SLOT_SOURCE = {4: 3, 5: 3, 9: 8, 10: 8, 11: 0, 16: 13, 20: 19, 21: 19, 22: 19, 23: 19,
                      24: 13, 28: 27, 29: 27, 30: 27, 31: 27}

Downloader = Callable[[str, Path], None]


def file_2d(source: str) -> str:
    """The VideoPose3D file name of a 2D source: ``data_2d_h36m_<source>.npz``."""
    return f"data_2d_h36m_{source}.npz"


def canonical_action(sequence: str, path: str | Path | None) -> str:
    """The canonical action of a VideoPose3D sequence key.

    The action is the exact first word (so "SittingDown 1" is SittingDown, never Sitting), after
    :data:`ACTION_ALIASES`: "Waiting 1" -> "Waiting", "TakingPhoto 1" -> "Photo",
    "WalkingDog" -> "WalkDog".

    Raises:
        DataError: the first word is no Human3.6M action (names ``path`` and the sequence).
    """
    words = sequence.split()
    first = words[0] if words else ""
    action = ACTION_ALIASES.get(first, first)
    if action not in H36M_ACTIONS:
        raise DataError(path, f"sequence {sequence!r}: unknown action {first!r}",
                        f"sequence keys must start with one of the 15 Human3.6M actions {list(H36M_ACTIONS)} "
                        f"(or {sorted(ACTION_ALIASES)}); this file is not a Human3.6M VideoPose3D file")
    return action


def _sequence_key(sequence: str) -> str:
    """A sequence name with its action renamed canonically, for matching 2D keys to 3D keys."""
    first, _, rest = sequence.partition(" ")
    return " ".join(filter(None, (ACTION_ALIASES.get(first, first), rest)))


# ----------------------------------------------------------------------------------------- reading

def _missing_file_error(path: Path, source: str | None) -> DataError:
    """The error for a missing input file: which file to put in which directory, and where to get it."""
    if source is None:
        how = _HOW_TO_GET["gt"]
    elif source in DOWNLOADABLE_SOURCES:
        how = (f"download it from {DOWNLOAD_URL.format(source=source)} (or set data.download: true and run "
               "`dvc repro` to let the fetch stage download it)")
    else:
        how = _HOW_TO_GET.get(source, "write your detections in the VideoPose3D format: positions_2d = "
                                      "{subject: {sequence: [4 arrays (N, 17, 2) pixels]}} plus metadata")
    return DataError(path, "file not found", f"place {path.name} in {path.parent}; {how}")


def _load_keys(path: Path, source: str | None, keys: tuple[str, ...]) -> dict[str, object]:
    """Load an archive and check that it has ``keys``."""
    if not path.is_file():
        raise _missing_file_error(path, source)
    content = load_npz(path)
    missing = [key for key in keys if key not in content]
    if missing:
        raise DataError(path, f"no {missing} in the archive (keys: {sorted(content)})",
                        "this is not a VideoPose3D-format file; regenerate it with VideoPose3D's data/ scripts")
    return content


def _nested_dict(value: object, path: Path, key: str) -> dict[str, dict[str, object]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise DataError(path, f"{key} is not a {{subject: {{sequence: poses}}}} dict",
                        "this is not a VideoPose3D-format file; regenerate it with VideoPose3D's data/ scripts")
    return value


def _subjects(nested: dict, path: Path) -> list[str]:
    """Subjects of a file that have a calibration, in :data:`SUBJECTS` order; others are logged."""
    skipped = sorted(set(nested) - set(SUBJECTS))
    if skipped:
        log.info("%s: skipping subjects without a Human3.6M calibration: %s", path.name, ", ".join(skipped))
    return [subject for subject in SUBJECTS if subject in nested]


def _check_finite(poses: np.ndarray, path: Path, where: str) -> None:
    if not np.isfinite(poses).all():
        bad = np.argwhere(~np.isfinite(poses).all(axis=tuple(range(1, poses.ndim))))[:, 0]
        raise DataError(path, f"{where}: NaN or infinite values in {len(bad)} frame(s), first at frame {bad[0]}",
                        "regenerate the file; this reader does not guess missing joints")


def _poses3d_mm(value: object, path: Path, where: str) -> np.ndarray:
    """One 3D sequence, (N, 32 or 17, 3) metres -> (N, 17, 3) float32 millimetres."""
    poses = np.asarray(value)
    shape_ok = poses.ndim == 3 and poses.shape[2] == 3 and poses.shape[1] in (32, 17)
    if not shape_ok or not np.issubdtype(poses.dtype, np.number):
        raise DataError(path, f"{where}: 3D poses of shape {poses.shape} ({poses.dtype}); expected (N, 32, 3) "
                              "(VideoPose3D's raw mocap joints) or (N, 17, 3) numbers",
                        "regenerate data_3d_h36m.npz with VideoPose3D's data/prepare_data_h36m.py")
    if len(poses) == 0:
        raise DataError(path, f"{where}: empty sequence", "regenerate data_3d_h36m.npz")
    _check_finite(poses, path, where)
    if poses.shape[1] == 32:
        poses = h36m32_to_h36m17(poses)
    _check_metres(poses, path, where)
    return (poses.astype(np.float64) * MM_PER_M).astype(np.float32)


#: Thigh and shin bones of h36m17 (child, parent): 0.3-0.5 m in any adult.
LEG_BONES = ((2, 1), (3, 2), (5, 4), (6, 5))


def _check_metres(poses: np.ndarray, path: Path, where: str) -> None:
    """Refuse 3D whose leg bones are not 0.15-1 m long, and say which unit the file seems to use."""
    child, parent = (list(ix) for ix in zip(*LEG_BONES))
    median = float(np.median(np.linalg.norm(poses[:, child] - poses[:, parent], axis=-1)))
    if 0.15 <= median <= 1.0:
        return
    unit = next((name for name, scale in (("millimetres", 1000.0), ("centimetres", 100.0))
                 if 0.15 * scale <= median <= scale), None)
    seems = f"it seems to be in {unit}" if unit else "no length unit fits"
    raise DataError(path, f"{where}: median thigh/shin length {median:g} in the file's unit, where metres give "
                          f"0.3-0.5; {seems}", "store the 3D in metres, as VideoPose3D's data_3d_h36m.npz does")


def _read_3d(path: Path) -> dict[tuple[str, str], np.ndarray]:
    """{(subject, sequence): (N, 17, 3) float32 world mm}, in subject then sequence-name order."""
    nested = _nested_dict(_load_keys(path, None, ("positions_3d",))["positions_3d"], path, "positions_3d")
    sequences = {}
    for subject in _subjects(nested, path):
        for sequence in sorted(nested[subject]):
            sequences[(subject, sequence)] = _poses3d_mm(nested[subject][sequence], path, f"{subject}/{sequence}")
    if not sequences:
        raise DataError(path, f"no sequences of the calibrated subjects {list(SUBJECTS)}", "regenerate the file")
    return sequences


def _poses3d_frame(sequences: dict[tuple[str, str], np.ndarray], path: Path) -> pd.DataFrame:
    pieces = []
    for (subject, sequence), poses in sequences.items():
        keys = pd.DataFrame({"subject": subject, "action": canonical_action(sequence, path), "sequence": sequence,
                             "frame": np.arange(len(poses), dtype=np.int32)})
        pieces.append(pd.concat([keys, poses_to_frame(poses, H36M17, "xyz")], axis=1))
    return pd.concat(pieces, ignore_index=True)


def _check_metadata_2d(metadata: object, path: Path) -> None:
    """Refuse 2D files whose metadata says they are not in the 17-joint h36m layout."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise DataError(path, "metadata is not a dict", "regenerate the file with VideoPose3D's data/ scripts")
    num_joints = metadata.get("num_joints")
    if num_joints == 16:
        raise DataError(path, "the file has 16 joints (SemGCN's 16-joint data_2d_h36m_gt.npz, or VideoPose3D's "
                              "Stacked-Hourglass detections in MPII order)",
                        "use VideoPose3D's 17-joint file of the same name (data/prepare_data_h36m.py writes "
                        "data_2d_h36m_gt.npz); 16-joint files are not converted because the nose would be invented")
    if num_joints is not None and num_joints != H36M17.num_joints:
        raise DataError(path, f"metadata num_joints={num_joints}, expected 17",
                        "use a 2D file in VideoPose3D's 17-joint h36m layout")
    layout = metadata.get("layout_name")
    if layout not in (None, "h36m"):
        raise DataError(path, f"keypoint layout {layout!r}, expected 'h36m'",
                        "convert the keypoints to the 17-joint h36m layout "
                        "(for COCO keypoints: lifting.skeleton.coco17_to_h36m17)")
    symmetry = metadata.get("keypoints_symmetry")
    if symmetry is not None:
        try:
            left, right = ([int(i) for i in side] for side in symmetry)
        except (TypeError, ValueError):
            raise DataError(path, f"unreadable keypoints_symmetry {symmetry!r}", "regenerate the file") from None
        if (sorted(left), sorted(right)) != (sorted(H36M17.left), sorted(H36M17.right)):
            raise DataError(path, f"keypoints_symmetry {[left, right]} is not the h36m17 one "
                                  f"{[list(H36M17.left), list(H36M17.right)]}: the joints are in another order",
                            "convert the keypoints to the 17-joint h36m layout")


def _camera_poses_2d(value: object, length3d: int, path: Path, where: str) -> np.ndarray:
    """One camera's 2D of one sequence, truncated to the 3D length: (length3d, 17, C) float32."""
    poses = np.asarray(value) if value is not None else np.empty((0,))
    if poses.ndim != 3 or not np.issubdtype(poses.dtype, np.number):
        raise DataError(path, f"{where}: 2D poses of shape {poses.shape} ({poses.dtype}); expected (N, 17, 2 or 3)",
                        "regenerate the file in the VideoPose3D format")
    if poses.shape[1] == 16:
        raise DataError(path, f"{where}: the file has 16 joints", "use VideoPose3D's 17-joint file of the same name")
    if poses.shape[1] != H36M17.num_joints or poses.shape[2] not in (2, 3):
        raise DataError(path, f"{where}: 2D poses of shape {poses.shape}; expected (N, 17, 2) pixels or (N, 17, 3) "
                              "with a confidence", "use a 2D file in VideoPose3D's 17-joint h36m layout")
    if len(poses) < length3d:
        raise DataError(path, f"{where}: {len(poses)} 2D frames but {length3d} 3D frames in {FILE_3D}",
                        "the 2D file must cover every mocap frame; regenerate it for the same data_3d_h36m.npz")
    poses = poses[:length3d]
    _check_finite(poses, path, where)
    return poses.astype(np.float32)


def _match_2d_sequences(nested: dict, lengths: dict[tuple[str, str], int], path: Path) -> dict[tuple[str, str], object]:
    """{(subject, 3D sequence name): the 2D entry}; 2D without 3D is skipped, 3D without 2D is an error."""
    by_key = {(subject, _sequence_key(sequence)): sequence for subject, sequence in lengths}
    matched, skipped = {}, []
    for subject in _subjects(nested, path):
        for sequence_2d, cameras in nested[subject].items():
            sequence = by_key.get((subject, _sequence_key(sequence_2d)))
            if sequence is None:
                skipped.append(f"{subject}/{sequence_2d}")
            else:
                matched[(subject, sequence)] = cameras
    if skipped:
        log.warning("%s: skipping %d 2D sequence(s) with no 3D in %s: %s", path.name, len(skipped), FILE_3D,
                    ", ".join(skipped))
    missing = [f"{subject}/{sequence}" for subject, sequence in lengths if (subject, sequence) not in matched]
    if missing:
        raise DataError(path, f"no 2D for {len(missing)} sequence(s) of {FILE_3D}: {', '.join(missing[:5])}",
                        "use a 2D file made for the same data_3d_h36m.npz (VideoPose3D's files cover every sequence)")
    return matched


def _sequence_2d_frame(subject: str, sequence: str, source: str, cameras: object, length3d: int,
                       path: Path) -> pd.DataFrame:
    """The poses2d rows of one sequence, camera-major (all four cameras, ``length3d`` frames each)."""
    if not isinstance(cameras, (list, tuple, np.ndarray)) or len(cameras) != len(CAMERA_IDS):
        count = len(cameras) if hasattr(cameras, "__len__") else type(cameras).__name__
        raise DataError(path, f"{subject}/{sequence}: {count} camera entries, expected {len(CAMERA_IDS)} "
                              f"(in the order {list(CAMERA_IDS)})", "regenerate the file in the VideoPose3D format")
    per_camera = [_camera_poses_2d(value, length3d, path, f"{subject}/{sequence} camera {camera_id}")
                  for camera_id, value in zip(CAMERA_IDS, cameras)]
    if len({poses.shape[2] for poses in per_camera}) > 1:
        raise DataError(path, f"{subject}/{sequence}: some cameras have confidences and others do not",
                        "regenerate the file with the same channels (u, v[, confidence]) everywhere")
    poses = np.concatenate(per_camera)
    keys = pd.DataFrame({"subject": subject, "sequence": sequence,
                         "camera": np.repeat(np.array(CAMERA_IDS, dtype=object), length3d), "source": source,
                         "frame": np.tile(np.arange(length3d, dtype=np.int32), len(CAMERA_IDS))})
    columns = [keys, poses_to_frame(poses[..., :2], H36M17, "uv")]
    if poses.shape[2] == 3:
        columns.append(poses_to_frame(poses[..., 2:], H36M17, "c"))
    return pd.concat(columns, axis=1)


def _read_2d(path: Path, source: str, lengths: dict[tuple[str, str], int]) -> pd.DataFrame:
    """The poses2d rows of one source, 2D truncated to the 3D lengths."""
    content = _load_keys(path, source, ("positions_2d",))
    _check_metadata_2d(content.get("metadata"), path)
    nested = _nested_dict(content["positions_2d"], path, "positions_2d")
    matched = _match_2d_sequences(nested, lengths, path)
    pieces = [_sequence_2d_frame(subject, sequence, source, matched[(subject, sequence)], length, path)
              for (subject, sequence), length in lengths.items()]
    if len({frame.shape[1] for frame in pieces}) > 1:
        raise DataError(path, "some sequences have confidences and others do not",
                        "regenerate the file with the same channels (u, v[, confidence]) everywhere")
    return pd.concat(pieces, ignore_index=True)


def _concat_sources(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack the sources; where only some have confidences, the others get confidence 1."""
    uv = list(POSES2D_KEYS) + joint_columns(H36M17, "uv")
    if not frames:
        dtypes = {"frame": np.int32, **{key: str for key in POSES2D_KEYS if key != "frame"}}
        return pd.DataFrame({column: pd.Series(dtype=dtypes.get(column, np.float32)) for column in uv})
    merged = pd.concat(frames, ignore_index=True)
    confidence = joint_columns(H36M17, "c")
    if confidence[0] in merged:
        merged[confidence] = merged[confidence].fillna(1.0).astype(np.float32)
        return merged[uv + confidence]
    return merged[uv]


def read_h36m(h36m_dir: str | Path, sources2d: list[str], origin_dir: str | Path | None = None) -> StoreTables:
    """Read VideoPose3D-format Human3.6M files into the canonical tables.

    Args:
        h36m_dir: folder holding ``data_3d_h36m.npz`` and ``data_2d_h36m_<source>.npz``.
        sources2d: the 2D sources to read, e.g. ``["gt", "cpn_ft_h36m_dbb"]``.
        origin_dir: where the user keeps these files when ``h36m_dir`` holds copies of them (the
            fetch stage's ``data/raw/h36m``): errors then name the user's file.
    Returns:
        StoreTables: ``poses3d`` (h36m17, world mm, float32), ``poses2d`` (pixels, truncated to the
        3D length; ``_c`` confidence columns where a source has a third channel, 1.0 for the
        sources without one), ``cameras`` of the subjects present, ``sources2d``.
    Raises:
        DataError: a missing or corrupt file, a wrong joint count, NaN, 2D shorter than 3D, an
            unknown action, a 16-joint or non-h36m 2D layout, or 3D sequences without 2D.
    """
    try:
        return _read_h36m(Path(h36m_dir), sources2d)
    except DataError as err:
        if origin_dir is None or err.path is None or err.path.parent != Path(h36m_dir):
            raise
        raise DataError(Path(origin_dir) / err.path.name, f"{err.problem} (read from its copy {err.path})",
                        err.fix) from None


def _read_h36m(h36m_dir: Path, sources2d: list[str]) -> StoreTables:
    path3d = h36m_dir / FILE_3D
    sequences = _read_3d(path3d)
    poses3d = _poses3d_frame(sequences, path3d)
    lengths = {key: len(poses) for key, poses in sequences.items()}
    sources2d = list(dict.fromkeys(sources2d))
    poses2d = _concat_sources([_read_2d(h36m_dir / file_2d(source), source, lengths) for source in sources2d])
    subjects = list(dict.fromkeys(subject for subject, _ in sequences))
    cameras = cameras_to_frame({subject: h36m_cameras(subject) for subject in subjects})
    log.info("%s: %d subjects, %d sequences, %d frames; 2D sources: %s", h36m_dir, len(subjects), len(sequences),
             len(poses3d), ", ".join(sources2d) or "none")
    if (h36m_dir / SMPL_SUBDIR).is_dir():  # HGN's upstream hierarchy: the user's SMPL model and fits
        markers, surface = smpl.markers_table(poses3d, h36m_dir / SMPL_SUBDIR)
    else:  # HGN's markers on the canonical body
        markers, surface = markers_table(poses3d)
    return StoreTables(poses3d, poses2d, cameras, sources2d, markers, surface)


# ----------------------------------------------------------------------------------------- export

def _export_key(action: str, sequence: str) -> str:
    """The VideoPose3D key of a sequence: its name, prefixed with its action when the name does not
    start with it (upstream code groups sequences by their first word), e.g. "walk" -> "Walk walk"."""
    first = sequence.split()[0] if sequence.split() else ""
    return sequence if ACTION_ALIASES.get(first, first) == action else f"{action} {sequence}"


def _sorted_frames(group: pd.DataFrame, where: str) -> pd.DataFrame:
    group = group.sort_values("frame")
    if not np.array_equal(group["frame"].to_numpy(), np.arange(len(group))):
        raise DataError(None, f"{where}: frames are not 0..N-1 without gaps",
                        "export the full-rate tables (VideoPose3D files hold every frame of a sequence)")
    return group


def to_h36m32(poses17: np.ndarray) -> np.ndarray:
    """(N, 17, 3) -> (N, 32, 3): kept joints in their mocap slots, the rest per :data:`UNUSED_SLOT_SOURCE`."""
    poses32 = np.empty((len(poses17), 32, 3), dtype=poses17.dtype)
    poses32[:, list(H36M32_TO_H36M17)] = poses17
    for slot, source in UNUSED_SLOT_SOURCE.items():
        poses32[:, slot] = poses32[:, source]
    return poses32


def _positions_3d(poses3d: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """poses3d -> {subject: {key: (N, 32, 3) float32 metres}}."""
    positions: dict[str, dict[str, np.ndarray]] = {}
    for (subject, action, sequence), group in poses3d.groupby(["subject", "action", "sequence"], sort=True):
        group = _sorted_frames(group, f"poses3d {subject}/{sequence}")
        metres = poses_from_frame(group, H36M17, "xyz").astype(np.float64) / MM_PER_M
        positions.setdefault(subject, {})[_export_key(action, sequence)] = to_h36m32(metres.astype(np.float32))
    return positions


def _positions_2d(poses2d: pd.DataFrame, actions: dict[tuple[str, str], str], source: str
                  ) -> dict[str, dict[str, list[np.ndarray]]]:
    """The rows of one source -> {subject: {key: [4 arrays (N, 17, 2 or 3) float32 pixels]}}."""
    with_confidence = joint_columns(H36M17, "c")[0] in poses2d
    positions: dict[str, dict[str, list[np.ndarray]]] = {}
    for (subject, sequence), rows in poses2d.groupby(["subject", "sequence"], sort=True):
        by_camera = {camera: group for camera, group in rows.groupby("camera")}
        if set(by_camera) != set(CAMERA_IDS):
            raise DataError(None, f"poses2d {source} {subject}/{sequence}: cameras {sorted(by_camera)}, expected "
                                  f"{list(CAMERA_IDS)}", "VideoPose3D files need all four Human3.6M cameras")
        arrays = []
        for camera in CAMERA_IDS:
            group = _sorted_frames(by_camera[camera], f"poses2d {source} {subject}/{sequence} {camera}")
            channels = [poses_from_frame(group, H36M17, "uv")]
            if with_confidence:
                channels.append(poses_from_frame(group, H36M17, "c"))
            arrays.append(np.concatenate(channels, axis=-1))
        action = actions.get((subject, sequence), "")
        positions.setdefault(subject, {})[_export_key(action, sequence) if action else sequence] = arrays
    return positions


def export_videopose3d(tables: StoreTables, out_dir: str | Path) -> list[Path]:
    """Write canonical tables in exactly the VideoPose3D format.

    Writes ``data_3d_h36m.npz`` (32 mocap slots, world metres, float32; the 15 slots h36m17 drops
    are copies of the joints in :data:`UNUSED_SLOT_SOURCE`) and one ``data_2d_h36m_<source>.npz``
    per source (pixels; a third channel where the table has ``_c`` columns; metadata
    ``{'layout_name': 'h36m', 'num_joints': 17, 'keypoints_symmetry': [left, right]}``).
    A sequence whose name does not start with its action is keyed ``"<action> <sequence>"``.

    Returns:
        The files written (atomically), 3D first.
    Raises:
        DataError: gaps in the frame numbers, or a 2D sequence without all four H36M cameras.
    """
    out_dir = Path(out_dir)
    actions = {(s, q): a for s, a, q in tables.poses3d[["subject", "action", "sequence"]]
               .drop_duplicates().itertuples(index=False)}
    path3d = out_dir / FILE_3D
    save_npz(path3d, positions_3d=_positions_3d(tables.poses3d))
    written = [path3d]
    metadata = {"layout_name": "h36m", "num_joints": H36M17.num_joints,
                "keypoints_symmetry": [list(H36M17.left), list(H36M17.right)]}
    for source in tables.sources2d:
        rows = tables.poses2d[tables.poses2d["source"] == source]
        path = out_dir / file_2d(source)
        save_npz(path, positions_2d=_positions_2d(rows, actions, source), metadata=metadata)
        written.append(path)
    return written


# ------------------------------------------------------------------------------------------ fetch

def download_url(url: str, dest: Path, timeout_s: float = 30.0) -> None:
    """Stream ``url`` into ``dest`` (urllib; ``timeout_s`` bounds each network wait, not the total)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _link_or_copy(src: Path, dest: Path) -> str:
    """Hard-link ``src`` to ``dest`` when both are on one filesystem, else copy. Returns how."""
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
        return "hardlink"
    except OSError:
        shutil.copyfile(src, dest)
        return "copy"


def _download_verified(source: str, src: Path, dest: Path, download: Downloader, expected: str | None) -> dict:
    """Download the public 2D file ``src`` should have held to a temporary name, check it, rename it onto ``dest``."""
    url = DOWNLOAD_URL.format(source=source)
    by_hand = f"download it by hand from {url} and place {src.name} in {src.parent}"
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        download(url, tmp)
        sha = sha256_file(tmp)
        if expected is not None and sha != expected:
            raise DataError(src, f"download from {url} has sha256 {sha}, expected {expected}", by_hand)
        if not zipfile.is_zipfile(tmp):
            raise DataError(src, f"download from {url} is not an .npz archive", by_hand)
        os.replace(tmp, dest)
    except OSError as err:
        raise DataError(src, f"download from {url} failed ({err})", by_hand) from None
    finally:
        tmp.unlink(missing_ok=True)
    if expected is None:
        log.warning("%s: downloaded from %s, sha256 %s NOT verified (no published checksum)", dest.name, url, sha)
    return {"origin": "download", "url": url, "verified": expected is not None}


def fetch_h36m(h36m_dir: str | Path, sources2d: list[str], raw_dir: str | Path, allow_download: bool,
               download: Downloader = download_url,
               expected_sha256: Mapping[str, str | None] = EXPECTED_SHA256, smpl_dir: Path | None = None) -> dict:
    """Gather the VideoPose3D files of ``sources2d`` into ``raw_dir``.

    Files present in ``h36m_dir`` are hard-linked (same filesystem) or copied. A missing public
    detection file (:data:`DOWNLOADABLE_SOURCES`) is downloaded when ``allow_download`` is true,
    to a temporary name, checked against :data:`EXPECTED_SHA256` where a checksum is known, then
    renamed into place.

    Args:
        h36m_dir: the user's folder of VideoPose3D-format files.
        sources2d: the 2D sources needed.
        raw_dir: where the files go (created).
        allow_download: whether a missing public file may be downloaded.
        download: ``download(url, dest_path)``; injectable so tests never touch the network.
        expected_sha256: {source: sha256 or None}.
        smpl_dir: the user's SMPL model and fits (:mod:`lifting.data.surface.smpl`), linked or copied into
            ``raw_dir/smpl``; None: none (HGN's markers then come from the canonical body).
    Returns:
        The manifest: ``{"source": "h36m", "h36m_dir": ..., "files": {name: {"path", "bytes",
        "sha256", "origin" (hardlink/copy/download), ["url", "verified"]}}}``.
    Raises:
        DataError: a file that is missing and cannot be downloaded (says which file to place where),
            a failed download, or a checksum mismatch.
    """
    h36m_dir, raw_dir = Path(h36m_dir), Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for source, name in [(None, FILE_3D)] + [(source, file_2d(source)) for source in sources2d]:
        src, dest = h36m_dir / name, raw_dir / name
        if src.is_file():
            entry = {"origin": _link_or_copy(src, dest)}
        elif allow_download and source in DOWNLOADABLE_SOURCES:
            entry = _download_verified(source, src, dest, download, expected_sha256.get(source))
        else:
            raise _missing_file_error(src, source)
        files[name] = {"path": name, "bytes": dest.stat().st_size, "sha256": sha256_file(dest), **entry}
    if smpl_dir is not None:
        if not smpl_dir.is_dir():
            raise DataError(smpl_dir, "no such folder", "set data.smpl_dir to the folder with SMPL_NEUTRAL.npz and "
                            "Moon's fits (README: Human3.6M, SMPL), or null to use the canonical body")
        (raw_dir / SMPL_SUBDIR).mkdir()
        for src in [smpl_dir / smpl.MODEL_FILE, *sorted(smpl_dir.glob(smpl.FITS_PATTERN))]:
            if not src.is_file():
                raise DataError(src, "not found", "place the SMPL model there (README: Human3.6M, SMPL), or set "
                                "data.smpl_dir: null to use the canonical body")
            name = f"{SMPL_SUBDIR}/{src.name}"
            origin = _link_or_copy(src, raw_dir / name)
            files[name] = {"path": name, "bytes": src.stat().st_size, "sha256": sha256_file(raw_dir / name),
                           "origin": origin}
    return {"source": "h36m", "h36m_dir": str(h36m_dir), "files": files}
