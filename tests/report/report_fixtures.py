"""Synthetic artefacts shaped like the evaluate/train/align stages' outputs and the convergence runs.

Three runs per 2D input: ``knn`` (a lookup, one seed), ``simple_baseline`` (three seeds) and
``semgcn`` (one seed). ``semgcn`` on ``noisy`` is written in the *old* style (metrics without
seeds, configuration or samples seen; the old six-column training log), as files from before the
seeds contract still are. Convergence records exist for ``simple_baseline`` and ``semgcn`` on
``gt`` only.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from lifting import metrics as lifting_metrics
from lifting.data.h36m_cameras import h36m_cameras
from lifting.data.schema import cameras_to_frame, poses_to_frame, write_table
from lifting.io import write_json
from lifting.report import KEYS
from lifting.skeleton import COMMON_JOINTS, H36M16, H36M17

METHODS = ["knn", "simple_baseline", "semgcn"]
INPUTS2D = ["gt", "noisy"]
#: A run the artefacts hold on one input only (as GridConv on ``runs.gridconv: [gt]``).
PARTIAL_RUN, PARTIAL_INPUT = "gridconv_learnable", "gt"
JOINT_SETS = {"knn": H36M17, "simple_baseline": H36M17, "semgcn": H36M16}
NOISE_MM = {"knn": 40.0, "simple_baseline": 60.0, "semgcn": 90.0}
SEEDS = {"knn": [0], "simple_baseline": [0, 1, 2], "semgcn": [0]}
OLD_STYLE = {("semgcn", "noisy")}
BUDGET = {"batch_size": 256, "max_epochs": 3, "train_stride": 2}
#: Evaluation points per seed in the new-style logs: samples_seen = 100 k, core_seconds = 2 k.
POINTS = 10
PLATEAU_P1 = {"simple_baseline": 50.0, "semgcn": 80.0}
NEW_LOG = ["seed", "epoch", "step", "samples_seen", "core_seconds", "train_loss", "test_p1_mm", "val_mpjpe_mm", "lr",
           "seconds", "samples_per_s"]
OLD_LOG = ["epoch", "train_loss", "val_mpjpe_mm", "lr", "seconds", "samples_per_s"]


def synthetic_keys() -> pd.DataFrame:
    """Test rows (S9, S11) plus a few training rows: 2 actions x 2 cameras x 6 frames each."""
    rows = []
    for subject, split in (("S1", "train"), ("S9", "test"), ("S11", "test")):
        for action, sequence in (("Walk", "walk 1"), ("Jump", "jump 1")):
            for camera in ("54138969", "55011271"):
                for frame in range(6):
                    rows.append((subject, action, camera, sequence, frame, split))
    return pd.DataFrame(rows, columns=["subject", "action", "camera", "sequence", "frame", "split"])


def seeds_block(metrics: dict, seeds: list[int]) -> dict:
    """The ``seeds`` block: with three seeds the action-means 0, -0.5, +0.5 mm around the mean (sample
    std 0.5 exactly; the first seed's is the mean, as are the predictions written); with one seed
    the mean itself and a null std."""
    offsets = [0.0, -0.5, 0.5] if len(seeds) == 3 else [0.0] * len(seeds)
    names = {"p1": "mpjpe_mm", "p2": "p_mpjpe_mm", "p3": "n_mpjpe_mm"}
    means = {short: metrics[key]["action_mean"] for short, key in names.items()}
    means[f"p1_{COMMON_JOINTS.name}"] = metrics[COMMON_JOINTS.name]["mpjpe_mm"]["action_mean"]
    return {"seeds": seeds, "per_seed": {s: [m + o for o in offsets] for s, m in means.items()}, "mean": means,
            "std": {s: (0.5 if len(seeds) > 1 else None) for s in means}}


def make_record(method, input2d, predicted, truth, actions, joint_set, budget=BUDGET, source="embedded",
                checkpoint="last epoch", selected=3, old_style=False):
    trained = method != "knn"
    record = {
        "method": method,
        "input2d": input2d,
        "protocol": {"data_source": source, "test_subjects": ["S9", "S11"], "excluded_sequences": [],
                     "test_frame_stride": 1, "train_frame_stride": budget["train_stride"],
                     "joint_set": joint_set.name, "root": "both poses root-aligned (joint 0)", "flip_test": False,
                     "checkpoint": checkpoint, "budget": budget, "comparable_with_published_h36m": source == "h36m"},
        "metrics": lifting_metrics.evaluate(predicted, truth, actions, joint_names=joint_set.names),
        "parameters": {"knn": 0, "simple_baseline": 4_290_000, "semgcn": 270_000}.get(method, 1000),
        "training": {"seconds": 12.5 if trained else 0.01, "epochs": 3 if trained else 0,
                     "selected_epoch": selected if trained else 0, "samples": 100,
                     "samples_per_s": 800.0 if trained else None,
                     "schedule": {"epochs": 3, "batch_size": 256} if trained else None},
        "inference_samples_per_s": 5000.0,
    }
    if old_style:
        return record
    common = [joint_set.names.index(name) for name in COMMON_JOINTS.names]
    scored = lifting_metrics.evaluate(predicted[:, common], truth[:, common], actions, joint_names=COMMON_JOINTS.names)
    record["metrics"][COMMON_JOINTS.name] = {key: {part: scored[key][part] for part in ("action_mean", "frame_mean")}
                                             for key in ("mpjpe_mm", "p_mpjpe_mm")}
    seeds = SEEDS.get(method, [0])
    record["seeds"] = seeds_block(record["metrics"], seeds)
    record["protocol"].update({
        "configuration": "gt" if input2d == "gt" else "detected",
        "configuration_label": "paper's GT-2D model" if input2d == "gt" else "paper's detected-2D model",
        "train_frames": 24, "seeds": seeds,
        "test_curve": "per-epoch test-set P1 is logged only; it is never used for selection"})
    record["training"].update({"samples_seen": 100 * POINTS if trained else 0,
                               "core_seconds": 2.0 * POINTS if trained else 0.0})
    return record


def curve_value(method: str, input2d: str, seed: int, k: int) -> float:
    """simple_baseline falls 10 mm per point (still falling); semgcn alternates 250/251 (level)."""
    if method == "simple_baseline":
        return 300.0 - 10.0 * k + seed
    return 250.0 + (k % 2)


def write_log(path: Path, method: str, input2d: str, old_style: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(OLD_LOG if old_style else NEW_LOG)
        if method == "knn":
            return
        if old_style:
            for epoch in range(1, 4):
                writer.writerow([epoch, 1.0 / epoch, 300.0 / epoch, 0.001, 4.0, 800.0])
            return
        for seed in SEEDS.get(method, [0]):
            for k in range(1, POINTS + 1):
                writer.writerow([seed, 0.3 * k, k, 100 * k, 2.0 * k, 1.0 / k, curve_value(method, input2d, seed, k),
                                 "", 0.001, 1.0 * k, 800.0])


def convergence_record(method: str, input2d: str, plateau_p1: float, converged: bool = True) -> dict:
    """A convergence file: a paper recipe that reaches ``plateau_p1`` and a shorter budget recipe."""
    paper = [{"epoch": e, "samples_seen": 1000 * e, "core_seconds": 20.0 * e, "p1": plateau_p1 + 40.0 / e,
              "p2": 0.7 * plateau_p1 + 20.0 / e} for e in (1.0, 2.0, 4.0, 8.0, 16.0)]
    budget = [{"epoch": e, "samples_seen": 1000 * e, "core_seconds": 20.0 * e, "p1": plateau_p1 + 60.0 / e,
               "p2": 0.7 * plateau_p1 + 30.0 / e} for e in (1.0, 2.0)]
    return {"run": method, "method": method, "input2d": input2d, "configuration": input2d,
            "machine": {"cpu": "synthetic"}, "threads": 2,
            "recipes": [{"name": "paper", "label": "paper recipe (Adam 1e-3, batch 64)", "command": "python -m x",
                         "finished": True, "curve": paper},
                        {"name": "budget", "label": "budget recipe", "command": "python -m y", "finished": True,
                         "curve": budget}],
            "plateau": {"p1": plateau_p1 + 2.5, "p2": 0.7 * plateau_p1 + 1.25, "recipe": "paper",
                        "samples_seen": 16000, "core_seconds": 320.0, "converged": converged,
                        "rule": "last two points within 1 mm"}}


def write_artefacts(root: Path, methods=METHODS, inputs2d=INPUTS2D) -> dict[str, Path]:
    """Write metrics, training logs, convergence records, predictions, aligned targets/inputs and
    cameras under ``root``."""
    rng = np.random.default_rng(0)
    keys = synthetic_keys()
    n = len(keys)
    truth17 = rng.normal(scale=250.0, size=(n, 17, 3)).astype(np.float32)
    truth17[:, 0] = 0.0
    common = {"joint_set": "h36m17", "data_source": "embedded"}
    aligned = root / "data/aligned"
    targets = pd.concat([keys, poses_to_frame(truth17, H36M17, "xyz")], axis=1)
    write_table(targets, aligned / "targets.parquet",
                {**common, "table": "targets", "units": "mm", "frame": "camera, root-relative"})
    for source in inputs2d:
        uv = rng.uniform(-0.4, 0.4, size=(n, 17, 2)).astype(np.float32)
        frame = pd.concat([keys[["subject", "sequence", "camera", "frame"]], poses_to_frame(uv, H36M17, "uv")], axis=1)
        write_table(frame, aligned / f"inputs2d_{source}.parquet",
                    {**common, "table": "inputs2d", "units": "screen-normalised", "frame": "image", "source2d": source})
    cameras = cameras_to_frame({s: h36m_cameras(s) for s in ("S1", "S9", "S11")})
    write_table(cameras, root / "data/parquet/cameras.parquet",
                {"table": "cameras", "units": "px, mm", "frame": "camera->world", "data_source": "embedded"})
    test = (keys["split"] == "test").to_numpy()
    test_keys = keys.loc[test, KEYS].reset_index(drop=True)
    for method in methods:
        joint_set = JOINT_SETS.get(method, H36M17)
        keep = [H36M17.index(name) for name in joint_set.names]
        truth = truth17[test][:, keep]
        for k, input2d in enumerate(inputs2d):
            old = (method, input2d) in OLD_STYLE
            noise = rng.normal(scale=NOISE_MM.get(method, 50.0) * (1 + 0.2 * k), size=truth.shape)
            predicted = (truth + noise).astype(np.float32)
            frame = pd.concat([test_keys, poses_to_frame(predicted, joint_set, "xyz")], axis=1)
            write_table(frame, root / f"data/predictions/{method}-{input2d}.parquet",
                        {"table": "predictions", "joint_set": joint_set.name, "units": "mm",
                         "frame": "camera, root-relative", "method": method, "source2d": input2d})
            write_json(make_record(method, input2d, predicted, truth, test_keys["action"].to_numpy(), joint_set,
                                   old_style=old), root / f"metrics/{method}-{input2d}.json")
            write_log(root / f"metrics/train/{method}-{input2d}.csv", method, input2d, old_style=old)
            if input2d == "gt" and method in PLATEAU_P1:
                write_json(convergence_record(method, input2d, PLATEAU_P1[method]),
                           root / f"benchmarks/results/convergence/{method}-{input2d}.json")
    return {"metrics": root / "metrics", "train_logs": root / "metrics/train", "predictions": root / "data/predictions",
            "convergence": root / "benchmarks/results/convergence", "aligned": aligned,
            "cameras": root / "data/parquet/cameras.parquet"}


def small_record(method="semgcn", input2d="gt", budget=None, source="embedded", checkpoint="last epoch",
                 trained=True, p1=50.0, seeds=None, std=None, samples_seen=None) -> dict:
    """A hand-written metrics record with round numbers (old style unless ``seeds`` is given)."""
    budget = budget if budget is not None else dict(BUDGET)
    block = {"action_mean": p1, "frame_mean": p1 - 2.0, "by_action": {"Walk": p1 - 10.0, "Jump": p1 + 10.0},
             "by_joint": {"Hip": 0.0, "Head": 70.0}}
    record = {"method": method, "input2d": input2d,
              "protocol": {"data_source": source, "joint_set": "h36m16", "budget": budget, "checkpoint": checkpoint,
                           "flip_test": False, "comparable_with_published_h36m": source == "h36m"},
              "metrics": {"mpjpe_mm": block, "p_mpjpe_mm": {**block, "action_mean": 35.0},
                          "n_mpjpe_mm": {**block, "action_mean": 45.0}, "num_frames": 10, "num_actions": 2,
                          "h36m16": {"mpjpe_mm": {"action_mean": p1, "frame_mean": p1 - 2.0},  # = its own: 16 joints
                                     "p_mpjpe_mm": {"action_mean": 35.0, "frame_mean": 33.0}}},
              "parameters": 270000,
              "training": {"seconds": 10.0, "epochs": 3, "selected_epoch": 3, "samples": 10, "samples_per_s": 3.0,
                           "schedule": {"epochs": 3} if trained else None},
              "inference_samples_per_s": 100.0}
    if seeds is not None:
        record["seeds"] = {"seeds": list(range(seeds)), "per_seed": {}, "mean": {"p1": p1, "p2": 35.0, "p3": 45.0},
                           "std": {"p1": std, "p2": std, "p3": std, "p1_h36m16": std}}
        record["protocol"]["seeds"] = list(range(seeds))
    if samples_seen is not None:
        record["training"]["samples_seen"] = samples_seen
        record["training"]["core_seconds"] = samples_seen / 100.0
    return record


def log_rows(method: str, input2d: str, curves: dict[int, list[float]], step_samples: int = 1000) -> pd.DataFrame:
    """A training log (:data:`lifting.report.LOG_COLUMNS`) with one test-set curve per seed."""
    rows = [{"method": method, "input2d": input2d, "seed": float(seed), "epoch": float(k), "step": float(k),
             "samples_seen": float(step_samples * k), "core_seconds": float(k), "train_loss": 1.0 / k,
             "test_p1_mm": value, "val_mpjpe_mm": np.nan, "lr": 0.001, "seconds": 1.0, "samples_per_s": 100.0}
            for seed, values in curves.items() for k, value in enumerate(values, start=1)]
    return pd.DataFrame(rows)
