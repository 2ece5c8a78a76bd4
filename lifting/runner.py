"""Train one method on one 2D source, save it, load it back and predict: what the stages call.

The saved model file (``model.pt``) is a :class:`lifting.run_file.RunFile`: the method, its config,
which of the paper's configurations ran, one set of weights per seed (or, for the nearest-neighbour
floor, its library) and the training record.
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from lifting import metrics, train
from lifting.codec import Codec
from lifting.device import pick_device
from lifting.config import BudgetParams, ParamsError, TrainParams, parse_section
from lifting.data.sequences import SequenceIndex
from lifting.data.split import LiftingData
from lifting.data.surface.graph import SurfaceGraph
from lifting.distributed import SINGLE, Ranks
from lifting.errors import DataError
from lifting.images.context import ImageContext
from lifting.models import method_module
from lifting.models.base import Lifter
from lifting.models.spec import InputSpec
from lifting.run_file import RunFile, TrainingRecord
from lifting.skeleton import get_joint_set


@dataclass(frozen=True)
class RunSettings:
    """What a training run needs besides the data and the method's own config.

    Attributes:
        seeds: one model is trained per seed (the metrics report their mean and spread).
        threads: CPU threads.
        max_epochs, batch_size, train_stride, lr_scale, decay, warmup: the budget
            (``max_epochs=None``: the paper's schedule; the stride is applied when the data is
            loaded and only recorded here). bf16_cpu: bf16 autocast on the CPU.
        curve_points: evenly spaced test-curve points per run (besides every epoch's end).
        curve_test_stride: the test curve is scored on every n-th test frame.
        val_fraction: share of training sequences held out for validation (only for val_best).
        checkpoint: "last", "val_best" or "test_best" (selection on the test set, labelled).
    """

    seeds: tuple[int, ...]
    threads: int
    max_epochs: int | None
    batch_size: int | None
    train_stride: int
    lr_scale: float
    decay: str
    warmup: float
    bf16_cpu: bool
    curve_points: int
    curve_test_stride: int
    val_fraction: float
    checkpoint: str

    @classmethod
    def from_params(cls, budget: BudgetParams, training: TrainParams, bf16_cpu: bool) -> RunSettings:
        """One run's settings from its budget and the ``train`` section, field by name (the budget's
        first), with the seeds the budget allows, its own curve points where it sets them, and
        ``bf16_cpu`` as resolved for this machine (:func:`lifting.device.bf16_cpu_for`)."""
        names = {field.name for field in dataclasses.fields(cls)}
        values = {name: getattr(budget, name) for name in names if hasattr(budget, name)}
        values |= {name: getattr(training, name) for name in names - values.keys() if hasattr(training, name)}
        curve_points = training.curve_points if budget.curve_points is None else budget.curve_points
        return cls(**{**values, "seeds": training.seeds_for(budget), "bf16_cpu": bf16_cpu,
                      "curve_points": curve_points})

    def budget(self) -> dict:
        """The budget as recorded in model.pt and the metrics files: the budget section's fields that
        shape the training (not how many seeds or curve points it logs)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(BudgetParams)
                if field.name not in ("max_seeds", "curve_points")}


def method_config(method: str, model_params: dict, overrides: dict | None = None, kind: str = "gt"):
    """The method's Config for a 2D source of ``kind`` ("gt" or "detected").

    Starts from the paper's configuration for that kind (``PAPER[kind].config``), then applies
    every non-null value of the method's ``model.<method>`` mapping and of the plain
    (non-mapping) ``model`` keys that name one of its Config fields (``model.padding`` reaches
    GridConv this way), then ``overrides`` (a stage's fixed choices, e.g. one SGT variant). A
    null value keeps the paper's choice for the input kind; an explicit one applies to every input.
    """
    module = method_module(method)
    paper = dataclasses.asdict(module.PAPER[kind].config)
    shared = {k: v for k, v in model_params.items() if not isinstance(v, dict) and k in paper}
    for key, value in shared.items():  # errors name the plain key (model.padding), not model.<method>
        if value is not None:
            try:
                parse_section(module.Config, {**paper, key: value}, "model")
            except ParamsError as err:
                raise ParamsError(f"model.{key}: {str(err).removeprefix('model.' + key + ': ').removeprefix('model: ')}"
                                  ) from None
    chosen = {k: v for k, v in {**shared, **model_params.get(method, {})}.items() if v is not None}
    return parse_section(module.Config, {**paper, **chosen, **(overrides or {})}, f"model.{method}")


