"""Which repository files a stage runs: the import closure of its modules, read from the source (``ast``).

A stage's code dependencies in ``dvc.yaml`` must be exactly this set (``tests/test_dvc_yaml.py``
checks it, and ``python -m lifting.code_deps`` prints what each stage lacks or lists in excess).
Every ``import`` statement counts, at module level or inside a function (a function may be called),
except under ``if TYPE_CHECKING:``; importing ``a.b.c`` runs ``a/__init__.py`` and
``a/b/__init__.py`` as well. Imports whose name is computed at run time (the method registry's
``importlib``) are invisible here: the stage names those modules itself (:func:`stage_roots`).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shlex
import sys
from functools import cache
from pathlib import Path

from lifting.models import METHOD_NAMES, method_module_name

PACKAGES = ("lifting", "stages")
"""The repository's importable packages; imports of anything else (torch, numpy ...) are not followed."""


def module_file(root: Path, module: str) -> Path | None:
    """The file of a dotted module name inside ``root`` (``pkg/__init__.py`` for a package), or None."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_inits(root: Path, module: str) -> list[Path]:
    """The ``__init__.py`` of every package above ``module`` (Python runs them on import)."""
    parts = module.split(".")
    return [f for i in range(1, len(parts)) if (f := module_file(root, ".".join(parts[:i]))) is not None]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(path: Path, module: str) -> set[str]:
    """Dotted names of the modules ``path`` (module ``module``) imports, candidates for submodules
    included (``from a import b`` yields ``a`` and ``a.b``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return _imports(ast.parse(path.read_text(), filename=str(path)), package)


def notebook_modules(path: Path) -> set[str]:
    """The modules a notebook's code cells import (papermill runs them in the stage's process)."""
    cells = json.loads(path.read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return _imports(ast.parse(source, filename=str(path)), "")


def _imports(tree: ast.Module, package: str) -> set[str]:
    names: set[str] = set()
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
        pending.extend(ast.iter_child_nodes(node))
    return names


@cache
def _closure(root: Path, module: str) -> frozenset[Path]:
    seen: set[str] = set()
    files: set[Path] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(root, name)
        if path is None:
            continue
        files.add(path)
        files.update(_package_inits(root, name))
        pending.extend(imported_modules(path, name))
        pending.extend(".".join(name.split(".")[:i]) for i in range(1, len(name.split("."))))
    return frozenset(files)


def import_closure(root: Path, modules) -> set[str]:
    """Repository files (paths relative to ``root``, posix) that importing every module of ``modules`` runs."""
    root = root.resolve()
    files = set().union(*(_closure(root, m) for m in modules)) if modules else set()
    return {f.relative_to(root).as_posix() for f in files}


def stage_roots(cmd: str, deps=(), root: Path = Path(".")) -> list[str]:
    """The modules a stage's command runs: its ``python -m stages.X`` module and, for a training,
    evaluation or robustness stage, its method's module (``--method``; evaluation (and MPI-INF-3DHP's)
    and robustness read it from the run's ``model.pt``, named in ``--model
    data/checkpoints/<run>-<input>/model.pt``); ``check_params``
    validates every method's section, so it runs every method's module; a notebook among ``deps``
    (the report's) runs what its cells import."""
    words = shlex.split(cmd)
    stage = words[words.index("-m") + 1]
    roots = [stage]
    if stage == "stages.check_params":
        roots += [method_module_name(m) for m in METHOD_NAMES]
    if "--method" in words:
        roots.append(method_module_name(words[words.index("--method") + 1]))
    if stage in ("stages.evaluate", "stages.evaluate_3dhp", "stages.robustness"):
        run = Path(words[words.index("--model") + 1]).parent.name.rsplit("-", 1)[0]
        roots.append(method_module_name(_method_of_run(run)))
    for dep in deps:
        if dep.endswith(".ipynb"):
            roots += sorted(notebook_modules(root / dep))
    return roots


def _method_of_run(run: str) -> str:
    """The method of a run name: ``hgn``, ``gridconv_learnable`` -> ``gridconv``, ``rie_stage1`` -> ``rie``."""
    for method in sorted(METHOD_NAMES, key=len, reverse=True):
        if run == method or re.fullmatch(rf"{method}_\w+", run):
            return method
    raise ValueError(f"run {run!r} names no registered method")


def code_files(deps, root: Path) -> set[str]:
    """The repository Python files among a stage's ``deps`` (a folder counts as every ``.py`` in it)."""
    files = set()
    for dep in deps:
        path = root / dep
        if dep.split("/")[0] not in PACKAGES:
            continue
        if path.is_dir():
            files |= {p.relative_to(root).as_posix() for p in path.rglob("*.py")}
        elif dep.endswith(".py"):
            files.add(dep)
    return files


def stage_mismatches(stages: dict, root: Path) -> dict[str, tuple[set[str], set[str]]]:
    """For each expanded stage (``{name: {"cmd": ..., "deps": [...]}}``) whose code deps differ from its
    import closure: (files it runs but does not list, code files it lists but does not run)."""
    found = {}
    for name, stage in stages.items():
        runs = import_closure(root, stage_roots(stage["cmd"], stage.get("deps", []), root))
        listed = code_files(stage.get("deps", []), root)
        if runs != listed:
            found[name] = (runs - listed, listed - runs)
    return found


def expanded_stages(root: Path) -> dict[str, dict]:
    """Every stage of ``root/dvc.yaml`` as DVC expands it (matrix items resolved): name -> cmd and deps."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {stage.addressing: {"cmd": stage.cmd, "deps": [str(Path(d.def_path)) for d in stage.deps]}
                for stage in repo.index.stages}


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description="Print each dvc.yaml stage whose code deps differ from its import closure.")
    cli.add_argument("--root", default=".", help="the repository root (default: .)")
    root = Path(cli.parse_args(argv).root).resolve()
    mismatches = stage_mismatches(expanded_stages(root), root)
    for name, (missing, extra) in sorted(mismatches.items()):
        print(name)
        for file in sorted(missing):
            print(f"  + {file}")
        for file in sorted(extra):
            print(f"  - {file}")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
