"""The import closure on a small package written here: known answers for each kind of import."""

import json
from pathlib import Path

from lifting.code_deps import import_closure, notebook_modules, stage_mismatches, stage_roots

FILES = {
    "lifting/__init__.py": "",
    "lifting/a.py": "import numpy\nfrom lifting import b\n",
    "lifting/b.py": "def late():\n    from lifting.sub.c import f\n    return f\n",
    "lifting/sub/__init__.py": "",
    "lifting/sub/c.py": "from . import d\nfrom .d import g\nfrom typing import TYPE_CHECKING\n"
                        "if TYPE_CHECKING:\n    from lifting import never\n",
    "lifting/sub/d.py": "g = 1\n",
    "lifting/never.py": "",
    "lifting/alone.py": "",
    "stages/__init__.py": "",
    "stages/s.py": "from lifting.a import b\n",
}


def _tree(root: Path) -> Path:
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_closure_follows_function_level_relative_and_package_imports(tmp_path):
    root = _tree(tmp_path)
    assert import_closure(root, ["stages.s"]) == {
        "stages/__init__.py", "stages/s.py", "lifting/__init__.py", "lifting/a.py", "lifting/b.py",
        "lifting/sub/__init__.py", "lifting/sub/c.py", "lifting/sub/d.py"}  # not never.py (TYPE_CHECKING), not alone.py


def test_a_leaf_module_runs_its_packages_inits(tmp_path):
    assert import_closure(_tree(tmp_path), ["lifting.sub.d"]) == {"lifting/__init__.py", "lifting/sub/__init__.py",
                                                                  "lifting/sub/d.py"}


def test_a_stage_listing_too_little_or_too_much_is_named_with_the_files(tmp_path):
    root = _tree(tmp_path)
    stages = {"good": {"cmd": "python -m stages.s", "deps": sorted(import_closure(root, ["stages.s"]))},
              "bad": {"cmd": "python -m stages.s --out x", "deps": ["stages/s.py", "lifting/alone.py", "data/x"]}}
    (missing, extra), = stage_mismatches(stages, root).values()
    assert list(stage_mismatches(stages, root)) == ["bad"]
    assert "lifting/sub/d.py" in missing and "stages/s.py" not in missing and extra == {"lifting/alone.py"}


def test_a_notebooks_imports_are_roots_of_its_stage(tmp_path):
    root = _tree(tmp_path)
    cells = [{"cell_type": "code", "source": ["%matplotlib inline\n", "from lifting import a as A\n"]},
             {"cell_type": "markdown", "source": ["import lifting.never"]}]
    (root / "report.ipynb").write_text(json.dumps({"cells": cells}))
    assert notebook_modules(root / "report.ipynb") == {"lifting", "lifting.a"}
    assert stage_roots("python -m stages.s", ["report.ipynb"], root) == ["stages.s", "lifting", "lifting.a"]