def is_lookup(method: str) -> bool:
    """True for methods that store a library instead of training weights (no paper schedule)."""
    return method_module(method).PAPER["gt"].schedule is None


def validation_mask(meta, fraction: float) -> np.ndarray:
    """(N,) bool: the rows of a deterministic ``fraction`` of (subject, sequence) groups."""
    keys = (meta["subject"] + "/" + meta["sequence"]).to_numpy()
    groups = np.unique(keys)
    scores = np.array([zlib.crc32(g.encode()) / 2**32 for g in groups])
    held_out = set(groups[scores < fraction])
    return np.array([k in held_out for k in keys])


def train_method(method: str, cfg, kind: str, data: LiftingData, settings: RunSettings, out_dir: Path,
                 log_path: Path, snapshot: dict, name: str | None = None, progress: bool = True,
                 init: Path | None = None, detector: Path | None = None, ranks: Ranks = SINGLE) -> TrainingRecord:
    """Train ``method`` (the paper's ``kind`` configuration, one model per seed) and write
    ``out_dir/model.pt``; returns the training record.

    ``name`` labels the run in metrics and reports (default: the method), e.g. one GridConv variant.
    Training uses every training row unless ``settings.checkpoint == "val_best"`` asks for a
    validation split. Each seed's curve is logged against a fixed subsample of the test frames
    (every ``curve_test_stride``-th), never used for selection. A temporal method's ``data`` holds
    every training frame (its windows reach them all); it trains on every
    ``settings.train_stride``-th frame of each run. ``init``: a previous stage's ``model.pt``
    whose weights start each seed's model (:meth:`lifting.models.base.Lifter.initialise`: RIE's
    stages); ``detector``: the detector's model.pt whose frozen features a method that looks at the
    image samples (Context-Aware PoseFormer; its weights go in the same way).
    ``ranks``: this process's place in a data-parallel run (``torchrun``; :mod:`lifting.distributed`);
    only rank 0 writes the files, and the record gives the world size (the schedule's batch is global).
    """
    module = method_module(method)
    setup = module.PAPER[kind]
    device = pick_device(settings.threads, ranks.local_rank)
    inputs, targets = data.train_inputs, data.train_targets
    val = validation_mask(data.train_meta, settings.val_fraction) if settings.checkpoint == "val_best" \
        else np.zeros(len(inputs), dtype=bool)
    fit_x, fit_y = inputs[~val], targets[~val]
    surface = _surface(setup.input_spec, data)
    name = name or method
    described = {"method": method, "name": name, "config": dataclasses.asdict(cfg), "kind": kind,
                 "configuration": configuration_label(setup, cfg, surface),
                 "input_spec": dataclasses.asdict(setup.input_spec), "joint_set": data.joint_set,
                 "stats": {stat: torch.as_tensor(getattr(data, stat)) for stat in
                           ("input_mean", "input_std", "target_mean", "target_std")}}
    chosen = {"checkpoint": settings.checkpoint, "budget": settings.budget()}
    if is_lookup(method):  # the nearest-neighbour floor: fitting is storing the library
        started = time.perf_counter()
        module.build(cfg, fit_x.shape[1]).fit(fit_x, fit_y)  # validates the library
        record = TrainingRecord(train_seconds=round(time.perf_counter() - started, 2), epochs=0, selected_epoch=0,
                                train_samples=len(fit_x), samples_seen=len(fit_x), core_seconds=None,
                                samples_per_s=None, schedule=None, seeds=[settings.seeds[0]], world_size=1,
                                curve_p1=None, stages=None, **chosen)
        run = RunFile(**described, record=record, parameters=0, library_inputs=torch.as_tensor(fit_x),
                      library_targets=torch.as_tensor(fit_y))
        if ranks.writes:
            train.write_log([], log_path)
    else:
        codec = Codec(setup.input_spec, data.input_mean, data.input_std, data.target_mean, data.target_std).to(device)
        schedule = train.budgeted_schedule(paper_schedule(method, cfg, setup.schedule), settings.max_epochs,
                                           settings.batch_size,
                                           settings.lr_scale, settings.decay, settings.warmup)
        field = receptive_field(cfg, setup.input_spec)
        arrays = train_arrays(setup.input_spec, cfg, data, val, device,
                              test_as_validation=settings.checkpoint == "test_best", field=field,
                              stride=settings.train_stride)
        monitor = test_curve_monitor(data, codec, setup.input_spec.flip_test, settings.curve_test_stride, device,
                                     field)
        select = "last" if settings.checkpoint == "last" else "val_best"
        results, rows = [], []
        if setup.input_spec.images:  # a frozen detector's weights, not counted among the trained parameters
            starts, earlier = [module.backbone_weights(detector)] * len(settings.seeds), None
        else:  # a staged method's previous stage, or from scratch
            starts, earlier = _initial_states(init, method, cfg, settings.seeds)
        for seed, start in zip(settings.seeds, starts):
            train.seed_everything(seed)
            model = build_model(method, cfg, fit_x.shape[1], surface).to(device)
            parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)  # before any freezing
            if start is not None:
                model.initialise(start)
            result = train.fit(model, codec, arrays, schedule, seed=seed,
                               checkpoint_path=out_dir / f"checkpoint-seed{seed}.pt", log_path=log_path,
                               snapshot=snapshot, select=select, progress=progress, monitor=monitor,
                               curve_points=settings.curve_points, bf16_cpu=settings.bf16_cpu, log_preamble=rows,
                               ranks=ranks)
            rows = [*rows, *result.log]
            results.append(result)
        record = TrainingRecord(
            train_seconds=round(float(np.mean([r.train_seconds for r in results])), 2),
            epochs=results[0].epochs_run, selected_epoch=results[0].selected_epoch,
            train_samples=len(arrays.targets), samples_seen=results[0].samples_seen,
            core_seconds=round(float(np.mean([r.core_seconds for r in results])), 1),
            samples_per_s=round(float(np.mean([r.samples_per_s for r in results])), 1),
            schedule=dataclasses.asdict(schedule), seeds=list(settings.seeds), world_size=ranks.world_size,
            curve_p1=_last_curve_p1(results), stages=None, **chosen)
        if earlier is not None:  # a staged method: the whole chain, stage by stage
            chain = earlier.record.stages or {earlier.name: earlier.record.stage_summary()}
            record = dataclasses.replace(record, stages={**chain, name: record.stage_summary()})
        run = RunFile(**described, record=record, parameters=parameters,
                      state_dicts=[{k: v.detach().cpu() for k, v in r.state_dict.items()} for r in results],
                      surface=surface.to_metadata() if surface is not None else None)
    if ranks.writes:
        run.save(out_dir / "model.pt")
    return record
    with atomic_path(out_dir / "model.pt") as tmp:
        torch.save(saved, tmp)
    return record


