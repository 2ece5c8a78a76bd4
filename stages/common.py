"""What every stage shares: reading params.yaml and reporting errors as one clear line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import yaml

from lifting.config import DataParams, ParamsError, TrainParams, parse_section
from lifting.errors import DataError
from lifting.io import atomic_dir, write_json


def read_params(path: str | Path) -> dict:
    """params.yaml as a dict. Its keys and values were checked by the ``check_params`` stage, which
    every other stage depends on (:mod:`lifting.params_check`); each stage parses the keys it reads."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "params file not found", "run the stage from the repository root") from None
    except yaml.YAMLError as err:
        raise DataError(path, f"not valid YAML ({err})", "fix the syntax (dvc exp run -S writes valid YAML)") from None
    if not isinstance(params, dict):
        raise DataError(path, "expected a mapping of sections", "restore params.yaml from git")
    return params


def data_params(params: dict, *fields: str) -> DataParams:
    """The ``data`` section, reading only ``fields`` (the keys the stage declares in dvc.yaml)."""
    return parse_section(DataParams, params.get("data", {}), "data", only=fields)


def train_threads(params: dict) -> int:
    """``train.threads``, for a stage that reads no other key of the train section."""
    return parse_section(TrainParams, params.get("train", {}), "train", only=("threads",)).threads


IMAGES_SKIPPED = "data.inputs2d has no `detected` and runs.context_poseformer is empty"


def write_skipped(out_dir: str | Path, reason: str = IMAGES_SKIPPED) -> None:
    """The output of a stage that has nothing to do (an image stage: render, train_detector, detect2d;
    normalize_3dhp): a folder whose ``summary.json`` says why (DVC needs the output to exist)."""
    with atomic_dir(out_dir) as out:
        write_json({"skipped": reason}, out / "summary.json")
    logging.getLogger("stages").info("%s: skipped (%s)", out_dir, reason)


def skipped_reason(out_dir: str | Path) -> str | None:
    """Why :func:`write_skipped` left ``out_dir`` empty, or None where it holds a stage's output."""
    path = Path(out_dir) / "summary.json"
    return json.loads(path.read_text()).get("skipped") if path.is_file() else None


def parser(description: str) -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(description=description)
    cli.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    return cli


def run(main) -> None:
    """Run a stage's ``main()``; bad input ends it with one clear error line and exit status 1."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except (DataError, ParamsError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
