"""Score a method's test predictions and describe the protocol they were scored under."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lifting import metrics
from lifting.data.align import S9_DAMAGED_SEQUENCES, SUBSAMPLE_STEP
from lifting.data.schema import poses_to_frame
from lifting.data.split import LiftingData, Protocol
from lifting.run_file import RunFile
from lifting.skeleton import COMMON_JOINTS, get_joint_set


#: Headline numbers summarised over seeds: the action-mean of each protocol (MPJVE, mm per frame,
#: where the test rows are whole runs).
SEED_SUMMARY = {"p1": "mpjpe_mm", "p2": "p_mpjpe_mm", "p3": "n_mpjpe_mm", "mpjve": "mpjve_mm_per_frame",
                "pck150": "pck150_pct", "auc": "auc_pct"}
#: The common-joint figures (:data:`lifting.skeleton.COMMON_JOINTS`): the keys under ``metrics[COMMON_JOINTS.name]`` and in the seeds block.
COMMON_SUMMARY = {"p1": "mpjpe_mm", "p2": "p_mpjpe_mm"}
#: The joints PCK and AUC are scored on, on every test set: MPI-INF-3DHP's 14
#: (``mpii_get_pck_auc_joint_groups.m``: head top, neck, shoulders, elbows, wrists, hips, knees, ankles),
#: i.e. every h36m17 joint but the pelvis (the root: its error is 0), the spine and the nose slot
#: (3DHP's head centre, which the official groups leave out).
PCK_EXCLUDED = ("Hip", "Spine", "Nose")
_AUC = metrics.AUC_THRESHOLDS_MM
PCK_RULE = (f"PCK@{metrics.PCK_THRESHOLD_MM:g} mm (share of joint errors strictly below it, %) and AUC (mean PCK "
            f"over {_AUC[0]:g}, {_AUC[1]:g}, ..., {_AUC[-1]:g} mm, %) after root alignment, on the joints but "
            f"{', '.join(PCK_EXCLUDED)} (MPI-INF-3DHP's 14)")


def protocol_block(data_source: str, data: LiftingData, protocol: Protocol, test_subjects, flip_test: bool,
                   checkpoint_rule: str, budget: dict, saved: RunFile | None = None) -> dict:
    """Everything needed to compare the numbers with a paper's (DESIGN §4).

    ``saved`` (the run file) adds which of the paper's configurations ran, the number of
    training frames and the seeds.
    """
    run = {}
    if saved is not None:
        record = saved.record
        run = {"configuration": saved.kind, "configuration_label": saved.configuration,
               "train_frames": record.train_samples, "seeds": record.seeds,
               "world_size": record.world_size,  # training processes (torchrun), 1 for one
               "global_batch": (record.schedule or {}).get("batch_size"),  # summed over the processes
               "train_flip": saved.input_spec["train_flip"],
               "validation_split": "held out (val_best)" if record.checkpoint == "val_best" else
               "none: every training sequence is trained on",
               "test_curve": "the logged per-epoch test-set curve (metrics/train) is never used for selection"}
    return {**run,
        "data_source": data_source,
        "test_subjects": list(test_subjects),
        "excluded_sequences": [f"S9/{s}" for s in S9_DAMAGED_SEQUENCES] if protocol.exclude_s9_damaged else [],
        "test_frame_stride": SUBSAMPLE_STEP if protocol.test_every50 else 1,
        "train_frame_stride": protocol.train_stride,
        "joint_set": data.joint_set,
        "root": "both poses root-aligned (joint 0)",
        "pck_auc": PCK_RULE,
        "flip_test": flip_test,
        "checkpoint": {"last": "last epoch", "val_best": "best epoch on a validation split of the training subjects",
                       "test_best": "best epoch ON THE TEST SET (as several papers do; optimistic)"}[checkpoint_rule],
        "budget": budget,
        "comparable_with_published_h36m": data_source == "h36m",
    }


def rows_within(subset: pd.DataFrame, full: pd.DataFrame) -> np.ndarray:
    """(len(subset),) the positions in ``full`` of ``subset``'s rows (matched on their keys)."""
    keys = ["subject", "sequence", "camera", "frame"]
    positions = full[keys].reset_index(drop=True).reset_index().merge(subset[keys], on=keys, how="right")["index"]
    if positions.isna().any():
        raise ValueError("rows of the subset are missing from the full table")
    return positions.to_numpy(np.int64)


def predictions_frame(predicted_mm: np.ndarray, data: LiftingData) -> pd.DataFrame:
    """Test keys + predicted root-relative camera-frame joints (mm), for the report."""
    joint_set = get_joint_set(data.joint_set)
    return pd.concat([data.test_meta.reset_index(drop=True), poses_to_frame(predicted_mm, joint_set, "xyz")], axis=1)


