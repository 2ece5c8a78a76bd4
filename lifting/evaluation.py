"""Score a method's test predictions and describe the protocol they were scored under."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lifting import metrics
from lifting.data.align import S9_DAMAGED_SEQUENCES, SUBSAMPLE_STEP, LiftingData, Protocol
from lifting.data.schema import poses_to_frame
from lifting.skeleton import get_joint_set


def protocol_block(data_source: str, data: LiftingData, protocol: Protocol, test_subjects, flip_test: bool,
                   checkpoint_rule: str, budget: dict) -> dict:
    """Everything needed to compare the numbers with a paper's (DESIGN §4)."""
    return {
        "data_source": data_source,
        "test_subjects": list(test_subjects),
        "excluded_sequences": [f"S9/{s}" for s in S9_DAMAGED_SEQUENCES] if protocol.exclude_s9_damaged else [],
        "test_frame_stride": SUBSAMPLE_STEP if protocol.test_every50 else 1,
        "train_frame_stride": protocol.train_stride,
        "joint_set": data.joint_set,
        "root": "both poses root-aligned (joint 0)",
        "flip_test": flip_test,
        "checkpoint": {"last": "last epoch", "val_best": "best epoch on a validation split of the training subjects",
                       "test_best": "best epoch ON THE TEST SET (as several papers do; optimistic)"}[checkpoint_rule],
        "budget": budget,
        "comparable_with_published_h36m": data_source == "h36m",
    }


def score(predicted_mm: np.ndarray, data: LiftingData) -> dict:
    """P1/P2/P3 by action and joint, action- and frame-mean, in mm rounded to 0.01."""
    names = list(get_joint_set(data.joint_set).names)
    return metrics.evaluate(predicted_mm, data.test_targets, data.test_meta["action"].to_numpy(), joint_names=names)


def predictions_frame(predicted_mm: np.ndarray, data: LiftingData) -> pd.DataFrame:
    """Test keys + predicted root-relative camera-frame joints (mm), for the report."""
    joint_set = get_joint_set(data.joint_set)
    return pd.concat([data.test_meta.reset_index(drop=True), poses_to_frame(predicted_mm, joint_set, "xyz")], axis=1)
