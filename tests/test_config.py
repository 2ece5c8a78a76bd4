"""params.yaml parsing: per-method overlays, typed stage overrides, and how a method's Config is merged."""

from pathlib import Path

import pytest
import yaml

from lifting.config import (BudgetParams, ParamsError, budget_for, for_method, parse_overrides, parse_section,
                            pipeline_runs, run_stages)
from lifting.models import modulated_gcn
from lifting.models.spec import input_kind
from lifting.runner import method_config


def test_for_method_overlays_the_methods_own_mapping_on_the_plain_keys():
    budget = {"max_epochs": 10, "train_stride": 2, "gridconv": {"max_epochs": 4, "batch_size": 64}}
    assert for_method(budget, "gridconv") == {"max_epochs": 4, "train_stride": 2, "batch_size": 64}
    assert for_method(budget, "semgcn") == {"max_epochs": 10, "train_stride": 2}


def test_a_methods_budget_can_differ_by_input_kind():
    budget = {"max_epochs": 10, "lr_scale": 3.0, "modulated_gcn": {"max_epochs": 6, "detected": {"max_epochs": 2}}}
    assert budget_for(budget, "modulated_gcn", "gt") == {"max_epochs": 6, "lr_scale": 3.0}
    assert budget_for(budget, "modulated_gcn", "detected") == {"max_epochs": 2, "lr_scale": 3.0}
    assert budget_for(budget, "semgcn", "detected") == {"max_epochs": 10, "lr_scale": 3.0}


def test_stage_overrides_are_read_as_yaml():
    assert parse_overrides(["sgt=learnable", "temperature_epochs=0.6", "padding=[c, z]", "dynamic=false"]) == {
        "sgt": "learnable", "temperature_epochs": 0.6, "padding": ["c", "z"], "dynamic": False}
    with pytest.raises(ParamsError, match="KEY=VALUE"):
        parse_overrides(["sgt"])


def test_method_config_merges_plain_model_keys_its_mapping_then_overrides():
    model = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())["model"]
    model["padding"] = ["c", "r"]
    model["gridconv"]["hidden"] = 128
    model["semgcn"]["hidden"] = 64
    cfg = method_config("gridconv", model, parse_overrides(["sgt=learnable", "temperature_epochs=2"]))
    assert (cfg.padding, cfg.hidden, cfg.sgt, cfg.temperature_epochs) == (("c", "r"), 128, "learnable", 2.0)
    # An explicit padding applies to every input, detections included.
    assert method_config("gridconv", model, kind="detected").padding == ("c", "r")
    # A plain key that is not one of the method's fields is not handed to it.
    assert method_config("semgcn", model).hidden == 64


def test_null_model_knobs_take_the_papers_choice_for_the_input_kind():
    model = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())["model"]
    assert method_config("gridconv", model, kind="gt").padding == ("c", "r")
    assert method_config("gridconv", model, kind="detected").padding == ("c", "z")
    assert method_config("modulated_gcn", model, kind="gt") == modulated_gcn.Config()
    assert method_config("modulated_gcn", model, kind="detected") == modulated_gcn.DETECTION
    model["modulated_gcn"]["dropout"] = 0.1  # an explicit value wins on both kinds
    assert method_config("modulated_gcn", model, kind="detected").dropout == 0.1
    assert method_config("modulated_gcn", model, kind="gt").dropout == 0.1
    assert input_kind("gt") == "gt" and {input_kind(s) for s in ("noisy", "cpn_ft_h36m_dbb", "detected")} == {"detected"}


@pytest.mark.parametrize("key,value,fragment", [("batch_size", -5, "batch_size must be >= 1"),
                                                ("batch_size", 0, "batch_size must be >= 1"),
                                                ("lr_scale", -1.0, "lr_scale must be > 0"),
                                                ("warmup", 1.0, "warmup"), ("decay", "step", "decay")])
def test_out_of_range_budget_values_name_the_key(key, value, fragment):
    values = {**BUDGET, key: value}
    with pytest.raises(ParamsError, match=fragment):
        parse_section(BudgetParams, values, "budget")