def paper_schedule(method: str, cfg, schedule):
    """The paper's schedule for ``cfg`` (a staged method's stage may change it: RIE's stage 3)."""
    module = method_module(method)
    return module.schedule_for(cfg, schedule) if hasattr(module, "schedule_for") else schedule


def _last_curve_p1(results) -> float | None:
    """The mean over seeds of each seed's last logged test-curve P1 (mm; None without a curve)."""
    last = [next((row["test_p1_mm"] for row in reversed(r.log) if row.get("test_p1_mm") not in ("", None)), None)
            for r in results]
    return None if None in last else round(float(np.mean(last)), 2)


def _initial_states(init: Path | None, method: str, cfg, seeds) -> tuple[list[dict | None], RunFile | None]:
    """Per seed, the previous stage's weights to start from (None: from scratch), and the previous
    stage's run (None without one)."""
    stage = getattr(cfg, "stage", None)
    if init is None:
        if stage not in (None, 1):
            raise ValueError(f"{method} stage {stage} starts from the previous stage's model (--init)")
        return [None] * len(seeds), None
    if stage in (None, 1):
        raise ValueError(f"{method}{'' if stage is None else ' stage 1'} starts from scratch, not from {init}")
    if not Path(init).is_file():
        raise DataError(init, "the previous stage's model not found", "run the previous stage first (`dvc repro`)")
    previous = RunFile.load(init)
    if previous.method != method or previous.config.get("stage") != stage - 1:
        raise DataError(init, f"not {method} stage {stage - 1}'s model", "re-run the previous stage")
    if list(previous.record.seeds)[:len(seeds)] != list(seeds):
        raise DataError(init, f"trained for seeds {previous.record.seeds}, this stage for {list(seeds)}",
                        "give every stage the same budget.max_seeds")
    return list(previous.state_dicts[:len(seeds)]), previous


