"""Train one method on one 2D source, save it, load it back and predict: what the stages call.

The saved model file (``model.pt``) holds only plain types and tensors, so it loads with
``weights_only=True``: the method name, its config as a dict, the weights (or, for the
nearest-neighbour floor, its library), the schedule actually used and the training record.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lifting import train
from lifting.codec import Codec
from lifting.config import parse_section
from lifting.data.align import LiftingData
from lifting.errors import DataError
from lifting.io import atomic_path
from lifting.models import METHODS


@dataclass(frozen=True)
class RunSettings:
    """What a training run needs besides the data and the method's own config.

    Attributes:
        seed: seeds everything. threads: CPU threads.
        max_epochs, batch_size, train_stride, lr_scale, cosine: the budget (``max_epochs=None``: the paper's schedule;
            the stride is applied when the data is loaded and only recorded here).
        val_fraction: share of training sequences held out for validation.
        checkpoint: "last", "val_best" or "test_best" (selection on the test set, labelled).
    """

    seed: int
    threads: int
    max_epochs: int | None
    batch_size: int | None
    train_stride: int
    lr_scale: float
    cosine: bool
    val_fraction: float
    checkpoint: str


def method_config(method: str, model_params: dict, overrides: dict | None = None):
    """The method's Config from the ``model`` params section.

    A method reads its own ``model.<method>`` mapping, plus every plain (non-mapping) ``model``
    key that names one of its Config fields (``model.padding`` reaches GridConv this way), then
    ``overrides`` (a stage's fixed choices, e.g. one GridConv SGT variant per stage).
    """
    module = _module(method)
    fields = {f.name for f in dataclasses.fields(module.Config)}
    shared = {k: v for k, v in model_params.items() if not isinstance(v, dict) and k in fields}
    values = {**shared, **model_params.get(method, {}), **(overrides or {})}
    return parse_section(module.Config, values, f"model.{method}")


def is_lookup(method: str) -> bool:
    """True for methods that store a library instead of training weights (no paper schedule)."""
    return _module(method).PAPER_SCHEDULE is None


def _module(method: str):
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {sorted(METHODS)}")
    return METHODS[method]


def validation_mask(meta, fraction: float) -> np.ndarray:
    """(N,) bool: the rows of a deterministic ``fraction`` of (subject, sequence) groups."""
    keys = (meta["subject"] + "/" + meta["sequence"]).to_numpy()
    groups = np.unique(keys)
    scores = np.array([zlib.crc32(g.encode()) / 2**32 for g in groups])
    held_out = set(groups[scores < fraction])
    return np.array([k in held_out for k in keys])


def train_method(method: str, cfg, data: LiftingData, settings: RunSettings, out_dir: Path, log_path: Path,
                 snapshot: dict, name: str | None = None, progress: bool = True) -> dict:
    """Train ``method`` and write ``out_dir/model.pt``; returns the training record.

    ``name`` labels the run in metrics and reports (default: the method), e.g. one GridConv variant.
    """
    module = _module(method)
    device = train.pick_device(settings.threads)
    val = validation_mask(data.train_meta, settings.val_fraction)
    inputs, targets = data.train_inputs, data.train_targets
    if settings.checkpoint == "test_best":
        fit_x, fit_y, val_x, val_y = inputs, targets, data.test_inputs, data.test_targets
    else:
        fit_x, fit_y, val_x, val_y = inputs[~val], targets[~val], inputs[val], targets[val]
    saved = {"method": method, "name": name or method, "config": dataclasses.asdict(cfg), "joint_set": data.joint_set,
             "stats": {stat: torch.as_tensor(getattr(data, stat)) for stat in
                       ("input_mean", "input_std", "target_mean", "target_std")}}
    if is_lookup(method):  # the nearest-neighbour floor: fitting is storing the library
        started = time.perf_counter()
        module.build(cfg, fit_x.shape[1]).fit(fit_x, fit_y)  # validates the library
        record = {"train_seconds": round(time.perf_counter() - started, 2), "epochs": 0, "selected_epoch": 0,
                  "train_samples": len(fit_x), "samples_per_s": None, "schedule": None}
        saved.update(library_inputs=torch.as_tensor(fit_x), library_targets=torch.as_tensor(fit_y))
        train._write_log([], log_path)
    else:
        train.seed_everything(settings.seed)
        model = module.build(cfg, fit_x.shape[1]).to(device)
        codec = Codec(module.INPUT_SPEC, data.input_mean, data.input_std, data.target_mean, data.target_std).to(device)
        schedule = train.budgeted_schedule(module.PAPER_SCHEDULE, settings.max_epochs, settings.batch_size,
                                           settings.lr_scale, settings.cosine)
        arrays = train.TrainArrays(*(torch.as_tensor(a, device=device) for a in (fit_x, fit_y, val_x, val_y)))
        select = "last" if settings.checkpoint == "last" else "val_best"
        result = train.fit(model, codec, arrays, schedule, seed=settings.seed, checkpoint_path=out_dir / "checkpoint.pt",
                           log_path=log_path, snapshot=snapshot, select=select, progress=progress)
        record = {"train_seconds": round(result.train_seconds, 2), "epochs": result.epochs_run,
                  "selected_epoch": result.selected_epoch, "train_samples": len(fit_x),
                  "samples_per_s": round(result.samples_per_s, 1), "schedule": dataclasses.asdict(schedule)}
        saved["state_dict"] = {k: v.detach().cpu() for k, v in result.state_dict.items()}
    record["checkpoint"] = settings.checkpoint
    record["budget"] = {"max_epochs": settings.max_epochs, "batch_size": settings.batch_size,
                        "train_stride": settings.train_stride, "lr_scale": settings.lr_scale, "cosine": settings.cosine}
    saved["record"] = record
    with atomic_path(out_dir / "model.pt") as tmp:
        torch.save(saved, tmp)
    return record


def load_method(path: Path):
    """Rebuild a saved method: returns (saved dict, predictor(inputs (N, J, 2) np) -> (N, J, 3) mm np)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(path, "trained model not found", "run `dvc repro` to train it") from None
    except Exception as err:
        raise DataError(path, f"not a loadable model file ({err})", "delete it and re-run the train stage") from None
    module = _module(saved["method"])
    cfg = parse_section(module.Config, saved["config"], f"{path} config")
    num_joints = saved["stats"]["input_mean"].shape[0]
    if is_lookup(saved["method"]):
        lifter = module.build(cfg, num_joints).fit(saved["library_inputs"].numpy(), saved["library_targets"].numpy())
        return saved, lifter.predict
    device = train.pick_device(torch.get_num_threads())
    model = module.build(cfg, num_joints)
    model.load_state_dict(saved["state_dict"])
    model.to(device)
    stats = {k: v.numpy() for k, v in saved["stats"].items()}
    codec = Codec(module.INPUT_SPEC, **stats).to(device)

    def predictor(inputs: np.ndarray) -> np.ndarray:
        tensor = torch.as_tensor(inputs, dtype=torch.float32, device=device)
        return train.predict(model, codec, tensor, flip_test=module.INPUT_SPEC.flip_test).cpu().numpy()

    return saved, predictor


def parameter_count(saved: dict) -> int:
    """Trainable parameters of a saved method (0 for the lookup floor)."""
    if "state_dict" not in saved:
        return 0
    module = _module(saved["method"])
    model = module.build(parse_section(module.Config, saved["config"], "config"), saved["stats"]["input_mean"].shape[0])
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
