"""Typed parameters: params.yaml sections as frozen dataclasses, strictly checked.

The stages read params.yaml and hand the parsed dict to :func:`parse_section`; the library
never reads files or argv for its configuration. Unknown, missing or mistyped keys fail at
load time with a message naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Literal

import yaml


class ParamsError(ValueError):
    """A params.yaml value is unknown, missing or of the wrong type."""


#: Knobs of the ``report`` section of params.yaml, with their defaults (see lifting.report).
REPORT_DEFAULTS = {"qualitative_frames": 3}


def report_options(report: dict | None) -> dict:
    """The ``report`` section of params.yaml merged over :data:`REPORT_DEFAULTS` (unknown keys fail)."""
    report = dict(report or {})
    unknown = sorted(set(report) - set(REPORT_DEFAULTS))
    if unknown:
        raise ParamsError(f"report: unknown key(s) {unknown}; known: {sorted(REPORT_DEFAULTS)}")
    options = {**REPORT_DEFAULTS, **report}
    if not isinstance(options["qualitative_frames"], int) or options["qualitative_frames"] < 0:
        raise ParamsError("report.qualitative_frames must be an integer >= 0")
    return options


@dataclass(frozen=True)
class DataParams:
    """The ``data`` section.

    Attributes:
        source: "embedded" (default) or "h36m".
        h36m_dir: folder holding the user's VideoPose3D-format Human3.6M files.
        h36m_videos: h36m only: the release's video folder (``<subject>/Videos/*.mp4``), for the
            images of the detector and Context-Aware PoseFormer (:mod:`lifting.images.video`).
        smpl_dir: h36m only: folder with the SMPL model and Moon's SMPL fits (HGN's upstream
            hierarchy, :mod:`lifting.data.surface.smpl`); None: HGN's markers on the canonical body.
        download: fetch missing public detection files (h36m only).
        inputs2d: the 2D sources trained and scored (the train/evaluate fan-out).
        train_subjects, test_subjects: the split.
        mpi3dhp_dir: the user's MPI-INF-3DHP test set (``TS1`` .. ``TS6``, each with ``annot_data.mat``),
            on which every run is also scored (:mod:`lifting.data.mpi3dhp`); None: not scored there.
    Every field is None where a stage does not read it (see :func:`parse_section`).
    """

    source: str
    h36m_dir: str | None
    h36m_videos: str | None
    smpl_dir: str | None
    download: bool | None
    inputs2d: tuple[str, ...] | None
    train_subjects: tuple[str, ...] | None
    test_subjects: tuple[str, ...] | None
    mpi3dhp_dir: str | None

    def __post_init__(self):
        if self.source is not None and self.source not in ("embedded", "h36m"):
            raise ParamsError(f"data.source must be 'embedded' or 'h36m', got {self.source!r}")
        if self.inputs2d is not None:
            if not self.inputs2d:
                raise ParamsError("data.inputs2d is empty: name at least one 2D source (gt, noisy, ...)")
            if self.source == "embedded" and not set(self.inputs2d) <= {"gt", "noisy", "detected"}:
                raise ParamsError(f"data.inputs2d {list(self.inputs2d)}: the embedded data has 2D sources gt, noisy "
                                  "and detected")
        for name in ("train_subjects", "test_subjects"):
            if getattr(self, name) is not None and not getattr(self, name):
                raise ParamsError(f"data.{name} is empty: name at least one subject (e.g. S1)")
        if self.train_subjects and self.test_subjects and set(self.train_subjects) & set(self.test_subjects):
            raise ParamsError("data.train_subjects and data.test_subjects overlap")


def parse_section(cls, values: dict, where: str, only=None):
    """Build dataclass ``cls`` from ``values``; ``where`` names the section in error messages.

    ``only``: the fields a stage reads (the rest are None and their values are not looked at, so
    the stage depends on exactly the keys it declares in dvc.yaml); default every field.
    """
    if not isinstance(values, dict):
        raise ParamsError(f"{where}: expected a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParamsError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    read = list(fields) if only is None else list(only)
    missing = sorted(set(read) - set(values))
    if missing:
        raise ParamsError(f"{where}: missing key(s) {missing}")
    hints = typing.get_type_hints(cls)
    converted = {name: _convert(values[name], hints[name], f"{where}.{name}") if name in read else None
                 for name in fields}
    try:
        return cls(**converted)
    except ValueError as err:
        if isinstance(err, ParamsError):
            raise
        raise ParamsError(f"{where}: {err}") from None


def _convert(value, hint, where: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for alternative in (a for a in args if a is not type(None)):
            try:
                return _convert(value, alternative, where)
            except ParamsError as err:
                errors.append(str(err))
        raise ParamsError(" / ".join(errors))
    if origin is typing.Literal:
        if value not in args:
            raise ParamsError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{where}: expected a list, got {value!r}")
        return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{where}: expected a mapping, got {value!r}")
        return {k: _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return parse_section(hint, value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        raise ParamsError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def for_method(section: dict, method: str) -> dict:
    """A section's plain keys overlaid with its ``<method>`` mapping (a per-method override)."""
    plain = {k: v for k, v in section.items() if not isinstance(v, dict)}
    return {**plain, **section.get(method, {})}