def build_model(method: str, cfg, num_joints: int, surface: SurfaceGraph | None = None) -> Lifter:
    """The method module's ``build``, given the data's surface graph when the method is built on it (HGN)."""
    module = method_module(method)
    if any(setup.input_spec.markers for setup in module.PAPER.values()):
        if surface is None:
            raise ValueError(f"{method} is built on the data's surface graph; none was given")
        return module.build(cfg, num_joints, surface)
    return module.build(cfg, num_joints)


def _surface(spec: InputSpec, data: LiftingData) -> SurfaceGraph | None:
    """The data's surface graph for a method built on it, else None."""
    if not spec.markers:
        return None
    if data.surface is None:
        raise DataError(None, "this method is built on the body-surface graph of data/aligned/markers.parquet, "
                              "which this data has not got", "re-run `dvc repro normalize align`")
    return data.surface


def configuration_label(setup, cfg, surface: SurfaceGraph | None) -> str:
    """The paper configuration's label, plus every field ``cfg`` changes from it and the surface
    hierarchy the run was built on: e.g. "HGN, 1.04M, not the paper's: mesh_loss=False"."""
    paper = dataclasses.asdict(setup.config)
    changed = [f"{key}={value}" for key, value in dataclasses.asdict(cfg).items() if paper.get(key) != value]
    return ", ".join([setup.label, *([f"not the paper's: {', '.join(changed)}"] if changed else []),
                      *([surface.description] if surface is not None else [])])


def receptive_field(cfg, spec: InputSpec) -> int:
    """The frames a temporal method's window spans (the product of its filter widths), 1 for a
    single-frame method."""
    return math.prod(cfg.filter_widths) if spec.temporal else 1


def train_arrays(spec: InputSpec, cfg, data: LiftingData, val: np.ndarray, device: torch.device,
                 test_as_validation: bool = False, field: int = 1, stride: int = 1) -> train.TrainArrays:
    """The training rows (not in the (N,) mask ``val``) and the validation rows (``val``, or the
    test set when ``test_as_validation``) as tensors on ``device``, with the training rows' surface
    markers where the method's loss uses them. A temporal method (``field`` > 1 frames) trains on
    every ``stride``-th frame of each run, from windows over all of the run's frames."""
    if field > 1:
        return _temporal_arrays(data, val, device, test_as_validation, field, stride)
    markers = _training_markers(spec, cfg, data, ~val)
    val_x, val_y = ((data.test_inputs, data.test_targets) if test_as_validation
                    else (data.train_inputs[val], data.train_targets[val]))
    tensors = [torch.as_tensor(a, device=device) for a in (data.train_inputs[~val], data.train_targets[~val], val_x, val_y)]
    context = val_context = None
    if spec.images:
        context, val_context = _image_contexts(data, val, test_as_validation)
        context, val_context = context.to(device), val_context.to(device)
    return train.TrainArrays(*tensors, aux_targets=None if markers is None else torch.as_tensor(markers, device=device),
                             context=context, val_context=val_context)


