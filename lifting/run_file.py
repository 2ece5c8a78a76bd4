"""The saved run (``data/checkpoints/<run>-<input2d>/model.pt``): one versioned schema, written by the
train stage and read by evaluation and ``lifting predict``.

The file holds plain types and tensors only, so it loads with ``weights_only=True``: a dict of
:class:`RunFile`'s fields (the training record as a dict of :class:`TrainingRecord`'s) and
``format``, :data:`FORMAT`. Reading checks every field: a file of another format, or one that lacks a
field or has one this version does not know, is refused with the fix (re-run its train stage);
nothing is filled in with a default.
"""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from lifting.errors import DataError
from lifting.io import atomic_path
from lifting.models import METHOD_NAMES

#: The run-file format this version writes and reads. 1: the first with a format (December 2026).
FORMAT = 1
RERUN = "delete it and re-run the train stage (`dvc repro`)"


@dataclass(frozen=True)
class TrainingRecord:
    """How a run was trained, as the metrics files and the report give it.

    Attributes:
        train_seconds: wall-clock seconds of training, mean over seeds.
        epochs, selected_epoch: epochs run, and the (0-based) epoch whose weights were kept.
        train_samples: training samples (windows for a temporal method); samples_seen: over the run.
        core_seconds, samples_per_s: training cost (None for the lookup floor, which does not train).
        schedule: the schedule that ran (``lifting.models.spec.Schedule`` as a dict; None for the lookup).
        seeds: one model per seed. world_size: training processes (1 without ``torchrun``).
        curve_p1: mean over seeds of the last logged test-curve P1 (mm; None without a curve).
        stages: a staged method's chain, ``{stage run name: {epochs, samples_seen, train_seconds,
            curve_p1}}`` in stage order (None for a single-stage method).
        checkpoint: the selection rule ("last", "val_best" or "test_best"). budget: the budget that ran.
    """

    train_seconds: float
    epochs: int
    selected_epoch: int
    train_samples: int
    samples_seen: int
    core_seconds: float | None
    samples_per_s: float | None
    schedule: dict | None
    seeds: list[int]
    world_size: int
    curve_p1: float | None
    stages: dict | None
    checkpoint: str
    budget: dict

    def stage_summary(self) -> dict:
        """This run as one stage of a staged method's chain."""
        return {"epochs": self.epochs, "samples_seen": self.samples_seen, "train_seconds": self.train_seconds,
                "curve_p1": self.curve_p1}


@dataclass(frozen=True)
class RunFile:
    """One trained run.

    Attributes:
        method: the registered method (:data:`lifting.models.METHOD_NAMES`); name: the run's name in
            metrics and reports (a GridConv variant, an RIE stage).
        config: the method's Config as a dict. kind: the paper configuration that ran ("gt" or
            "detected"); configuration: its label, with every field changed from the paper's.
        input_spec: the method's :class:`~lifting.models.spec.InputSpec` as a dict. joint_set: its joints.
        stats: ``input_mean``/``input_std`` (J, 2) and ``target_mean``/``target_std`` (J, 3) tensors
            of the training data (screen units; mm).
        record: how it was trained.
        parameters: trainable parameters (0 for the lookup floor).
        state_dicts: one set of weights per seed (None for the lookup floor).
        surface: the body-surface graph's metadata for a method built on it (HGN), else None.
        library_inputs, library_targets: the lookup floor's library, (N, J, 2) and (N, J, 3) mm
            tensors (None for a trained network).
    """

    method: str
    name: str
    config: dict
    kind: str
    configuration: str
    input_spec: dict
    joint_set: str
    stats: dict[str, torch.Tensor]
    record: TrainingRecord
    parameters: int
    state_dicts: list[dict[str, torch.Tensor]] | None = None
    surface: dict | None = None
    library_inputs: torch.Tensor | None = None
    library_targets: torch.Tensor | None = None

    def save(self, path: Path) -> None:
        """Write atomically (a reader never sees half a file)."""
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        with atomic_path(Path(path)) as tmp:
            torch.save({"format": FORMAT, **fields, "record": dataclasses.asdict(self.record)}, tmp)

    @classmethod
    def load(cls, path: Path) -> RunFile:
        """Read and check ``path``; a :class:`~lifting.errors.DataError` names the file, the problem and the fix."""
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise DataError(path, "trained model not found", "run `dvc repro` to train it") from None
        except Exception as err:
            # torch's weights-only unpickler met a class or a call: say so, not torch's advice to unpickle it
            hostile = isinstance(err, pickle.UnpicklingError) and (
                "GLOBAL" in str(err) or "Unsupported class" in str(err))
            problem = ("holds objects other than tensors and plain types (a pickle that could run code); it will "
                       "not be loaded" if hostile else f"not a loadable model file ({type(err).__name__})")
            raise DataError(path, problem, RERUN) from None
        if not isinstance(saved, dict):
            raise DataError(path, f"not a run file (a {type(saved).__name__})", RERUN)
        if saved.get("format") != FORMAT:
            written = "no format (an earlier version of the pipeline)" if "format" not in saved else \
                f"format {saved['format']!r}"
            raise DataError(path, f"a run file of {written}; this version reads format {FORMAT}", RERUN)
        if saved.get("method") not in METHOD_NAMES:
            raise DataError(path, f"not a model of this pipeline (method {saved.get('method')!r}; known: "
                                  f"{sorted(METHOD_NAMES)})", RERUN)
        fields = _checked(path, "", {k: v for k, v in saved.items() if k != "format"}, cls)
        record = _checked(path, "record.", fields["record"], TrainingRecord)
        return cls(**{**fields, "record": TrainingRecord(**record)})


def _checked(path: Path, where: str, saved, schema) -> dict:
    """``saved`` if it is a dict with exactly ``schema``'s fields, else a DataError naming the difference."""
    if not isinstance(saved, dict):
        raise DataError(path, f"{where or 'the file'} is not a mapping", RERUN)
    names = [field.name for field in dataclasses.fields(schema)]
    missing, unknown = [n for n in names if n not in saved], [k for k in saved if k not in names]
    problems = ([f"lacks {', '.join(where + n for n in missing)}"] if missing else []) + \
        ([f"has unknown {', '.join(where + str(k) for k in unknown)}"] if unknown else [])
    if problems:
        raise DataError(path, f"a run file (format {FORMAT}) that {' and '.join(problems)}", RERUN)
    return saved