#: Runs of a staged method whose budget is their own mapping, ``budget.<run>`` (the last stage's
#: is the method's, ``budget.rie``), so that changing one stage's budget re-runs that stage and
#: the ones after it, not those before.
STAGED_RUNS = {"rie_stage1": "rie", "rie_stage2": "rie"}


def budget_key(method: str, name: str | None) -> str:
    """The ``budget`` mapping of a run: its own for an earlier stage of a staged method, else its method's."""
    return name if name in STAGED_RUNS else method


def budget_for(budget: dict, method: str, kind: str) -> dict:
    """The ``budget`` section for one method and input kind: the plain keys, overlaid with
    ``budget.<method>``'s plain keys, overlaid with ``budget.<method>.<kind>`` ("gt" or
    "detected", where a method's two paper configurations need different budgets)."""
    return for_method(for_method(budget, method), kind)


def parse_overrides(items: list[str]) -> dict:
    """``["key=value", ...]`` (a stage's ``--set`` options) as a dict, each value read as YAML.

    ``["sgt=learnable", "temperature_epochs=0.6", "padding=[c, z]"]`` gives
    ``{"sgt": "learnable", "temperature_epochs": 0.6, "padding": ["c", "z"]}``.
    """
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    return overrides


@dataclass(frozen=True)
class BudgetParams:
    """The ``budget`` section as it applies to one method (see :func:`for_method` and params.yaml)."""

    max_epochs: int | None
    batch_size: int | None
    train_stride: int
    lr_scale: float
    decay: Literal["paper", "cosine", "linear"]
    warmup: float
    bf16_cpu: bool
    max_seeds: int | None
    curve_points: int | None  # the run's test-curve points (null: train.curve_points)

    def __post_init__(self):
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ParamsError("budget.max_epochs must be >= 1 or null (the paper's schedule)")
        if self.batch_size is not None and self.batch_size < 1:
            raise ParamsError(f"budget.batch_size must be >= 1 or null (the paper's), got {self.batch_size}")
        if self.train_stride < 1:
            raise ParamsError("budget.train_stride must be >= 1")
        if self.lr_scale <= 0:
            raise ParamsError(f"budget.lr_scale must be > 0, got {self.lr_scale}")
        if not 0.0 <= self.warmup < 1.0:
            raise ParamsError(f"budget.warmup is a share of the run's steps in [0, 1), got {self.warmup}")
        if self.max_seeds is not None and self.max_seeds < 1:
            raise ParamsError("budget.max_seeds must be >= 1 or null (every seed of train.seeds)")
        if self.curve_points is not None and self.curve_points < 0:
            raise ParamsError(f"budget.curve_points must be >= 0 or null (train.curve_points), got {self.curve_points}")