def _image_contexts(data: LiftingData, val: np.ndarray, test_as_validation: bool) -> tuple[ImageContext, ImageContext]:
    """The training rows' image context (not in the mask ``val``) and the validation rows'."""
    if data.train_context is None or data.test_context is None:
        raise DataError(None, "this method looks at the image, and the data has no crops attached",
                        "train it through `dvc repro` (its stage reads data/images)")
    mask = torch.as_tensor(val)
    return data.train_context.take(~mask), (data.test_context if test_as_validation else data.train_context.take(mask))


def _training_markers(spec: InputSpec, cfg, data: LiftingData, rows: np.ndarray) -> np.ndarray | None:
    """The surface markers of the trained rows, for a method whose loss uses them (HGN), else None."""
    if not spec.markers or not getattr(cfg, "mesh_loss", True):
        return None
    if data.train_markers is None:
        raise DataError(None, "this method's loss needs the body-surface markers (data/aligned/markers.parquet), "
                              "which this data source does not have",
                        "use the embedded data, or train on the joints alone (model.hgn.mesh_loss: false)")
    return data.train_markers[rows]


def _temporal_arrays(data: LiftingData, val: np.ndarray, device: torch.device, test_as_validation: bool,
                     field: int, stride: int) -> train.TrainArrays:
    """Windows of ``field`` frames by index: every training frame is the pool, the samples are each
    run's every ``stride``-th frame (split by ``val``), the validation windows index their own pool."""
    sample = data.train_meta["frame"].to_numpy() % stride == 0
    fit_rows, val_rows = np.flatnonzero(sample & ~val), np.flatnonzero(sample & val)
    train_index = SequenceIndex.from_meta(data.train_meta)
    if test_as_validation:
        val_pool, val_targets = data.test_inputs, data.test_targets
        val_windows = SequenceIndex.from_meta(data.test_meta).windows(np.arange(len(data.test_inputs)), field, device)
    else:
        val_pool, val_targets = data.train_inputs, data.train_targets[val_rows]
        val_windows = train_index.windows(val_rows, field, device)
    tensor = partial(torch.as_tensor, device=device)
    return train.TrainArrays(tensor(data.train_inputs), tensor(data.train_targets[fit_rows]), tensor(val_pool),
                             tensor(val_targets), windows=train_index.windows(fit_rows, field, device),
                             val_windows=val_windows)


@dataclass(frozen=True)
class ScoredFrames:
    """Every ``stride``-th test frame, ready to predict: ``inputs`` (N, J, 2) on the device and, for
    a temporal model, ``windows`` (n, R) rows of it (else None and ``inputs`` holds the n frames);
    ``targets`` (n, J, 3) mm and ``actions`` (n,) np; ``context`` the n frames' image crops where
    the data has them."""

    inputs: torch.Tensor
    windows: torch.Tensor | None
    targets: np.ndarray
    actions: np.ndarray
    context: ImageContext | None = None

    @classmethod
    def every(cls, data: LiftingData, stride: int, device: torch.device, field: int = 1) -> ScoredFrames:
        rows = np.arange(0, len(data.test_inputs), stride)
        if field > 1:
            inputs = torch.as_tensor(data.test_inputs, device=device)
            windows = torch.as_tensor(SequenceIndex.from_meta(data.test_meta).window_rows(rows, field), device=device)
        else:
            inputs, windows = torch.as_tensor(data.test_inputs[rows], device=device), None
        context = data.test_context.take(torch.as_tensor(rows)).to(device) if data.test_context is not None else None
        return cls(inputs, windows, np.asarray(data.test_targets[rows]), data.test_meta["action"].to_numpy()[rows],
                   context)

    def predict(self, model: torch.nn.Module, codec: Codec, flip_test: bool) -> np.ndarray:
        """(n, J, 3) root-relative mm."""
        return train.predict(model, codec, self.inputs, flip_test=flip_test, windows=self.windows,
                             context=self.context).cpu().numpy()