BUDGET = {"max_epochs": 3, "batch_size": None, "train_stride": 1, "lr_scale": 1.0, "decay": "cosine", "warmup": 0.0,
          "bf16_cpu": False, "max_seeds": None, "curve_points": None}


def test_a_mistyped_budget_names_the_key():
    values = {**BUDGET, "max_epochs": "ten"}
    with pytest.raises(ParamsError, match="max_epochs"):
        parse_section(BudgetParams, values, "budget")


def test_pipeline_runs_list_each_methods_inputs_in_order_and_gridconv_once_per_variant():
    params = {"runs": {"knn": ["gt", "noisy"], "semgcn": ["gt", "noisy"], "hgn": ["gt"], "gridconv": ["gt"],
                       "rie": []},
              "data": {"inputs2d": ["gt", "noisy"]}, "gridconv_sgt": ["handcrafted", "learnable"]}
    assert pipeline_runs(params) == [("knn", "gt"), ("knn", "noisy"), ("semgcn", "gt"), ("semgcn", "noisy"),
                                     ("hgn", "gt"), ("gridconv_handcrafted", "gt"), ("gridconv_learnable", "gt")]
    assert [run_stages(run, i) for run, i in pipeline_runs(params)][4:6] == [
        ("train_hgn@gt", "evaluate_hgn@gt"), ("train_gridconv@handcrafted-gt", "evaluate_gridconv@handcrafted-gt")]
    assert run_stages("rie", "gt") == ("train_rie_stage3@gt", "evaluate_rie@gt")


def test_pipeline_runs_refuse_an_input_the_pipeline_does_not_build():
    params = {"runs": {"knn": ["gt", "noisy"]}, "data": {"inputs2d": ["gt"]}, "gridconv_sgt": ["learnable"]}
    with pytest.raises(ParamsError, match=r"runs.knn .*\['noisy'\] not in data.inputs2d"):
        pipeline_runs(params)


@pytest.mark.parametrize("runs, message", [({"knn": [], "hgn": []}, "no method has a 2D input"),
                                           ({"knn": "gt"}, r"runs.knn must be a list"),
                                           (["knn"], "runs must map each method")])
def test_pipeline_runs_refuse_no_runs_and_malformed_lists(runs, message):
    with pytest.raises(ParamsError, match=message):
        pipeline_runs({"runs": runs, "data": {"inputs2d": ["gt"]}})


def test_earlier_stages_of_a_staged_method_have_their_own_budget():
    from lifting.config import budget_key

    assert budget_key("rie", "rie_stage1") == "rie_stage1" and budget_key("rie", "rie") == "rie"
    assert budget_key("gridconv", "gridconv_learnable") == "gridconv"  # a variant shares its method's
    budget = {"max_epochs": 5, "rie_stage1": {"max_epochs": 2}, "rie": {"max_epochs": 1}}
    assert budget_for(budget, budget_key("rie", "rie_stage1"), "gt")["max_epochs"] == 2
    assert budget_for(budget, budget_key("rie", "rie_stage2"), "gt")["max_epochs"] == 5
    assert budget_for(budget, budget_key("rie", "rie"), "gt")["max_epochs"] == 1


def test_a_runs_budget_can_set_its_own_curve_points():
    from stages import train as train_stage

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["train"]["curve_points"] = 12
    params["budget"]["rie_stage1"] = {**params["budget"].get("rie_stage1", {}), "curve_points": 3}
    args = train_stage.cli().parse_args(["--method", "rie", "--set", "stage=1", "--name", "rie_stage1",
                                         "--input2d", "gt", "--out", "x", "--log", "x.csv"])
    assert train_stage.settings(params, args)[1].curve_points == 3
    args = train_stage.cli().parse_args(["--method", "semgcn", "--input2d", "gt", "--out", "x", "--log", "x.csv"])
    assert train_stage.settings(params, args)[1].curve_points == 12
    with pytest.raises(ParamsError, match="curve_points"):
        parse_section(BudgetParams, {**BUDGET, "curve_points": -1}, "budget")
