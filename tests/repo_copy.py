"""A temporary copy of the repository for end-to-end tests of the DVC pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def repo_files() -> list[str]:
    """Files git would carry: tracked plus untracked-but-not-ignored."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
    return [f for f in listed if (REPO / f).is_file()]


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def copy_repository(root: Path) -> Path:
    """Copy the files git would carry into ``root`` (no dvc.lock, no data) and ``git init`` it."""
    for name in repo_files():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    (root / "dvc.lock").unlink(missing_ok=True)
    run(["git", "init", "-q"], root)
    run(["git", "config", "user.name", "lifting tests"], root)
    run(["git", "config", "user.email", "tests@lifting.invalid"], root)
    return root


def set_params(root: Path, **updates) -> None:
    """Set dotted keys in the copy's params.yaml (as `dvc exp run -S` would)."""
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in updates.items():
        section = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            section = section[key]
        assert leaf in section, dotted
        section[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def only_runs(**chosen) -> dict:
    """``set_params`` updates that run exactly ``chosen`` (method -> its 2D inputs); every other method none."""
    from lifting.models import METHOD_NAMES

    return {f"runs.{method}": list(chosen.get(method, [])) for method in METHOD_NAMES}