def test_curve_monitor(data: LiftingData, codec: Codec, flip_test: bool, stride: int, device: torch.device,
                       field: int = 1):
    """``monitor(model) -> {"test_p1_mm": action-mean MPJPE (mm)}`` on every ``stride``-th test frame
    (a temporal method's from their windows of ``field`` frames)."""
    frames = ScoredFrames.every(data, stride, device, field)
    names = get_joint_set(data.joint_set).names

    def monitor(model: torch.nn.Module) -> dict:
        errors = metrics.joint_errors_mpjpe(frames.predict(model, codec, flip_test), frames.targets)
        return {"test_p1_mm": metrics.summarize(errors, frames.actions, names)["action_mean"]}

    return monitor


def load_method(path: Path, device: torch.device | None = None) -> tuple[RunFile, list]:
    """Rebuild a saved method: returns (its :class:`~lifting.run_file.RunFile`, [predictor per seed]),
    each predictor mapping inputs (N, J, 2) np (and, for a temporal method, their rows' meta: whole
    runs) -> (N, J, 3) root-relative mm np, computed on ``device`` (default:
    :func:`lifting.device.pick_device`); with ``rows`` (n,), only those rows' -> (n, J, 3) (a
    temporal method's from their windows over the whole runs)."""
    saved = RunFile.load(path)
    module = method_module(saved.method)
    cfg = parse_section(module.Config, saved.config, f"{path} config")
    num_joints = saved.stats["input_mean"].shape[0]
    if is_lookup(saved.method):
        lifter = module.build(cfg, num_joints).fit(saved.library_inputs.numpy(), saved.library_targets.numpy())
        return saved, [lambda inputs, meta=None, context=None, rows=None:
                       lifter.predict(inputs if rows is None else inputs[rows])]
    device = device if device is not None else pick_device(torch.get_num_threads())
    spec = InputSpec(**saved.input_spec)
    codec = Codec(spec, **{k: v.numpy() for k, v in saved.stats.items()}).to(device)
    surface = SurfaceGraph.from_metadata(saved.surface) if saved.surface is not None else None
    return saved, [_predictor(build_model(saved.method, cfg, num_joints, surface), state, codec, spec.flip_test,
                              device) for state in saved.state_dicts]


def _predictor(model: Lifter, state: dict, codec: Codec, flip_test: bool, device: torch.device):
    model.load_state_dict(state)
    model.to(device)

    def predictor(inputs: np.ndarray, meta=None, context: ImageContext | None = None,
                  rows: np.ndarray | None = None) -> np.ndarray:
        """(N, J, 2) -> (N, J, 3) mm; a temporal model needs the rows' ``meta`` (complete runs), a
        model that looks at the image the rows' ``context``; with ``rows`` (n,) -> (n, J, 3), those
        rows only (a temporal model from their windows)."""
        tensor = torch.as_tensor(inputs, dtype=torch.float32, device=device)
        if model.temporal:
            if meta is None:
                raise ValueError("a temporal model predicts whole runs: pass the rows' meta")
            index = SequenceIndex.from_meta(meta)
            if rows is None:
                return train.predict_runs(model, codec, tensor, index.runs(), flip_test=flip_test).cpu().numpy()
            windows = torch.as_tensor(index.window_rows(np.asarray(rows), model.receptive_field), device=device)
            return train.predict(model, codec, tensor, flip_test=flip_test, windows=windows).cpu().numpy()
        if rows is not None:
            tensor = tensor[torch.as_tensor(rows, device=device)]
            context = context.take(torch.as_tensor(rows)) if context is not None else None
        seen = context.to(device) if context is not None else None
        return train.predict(model, codec, tensor, flip_test=flip_test, context=seen).cpu().numpy()

    return predictor
