"""Every stage depends on exactly the params keys it reads, found from its code, not from a list.

DVC re-runs a stage only when a params key it declares in dvc.yaml changes; a key the stage reads
but does not declare makes `dvc exp run -S key=...` report the old metrics as a new experiment.
For every stage of dvc.yaml (each matrix item expanded with params.yaml's values), this test
replaces each key of params.yaml in turn with a value no stage accepts and calls the stage's
``settings(params, args)``, the one function through which it reads params.yaml. A key whose
replacement changes the settings, or makes them fail, is read; it must be declared (itself or a
section above it). Conversely every declared key must be read, or it re-runs the stage for nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import itertools
import re
import shlex
from pathlib import Path

import pytest
import yaml

from lifting.config import BudgetParams

REPO = Path(__file__).resolve().parents[1]
PIPELINE = yaml.safe_load((REPO / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
#: A value of no params type: a stage that reads the key fails or passes it on changed.
SENTINEL = "\x00not-a-valid-value"
#: Plain budget keys: the default of every method, declared by every training stage.
PLAIN_BUDGET = {f"budget.{field.name}" for field in dataclasses.fields(BudgetParams)}
#: Stages whose dependency is the whole params.yaml file rather than keys of it.
WHOLE_FILE = {"check_params"}


def _lookup(path: str):
    node = PARAMS
    for part in path.split("."):
        node = node[part]
    return node


def _substitute(text: str, item: dict) -> str:
    """dvc.yaml interpolation: ``${item.x}`` from the matrix item, ``${a.b}`` from params.yaml."""
    return re.sub(r"\$\{([^}]+)\}", lambda m: str(item[m.group(1)[5:]] if m.group(1).startswith("item.")
                                                   else _lookup(m.group(1))), text)


def _instances():
    """(stage name, stage module, argv, declared keys) for every stage instance of dvc.yaml."""
    for name, stage in PIPELINE["stages"].items():
        if name in WHOLE_FILE:
            continue
        matrix = stage.get("matrix", {})
        values = {key: (_lookup(v[2:-1]) if isinstance(v, str) else v) for key, v in matrix.items()}
        # a matrix the default leaves empty (e.g. runs.videopose3d: []) is still checked, on the first input
        values = {key: v or ([PARAMS["data"]["inputs2d"][0]] if key == "input2d" else v) for key, v in values.items()}
        for combo in itertools.product(*values.values()):
            item = dict(zip(values, combo))
            argv = tuple(shlex.split(_substitute(stage["cmd"], item)))
            assert argv[:3] == ("python", "-m", argv[2]) and argv[2].startswith("stages.")
            declared = {_substitute(key, item) for key in stage.get("params", [])}
            label = name + ("@" + "-".join(map(str, combo)) if combo else "")
            yield pytest.param(name, argv[2], argv[3:], declared, id=label)


def _leaves(node, prefix=""):
    """Dotted paths of every value of params.yaml that is not a mapping (lists are leaves)."""
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, path + ".")
        else:
            yield path


def _replaced(path: str) -> dict:
    params = copy.deepcopy(PARAMS)
    node = params
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = SENTINEL
    return params


def _covers(declared: set[str], path: str) -> bool:
    return any(path == key or path.startswith(key + ".") for key in declared)


@functools.lru_cache(maxsize=None)
def _read_keys(module_name: str, argv: tuple[str, ...]) -> set[str]:
    """The keys of params.yaml whose replacement changes the stage's settings or makes them fail."""
    module = importlib.import_module(module_name)
    args = module.cli().parse_args(argv)
    baseline = module.settings(PARAMS, args)
    read = set()
    for path in _leaves(PARAMS):
        try:
            changed = module.settings(_replaced(path), args) != baseline
        except Exception:  # noqa: BLE001 (any failure means the stage looked at the value)
            changed = True
        if changed:
            read.add(path)
    return read


@pytest.mark.parametrize("stage, module_name, argv, declared", list(_instances()))
def test_every_key_a_stage_reads_is_declared(stage, module_name, argv, declared):
    undeclared = sorted(path for path in _read_keys(module_name, argv) if not _covers(declared, path))
    assert not undeclared, f"{module_name} reads {undeclared} but dvc.yaml does not declare them"


@pytest.mark.parametrize("stage", [name for name in PIPELINE["stages"] if name not in WHOLE_FILE])
def test_every_declared_key_is_read_by_some_item_of_the_stage(stage):
    """A key that no item of the stage reads only re-runs it for nothing. Exception: the plain
    ``budget`` keys, which every training stage declares even where its method's own mapping
    overrides them (``budget.gridconv.max_epochs``), so that removing the override re-runs it."""
    unused = None
    for _, module_name, argv, declared in (p.values for p in _instances() if p.values[0] == stage):
        read = _read_keys(module_name, argv)
        here = {key for key in declared if not any(_covers({key}, path) for path in read)} - PLAIN_BUDGET
        unused = here if unused is None else unused & here
    assert not unused, f"dvc.yaml declares {sorted(unused)} for {stage}, which no item of it reads"


def test_the_check_covers_every_stage_that_reads_params():
    modules = {re.search(r"python -m (stages\.\w+)", stage["cmd"]).group(1)
               for name, stage in PIPELINE["stages"].items() if name not in WHOLE_FILE}
    assert {param.values[1] for param in _instances()} == modules
    for name in modules:
        assert hasattr(importlib.import_module(name), "settings"), name