@dataclass(frozen=True)
class TrainParams:
    """The ``train`` section."""

    seeds: tuple[int, ...]
    threads: int
    curve_points: int
    curve_test_stride: int
    val_fraction: float
    checkpoint: str

    def __post_init__(self):  # a field a stage does not read is None (parse_section's ``only``)
        if self.seeds is not None and (not self.seeds or min(self.seeds) < 0 or len(set(self.seeds)) != len(self.seeds)):
            raise ParamsError(f"train.seeds must be distinct integers >= 0, got {list(self.seeds)}")
        if self.threads is not None and self.threads < 1:
            raise ParamsError(f"train.threads must be >= 1, got {self.threads}")
        if (self.curve_points is not None and self.curve_points < 0) or \
                (self.curve_test_stride is not None and self.curve_test_stride < 1):
            raise ParamsError("train.curve_points must be >= 0 and train.curve_test_stride >= 1")
        if self.checkpoint is not None and self.checkpoint not in ("last", "val_best", "test_best"):
            raise ParamsError(f"train.checkpoint must be last, val_best or test_best, got {self.checkpoint!r}")
        if self.val_fraction is not None and not 0.0 < self.val_fraction < 1.0:
            raise ParamsError("train.val_fraction must be in (0, 1)")

    def seeds_for(self, budget: BudgetParams) -> tuple[int, ...]:
        """The seeds one run trains: the first ``budget.max_seeds`` of ``seeds`` (all when null)."""
        return self.seeds[:budget.max_seeds] if budget.max_seeds else self.seeds


def check_train_stride(stride: int, longest: int, key: str) -> None:
    """Refuse a stride that keeps only the first frame of every training sequence (``longest``:
    the longest training sequence's frame count; ``key``: the params key, for the message)."""
    if stride >= longest:
        raise ParamsError(f"{key} is {stride}, not below the longest training sequence ({longest} frames): every "
                          f"sequence would keep only its first frame; use a stride below {longest}")


#: The 2D source the pipeline makes itself (render, train_detector, detect2d): no file to fetch.
DETECTED = "detected"


def files_2d(inputs2d) -> list[str]:
    """The 2D sources of ``data.inputs2d`` read from the dataset's files (all but :data:`DETECTED`)."""
    return [source for source in inputs2d if source != DETECTED]


def images_needed(inputs2d, runs) -> bool:
    """The rendered images and the detector feed the ``detected`` 2D source and Context-Aware
    PoseFormer only: render, train_detector and detect2d run when either is asked for (``runs``:
    params.yaml's mapping of each method to its 2D inputs)."""
    capf_inputs = _names(runs if isinstance(runs, dict) else {}, "context_poseformer", [], "runs.")
    return DETECTED in (inputs2d or ()) or bool(capf_inputs)


@dataclass(frozen=True)
class RenderParams:
    """The ``render`` section: the size of the rendered crops (pixels; upstream's are 192 x 256) and
    how the embedded body is drawn (:data:`lifting.images.render.BODIES`: a bare mannequin, with
    front/back markings, or a person with a face and hands)."""

    width: int
    height: int
    body: Literal["mannequin", "marked", "person"]
    outfits: Literal["subject", "sequence"]

    def __post_init__(self):
        if self.width < 32 or self.height < 32 or self.width % 16 or self.height % 16:
            raise ParamsError(f"render.width and render.height must be multiples of 16 and at least 32 (the "
                              f"detector's maps go down to 1/32 of the crop), got {self.width} x {self.height}")


@dataclass(frozen=True)
class EvalParams:
    """The ``eval`` section: the evaluation protocol (written into every metrics file)."""

    exclude_s9_damaged: bool
    test_every50: bool


