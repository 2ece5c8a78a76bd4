"""lifting/runner.py's own pieces: run settings from the params sections, the validation split, the run's label."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from lifting.config import BudgetParams, TrainParams
from lifting.models import semgcn
from lifting.runner import RunSettings, configuration_label, validation_mask

BUDGET = BudgetParams(max_epochs=None, batch_size=256, train_stride=4, lr_scale=0.5, decay="cosine", warmup=0.1,
                      bf16_cpu=True, max_seeds=2, curve_points=None)
TRAIN = TrainParams(seeds=(0, 1, 2), threads=3, curve_points=7, curve_test_stride=9, val_fraction=0.2,
                    checkpoint="val_best")


def test_run_settings_take_each_field_from_its_section_and_the_run_its_own_choices():
    settings = RunSettings.from_params(BUDGET, TRAIN, bf16_cpu=False)
    assert settings == RunSettings(seeds=(0, 1), threads=3, max_epochs=None, batch_size=256, train_stride=4,
                                   lr_scale=0.5, decay="cosine", warmup=0.1, bf16_cpu=False, curve_points=7,
                                   curve_test_stride=9, val_fraction=0.2, checkpoint="val_best")
    own = RunSettings.from_params(dataclasses.replace(BUDGET, curve_points=2, max_seeds=None), TRAIN, bf16_cpu=True)
    assert (own.curve_points, own.seeds, own.bf16_cpu) == (2, (0, 1, 2), True)
    assert settings.budget() == {"max_epochs": None, "batch_size": 256, "train_stride": 4, "lr_scale": 0.5,
                                 "decay": "cosine", "warmup": 0.1, "bf16_cpu": False}


def test_the_validation_split_holds_out_whole_sequences_deterministically():
    meta = pd.DataFrame({"subject": np.repeat(["S1", "S5", "S6", "S7"], 50),
                         "sequence": np.tile(np.repeat([f"seq{k}" for k in range(5)], 10), 4)})
    mask = validation_mask(meta, 0.3)
    groups = (meta["subject"] + "/" + meta["sequence"]).to_numpy()
    assert all(len(set(mask[groups == g])) == 1 for g in set(groups))  # a sequence is in or out as a whole
    assert 0 < mask.sum() < len(mask) and np.array_equal(mask, validation_mask(meta, 0.3))
    assert not validation_mask(meta, 0.0).any()


def test_the_run_label_names_every_field_changed_from_the_papers():
    setup = semgcn.PAPER["gt"]
    assert configuration_label(setup, setup.config, None) == setup.label
    changed = dataclasses.replace(setup.config, dropout=0.5)
    assert configuration_label(setup, changed, None) == f"{setup.label}, not the paper's: dropout=0.5"