def pck_joints(joint_set: str) -> list[int]:
    """Indices, in ``joint_set``'s order, of the joints PCK and AUC are scored on (all but :data:`PCK_EXCLUDED`)."""
    return [i for i, name in enumerate(get_joint_set(joint_set).names) if name not in PCK_EXCLUDED]


def run_ids(meta: pd.DataFrame) -> np.ndarray | None:
    """(N,) one id per (subject, sequence, camera) run when the rows are every frame of their runs
    in order (then MPJVE, the velocity error, is defined); None otherwise (e.g. every 50th frame)."""
    ids = pd.factorize(meta["subject"].astype(str) + "/" + meta["sequence"].astype(str) + "/"
                       + meta["camera"].astype(str))[0]
    frames = meta["frame"].to_numpy()
    same = ids[1:] == ids[:-1]
    if not np.all(np.diff(frames)[same] == 1) or len(np.unique(ids[np.r_[True, ~same]])) != ids.max() + 1:
        return None
    return ids


def score_seeds(predictions_mm: list[np.ndarray], data: LiftingData, seeds: list[int]) -> tuple[dict, dict]:
    """Score one prediction per seed: (the mean over seeds of every metric, the seed summary).

    The metrics hold each protocol on the run's own joints, PCK@150 mm and AUC (``pck150_pct``,
    ``auc_pct``, %) on :func:`pck_joints`, and, under ``COMMON_JOINTS.name``
    ("h36m16"), P1 and P2 on the joints every method predicts (the ranking's). The summary is ``{"seeds", "per_seed": {"p1": [...], ...}, "mean": {...}, "std": {...}}`` with
    action-mean mm per seed and the sample standard deviation (None with a single seed).
    """
    names = list(get_joint_set(data.joint_set).names)
    actions = data.test_meta["action"].to_numpy()
    runs = run_ids(data.test_meta)
    results = [metrics.evaluate(p, data.test_targets, actions, sequence_ids=runs, joint_names=names, decimals=None)
               for p in predictions_mm]
    common = [names.index(name) for name in COMMON_JOINTS.names]
    pck = pck_joints(data.joint_set)
    for result, p in zip(results, predictions_mm):
        errors = metrics.joint_errors_mpjpe(p, data.test_targets)[:, pck]
        result.update(metrics.pck_auc(errors, actions, [names[i] for i in pck]))
        scored = metrics.evaluate(p[:, common], data.test_targets[:, common], actions,
                                  joint_names=list(COMMON_JOINTS.names), decimals=None)
        result[COMMON_JOINTS.name] = {name: {part: scored[name][part] for part in ("action_mean", "frame_mean")}
                                      for name in COMMON_SUMMARY.values()}
    per_seed = {key: [r[name]["action_mean"] for r in results] for key, name in SEED_SUMMARY.items() if name in results[0]}
    per_seed.update({f"{key}_{COMMON_JOINTS.name}": [r[COMMON_JOINTS.name][name]["action_mean"] for r in results]
                     for key, name in COMMON_SUMMARY.items()})
    return summarize_seeds(results, per_seed, seeds)


def summarize_seeds(results: list[dict], per_seed: dict[str, list[float]], seeds) -> tuple[dict, dict]:
    """(the key-by-key mean of the seeds' identically shaped metric dicts, ``{"seeds", "per_seed", "mean",
    "std"}`` of the headline numbers ``per_seed``), both rounded to 0.01; the std is the sample standard
    deviation (None with a single seed)."""
    summary = {"seeds": list(seeds), "per_seed": per_seed,
               "mean": {k: float(np.mean(v)) for k, v in per_seed.items()},
               "std": {k: float(np.std(v, ddof=1)) if len(v) > 1 else None for k, v in per_seed.items()}}
    return metrics.round_metrics(_mean_of(results)), _round_summary(summary)


def _mean_of(results: list[dict]):
    """Key-by-key mean of identically shaped nested metric dicts (counts are equal and kept)."""
    first = results[0]
    if isinstance(first, dict):
        return {key: _mean_of([r[key] for r in results]) for key in first}
    return first if isinstance(first, (int, np.integer)) else float(np.mean(results))


def _round_summary(summary: dict) -> dict:
    rounded = {part: {k: None if v is None else (round(v, 2) if isinstance(v, float) else [round(x, 2) for x in v])
                      for k, v in summary[part].items()} for part in ("per_seed", "mean", "std")}
    return {"seeds": summary["seeds"], **rounded}
