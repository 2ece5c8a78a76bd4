"""The methods: one module per method, found by name and imported only when that method is asked for.

Each module exposes ``Config``, ``build(cfg, num_joints)`` (HGN: ``build(cfg, num_joints, surface)``;
:func:`lifting.runner.build_model` builds any), ``INPUT_SPEC`` and ``PAPER_SCHEDULE``
(see :mod:`lifting.models.spec`); ``PAPER_SCHEDULE is None`` marks a lookup method with no training.
Importing this package imports no method, so a stage that trains one method runs (and depends on)
that method's code only.
"""

from __future__ import annotations

import importlib
from types import ModuleType

METHOD_NAMES = ("knn", "simple_baseline", "semgcn", "modulated_gcn", "hgn", "gridconv", "videopose3d", "rie",
                "context_poseformer")
"""Every registered method, in the order the report lists them; ``lifting/models/<name>.py`` is its module."""


def method_module_name(method: str) -> str:
    """The dotted module name of ``method`` (``ValueError`` naming the known ones if it is not registered)."""
    if method not in METHOD_NAMES:
        raise ValueError(f"unknown method {method!r}; known: {sorted(METHOD_NAMES)}")
    return f"{__name__}.{method}"


def method_module(method: str) -> ModuleType:
    """The module of ``method``, imported on first use."""
    return importlib.import_module(method_module_name(method))
