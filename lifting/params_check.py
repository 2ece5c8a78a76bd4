"""Every key of params.yaml is known: a typo stops the run, naming the key and the closest valid one.

DVC hands a stage only the params keys it declares, and ``dvc exp run -S +model.paddin=c`` adds a
key that no stage declares: without this check the experiment "succeeds" with the old metrics.
:func:`unknown_keys` walks the whole file against the sections' dataclasses and each method's
``Config``; :func:`check_params` also parses every section (types and ranges) and every method's
configuration for both input kinds, so a bad value fails before any stage trains. The
``check_params`` stage, which depends on the whole file, runs :func:`check_params` on every change
to it, and every other stage depends on its output (so it imports every method's module, and the
other stages none they do not run).
"""

from __future__ import annotations

import dataclasses
import difflib

from lifting.config import (REPORT_DEFAULTS, STAGED_RUNS, BudgetParams, DataParams, EvalParams, ParamsError,
                            RenderParams, RobustnessParams, TrainParams, budget_for, parse_section, pipeline_runs)
from lifting.detector import DetectorSettings
from lifting.models import METHOD_NAMES, method_module
from lifting.models.spec import KINDS
from lifting.runner import method_config

#: Top-level keys: the sections parsed into dataclasses, then the lists (``runs`` and ``model`` are mappings).
SECTIONS = {"data": DataParams, "budget": BudgetParams, "train": TrainParams, "eval": EvalParams,
            "render": RenderParams, "detector": DetectorSettings, "robustness": RobustnessParams}
LISTS = ("gridconv_sgt",)
GRIDCONV_SGT = ("handcrafted", "learnable")


def _fields(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _unknown(path: str, key: str, valid) -> str:
    close = difflib.get_close_matches(str(key), [str(v) for v in valid], n=1, cutoff=0.6)
    hint = f"did you mean {path}{close[0]}?" if close else f"known here: {', '.join(sorted(map(str, valid)))}"
    return f"params.yaml: unknown key {path}{key} ({hint})"


def unknown_keys(params: dict) -> list[str]:
    """One message per key of ``params`` that no stage reads, with the closest valid key."""
    problems = []
    top = [*SECTIONS, *LISTS, "runs", "model", "report"]
    for key, value in params.items():
        if key not in top:
            problems.append(_unknown("", key, top))
        elif key in SECTIONS and isinstance(value, dict):
            valid = _fields(SECTIONS[key])
            for name, inner in value.items():
                if key == "budget" and isinstance(inner, dict):
                    problems += _budget_mapping(name, inner, valid)
                elif name not in valid:
                    problems.append(_unknown(f"{key}.", name, valid + (list(METHOD_NAMES) if key == "budget" else [])))
        elif key == "runs" and isinstance(value, dict):
            problems += [_unknown("runs.", name, METHOD_NAMES) for name in value if name not in METHOD_NAMES]
        elif key == "model" and isinstance(value, dict):
            problems += _model_keys(value)
        elif key == "report" and isinstance(value, dict):
            problems += [_unknown("report.", name, REPORT_DEFAULTS) for name in value if name not in REPORT_DEFAULTS]
    return problems


def _budget_mapping(method: str, mapping: dict, valid: list[str]) -> list[str]:
    """``budget.<method>`` or ``budget.<staged run>`` (budget keys, or per-kind mappings of them)."""
    if method not in METHOD_NAMES and method not in STAGED_RUNS:
        return [_unknown("budget.", method, [*valid, *METHOD_NAMES, *STAGED_RUNS])]
    problems = []
    for name, inner in mapping.items():
        if name in KINDS and isinstance(inner, dict):
            problems += [_unknown(f"budget.{method}.{name}.", k, valid) for k in inner if k not in valid]
        elif name not in valid:
            problems.append(_unknown(f"budget.{method}.", name, [*valid, *KINDS]))
    return problems


def _model_keys(model: dict) -> list[str]:
    """``model``: plain keys are a field of some method's Config; ``model.<method>`` its own fields."""
    fields = {method: _fields(method_module(method).Config) for method in METHOD_NAMES}
    shared = sorted({f for names in fields.values() for f in names})
    problems = []
    for name, inner in model.items():
        if isinstance(inner, dict):
            if name not in METHOD_NAMES:
                problems.append(_unknown("model.", name, [*METHOD_NAMES, *shared]))
            else:
                problems += [_unknown(f"model.{name}.", k, fields[name]) for k in inner if k not in fields[name]]
        elif name not in shared:
            problems.append(_unknown("model.", name, [*shared, *METHOD_NAMES]))
    return problems


def check_params(params: dict) -> None:
    """Raise :class:`ParamsError` for the first unknown key or invalid value of a whole params.yaml."""
    problems = unknown_keys(params)
    if problems:
        raise ParamsError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    for section in ("data", "train", "eval", "render", "detector", "robustness"):
        parse_section(SECTIONS[section], params.get(section, {}), section)
    pipeline_runs(params)  # the runs: their types, and how they fit the 2D inputs
    for method in METHOD_NAMES:
        for kind in KINDS:
            parse_section(BudgetParams, budget_for(params.get("budget", {}), method, kind), f"budget ({method}, {kind})")
            method_config(method, params.get("model", {}), None, kind)
    for run in STAGED_RUNS:
        for kind in KINDS:
            parse_section(BudgetParams, budget_for(params.get("budget", {}), run, kind), f"budget ({run}, {kind})")
    unknown_sgt = [s for s in params.get("gridconv_sgt", []) if s not in GRIDCONV_SGT]
    if unknown_sgt:
        raise ParamsError(f"gridconv_sgt: unknown {unknown_sgt}; known: {list(GRIDCONV_SGT)}")
