"""Score a method's test predictions and describe the protocol they were scored under."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lifting import metrics
from lifting.data.align import S9_DAMAGED_SEQUENCES, SUBSAMPLE_STEP
from lifting.data.schema import poses_to_frame
from lifting.data.split import LiftingData, Protocol, run_keys
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


def protocol_block(data_source: str, joint_set: str, protocol: Protocol, test_subjects, flip_test: bool,
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
        "joint_set": joint_set,
        "root": "both poses root-aligned (joint 0)",
        "pck_auc": PCK_RULE,
        "flip_test": flip_test,
        "checkpoint": {"last": "last epoch", "val_best": "best epoch on a validation split of the training subjects",
                       "test_best": "best epoch ON THE TEST SET (as several papers do; optimistic)"}[checkpoint_rule],
        "budget": budget,
        "comparable_with_published_h36m": data_source == "h36m",
    }


def predictions_frame(predicted_mm: np.ndarray, meta: pd.DataFrame, joint_set: str) -> pd.DataFrame:
    """The rows' keys (``meta``) + their predicted (n, J, 3) root-relative camera-frame joints (mm), for the report."""
    return pd.concat([meta.reset_index(drop=True), poses_to_frame(predicted_mm, get_joint_set(joint_set), "xyz")],
                     axis=1)


def pck_joints(joint_set: str) -> list[int]:
    """Indices, in ``joint_set``'s order, of the joints PCK and AUC are scored on (all but :data:`PCK_EXCLUDED`)."""
    return [i for i, name in enumerate(get_joint_set(joint_set).names) if name not in PCK_EXCLUDED]


def run_ids(meta: pd.DataFrame) -> np.ndarray | None:
    """(N,) one id per (subject, sequence, camera) run when the rows are every frame of their runs
    in order (then MPJVE, the velocity error, is defined); None otherwise (e.g. every 50th frame)."""
    ids = pd.factorize(run_keys(meta))[0]
    frames = meta["frame"].to_numpy()
    same = ids[1:] == ids[:-1]
    if not np.all(np.diff(frames)[same] == 1) or len(np.unique(ids[np.r_[True, ~same]])) != ids.max() + 1:
        return None
    return ids


class SeedScores:
    """One seed's scores of the test rows, which may come in parts of whole runs (memory flat in the
    test size): each protocol on the run's own joints, PCK@150 mm and AUC (``pck150_pct``,
    ``auc_pct``, %) on :func:`pck_joints`, and, under ``COMMON_JOINTS.name`` ("h36m16"), P1 and P2
    on the joints every method predicts (the ranking's). MPJVE is scored where every part is every
    frame of its runs (:func:`run_ids`)."""

    def __init__(self, joint_set: str):
        self.names = list(get_joint_set(joint_set).names)
        self.common = [self.names.index(name) for name in COMMON_JOINTS.names]
        self.pck = pck_joints(joint_set)
        self.own = metrics.Evaluation(self.names)
        self.on_common = metrics.Evaluation(COMMON_JOINTS.names)
        self.pck_sums = metrics.PckAucSums([self.names[i] for i in self.pck])

    def add(self, predicted_mm: np.ndarray, targets_mm: np.ndarray, meta: pd.DataFrame) -> None:
        """Score (n, J, 3) predictions of (n, J, 3) targets (mm) whose keys are ``meta`` (whole runs)."""
        actions = meta["action"].to_numpy()
        self.own.add(predicted_mm, targets_mm, actions, sequence_ids=run_ids(meta))
        self.on_common.add(predicted_mm[:, self.common], targets_mm[:, self.common], actions)
        self.pck_sums.add(metrics.joint_errors_mpjpe(predicted_mm, targets_mm)[:, self.pck], actions)

    def result(self) -> dict:
        """Unrounded metrics, as :func:`score_seeds` gives them per seed."""
        result = self.own.result(decimals=None)
        result.update(self.pck_sums.summary())
        scored = self.on_common.result(decimals=None)
        result[COMMON_JOINTS.name] = {name: {part: scored[name][part] for part in ("action_mean", "frame_mean")}
                                      for name in COMMON_SUMMARY.values()}
        return result


def score_seeds(predictions_mm: list[np.ndarray], data: LiftingData, seeds: list[int]) -> tuple[dict, dict]:
    """Score one prediction of ``data``'s test rows per seed (:class:`SeedScores`): (the mean over
    seeds of every metric, the seed summary: :func:`summarize_seed_scores`)."""
    scores = [SeedScores(data.joint_set) for _ in predictions_mm]
    for score, predicted in zip(scores, predictions_mm):
        score.add(predicted, data.test_targets, data.test_meta)
    return summarize_seed_scores([score.result() for score in scores], seeds)


def summarize_seed_scores(results: list[dict], seeds) -> tuple[dict, dict]:
    """:func:`summarize_seeds` of the seeds' :meth:`SeedScores.result`, whose headline numbers are
    the action means of :data:`SEED_SUMMARY` and of :data:`COMMON_SUMMARY` on the common joints."""
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