def pipeline_runs(params: dict) -> list[tuple[str, str]]:
    """Every (run, 2D input) pair the pipeline trains and scores, in report order.

    Each method of ``runs`` (in its order) on the 2D inputs it lists (its ``train_<method>`` and
    ``evaluate_<method>`` stages, :func:`run_stages`); GridConv once per variant of ``gridconv_sgt``
    (run ``gridconv_<sgt>``). Every listed input must be a source of ``data.inputs2d``, and some
    method must have one (the report compares runs).
    """
    inputs2d = _names(params.get("data", {}), "inputs2d", [], "data.")
    runs = params.get("runs", {})
    if not isinstance(runs, dict):
        raise ParamsError(f"runs must map each method to its 2D inputs (runs: {{knn: [gt], ...}}), got {runs!r}")
    pairs = []
    for method in runs:
        chosen = _names(runs, method, [], "runs.")
        unknown = [i for i in chosen if i not in inputs2d]
        if unknown:
            raise ParamsError(f"runs.{method} {chosen}: {unknown} not in data.inputs2d {inputs2d} "
                              "(a run takes one of the pipeline's 2D inputs)")
        names = [f"gridconv_{sgt}" for sgt in _names(params, "gridconv_sgt", [])] if method == "gridconv" else [method]
        pairs += [(name, input2d) for name in names for input2d in chosen]
    if not pairs:
        raise ParamsError("runs: no method has a 2D input: give at least one (e.g. runs.knn: [gt]); "
                          "the report compares the runs")
    return pairs


def run_stages(run: str, input2d: str) -> tuple[str, str]:
    """The dvc.yaml stages that train and score ``run`` on ``input2d``: ``train_hgn@gt`` and
    ``evaluate_hgn@gt``; ``train_gridconv@learnable-gt`` for ``gridconv_learnable``; Pose3D-RIE's last
    training stage ``train_rie_stage3@gt``."""
    if run.startswith("gridconv_"):
        item = f"{run.removeprefix('gridconv_')}-{input2d}"
        return f"train_gridconv@{item}", f"evaluate_gridconv@{item}"
    train = "train_rie_stage3" if run == "rie" else f"train_{run}"
    return f"{train}@{input2d}", f"evaluate_{run}@{input2d}"


def _names(params: dict, key: str, default: list, where: str = "") -> list[str]:
    """``params[key]``, a list of names (``-S runs.knn=gt`` gives a string, not a one-item list)."""
    value = params.get(key, default)
    if not isinstance(value, (list, tuple)) or not all(isinstance(name, str) for name in value):
        raise ParamsError(f"{where}{key} must be a list of names in brackets ([a, b]), got {value!r}")
    return list(value)


@dataclass(frozen=True)
class RobustnessParams:
    """The ``robustness`` section: the levels of each perturbation of the test 2D
    (:mod:`lifting.robustness`), the test subsample scored and the perturbations' seed."""

    jitter_px: tuple[float, ...]
    gross_share: tuple[float, ...]
    swap_share: tuple[float, ...]
    missing_share: tuple[float, ...]
    missing_frames: int
    test_stride: int
    seed: int

    def __post_init__(self):
        for name in ("jitter_px", "gross_share", "swap_share", "missing_share"):
            levels = list(getattr(self, name))
            if len(levels) < 2 or levels[0] != 0:
                raise ParamsError(f"robustness.{name} must start with the level 0 (no change) and have at least one "
                                  f"more, got {levels}")
            if min(levels) < 0:
                raise ParamsError(f"robustness.{name}: a level must be >= 0, got {levels}")
            if any(b <= a for a, b in zip(levels, levels[1:])):
                raise ParamsError(f"robustness.{name}: the levels must increase, got {levels}")
            if name.endswith("_share") and max(levels) > 1:
                raise ParamsError(f"robustness.{name}: a share must lie in [0, 1], got {levels}")
        if self.missing_frames < 1:
            raise ParamsError(f"robustness.missing_frames must be >= 1, got {self.missing_frames}")
        if self.test_stride < 1:
            raise ParamsError(f"robustness.test_stride must be >= 1, got {self.test_stride}")
        if self.seed < 0:
            raise ParamsError(f"robustness.seed must be an integer >= 0, got {self.seed}")
