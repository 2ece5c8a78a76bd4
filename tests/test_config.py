"""params.yaml parsing: per-method overlays, typed stage overrides, and how a method's Config is merged."""

from pathlib import Path

import pytest
import yaml

from lifting.config import BudgetParams, ParamsError, for_method, parse_overrides, parse_section
from lifting.runner import method_config


def test_for_method_overlays_the_methods_own_mapping_on_the_plain_keys():
    budget = {"max_epochs": 10, "train_stride": 2, "gridconv": {"max_epochs": 4, "batch_size": 64}}
    assert for_method(budget, "gridconv") == {"max_epochs": 4, "train_stride": 2, "batch_size": 64}
    assert for_method(budget, "semgcn") == {"max_epochs": 10, "train_stride": 2}


def test_stage_overrides_are_read_as_yaml():
    assert parse_overrides(["sgt=learnable", "temperature_epochs=0.6", "padding=[c, z]", "dynamic=false"]) == {
        "sgt": "learnable", "temperature_epochs": 0.6, "padding": ["c", "z"], "dynamic": False}
    with pytest.raises(ParamsError, match="KEY=VALUE"):
        parse_overrides(["sgt"])


def test_method_config_merges_plain_model_keys_its_mapping_then_overrides():
    model = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())["model"]
    model["padding"] = ["c", "z"]
    model["gridconv"]["hidden"] = 128
    model["semgcn"]["hidden"] = 64
    cfg = method_config("gridconv", model, parse_overrides(["sgt=learnable", "temperature_epochs=2"]))
    assert (cfg.padding, cfg.hidden, cfg.sgt, cfg.temperature_epochs) == (("c", "z"), 128, "learnable", 2.0)
    # A plain key that is not one of the method's fields is not handed to it.
    assert method_config("semgcn", model).hidden == 64


def test_a_mistyped_budget_names_the_key():
    values = {"max_epochs": "ten", "batch_size": None, "train_stride": 2, "lr_scale": 1.0, "cosine": False}
    with pytest.raises(ParamsError, match="max_epochs"):
        parse_section(BudgetParams, values, "budget")
