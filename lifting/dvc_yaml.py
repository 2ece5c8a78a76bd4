"""dvc.yaml, written from the code: ``python -m lifting.dvc_yaml`` rewrites it, ``--check`` says whether it is current.

Why generated rather than kept by hand: a stage's code dependencies must be exactly the import
closure of its modules (:mod:`lifting.code_deps`), and that closure differs per method (HGN runs
SemGCN's graph layers, the MLP does not). DVC can neither interpolate a list into ``deps`` nor
concatenate lists, so one ``matrix`` over every method cannot give each method its own files: each
method has its own ``train_<method>`` / ``evaluate_<method>`` stages, a matrix over its 2D inputs
(``runs.<method>`` in params.yaml, so ``dvc exp run -S 'runs.hgn=[gt,noisy]'`` adds runs without
regenerating). Writing those blocks by hand would repeat the data dependencies and the budget keys
in every one of them; here each is written once. ``tests/test_dvc_yaml.py`` fails when dvc.yaml is
not this module's output, and (independently, on DVC's own expansion of the file) when a stage's
code deps are not its import closure.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from lifting.code_deps import import_closure, notebook_modules
from lifting.config import BudgetParams, STAGED_RUNS
from lifting.models import METHOD_NAMES, method_module_name

REPO = Path(__file__).resolve().parents[1]
GATE = "data/params_checked.json"
HEADER = """\
# Written by `python -m lifting.dvc_yaml` from lifting/dvc_yaml.py: edit that, then run it (tests/test_dvc_yaml.py
# fails when this file is not its output). Each stage's code deps (lifting/, stages/) are exactly the import
# closure of the modules it runs (lifting/code_deps.py), so `dvc status` names the stages a code change touches.
# Every other stage depends on data/params_checked.json, check_params' output: any dvc repro checks params.yaml first.
"""


@dataclass(frozen=True)
class Stage:
    """One block of dvc.yaml. ``modules``: the dotted modules the command runs (their import closure
    is the stage's code deps); ``deps``: its other dependencies (data, notebooks); ``comment``: a
    line after the stage's name."""

    name: str
    cmd: str
    modules: tuple[str, ...]
    deps: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    matrix: tuple[tuple[str, str], ...] = ()
    extra: str = ""
    comment: str = ""
    gated: bool = True


#: The data every run of one 2D input reads: a new detector re-runs the detected runs alone.
RUN_DATA = ("data/aligned/targets.parquet", "data/aligned/stats.json", "data/aligned/markers.parquet",
            "data/aligned/inputs2d_${item.input2d}.parquet", "data/aligned/inputs2d_${item.input2d}.stats.json")
PLAIN_BUDGET = tuple(f"budget.{f.name}" for f in dataclasses.fields(BudgetParams))
EVALUATE_PARAMS = ("eval", "data.source", "data.test_subjects")
IMAGE_PARAMS = ("data.source", "data.inputs2d", "runs.context_poseformer")
#: What a method's stages read besides the run data (Context-Aware PoseFormer: the crops and the detector).
IMAGE_DATA = ("data/images",)


def _block(stage: Stage) -> str:
    lines = [f"  # {line}" for line in textwrap.wrap(stage.comment, 114)] + [f"  {stage.name}:"]
    if stage.matrix:
        lines += ["    matrix:"] + [f"      {key}: {value}" for key, value in stage.matrix]
    lines += ["    cmd: >-"] + [f"      {line}" for line in _wrap_options(stage.cmd)]
    code = sorted(import_closure(REPO, stage.modules))
    lines += _flow("deps", [*([GATE] if stage.gated else []), *stage.deps], code)
    if stage.params:
        lines += _flow("params", stage.params)
    if stage.outs:
        lines += ["    outs:"] + [f"      - {o}" for o in stage.outs]
    return "\n".join(lines) + ("\n" + stage.extra.rstrip("\n") if stage.extra else "") + "\n"


def _flow(key: str, *groups, width: int = 118) -> list[str]:
    """``key: [a, b, ...]`` as a YAML flow list wrapped at ``width`` (35 files in 6 lines, not 35),
    each group of items starting on a line of its own; items holding ``${...}`` are quoted."""
    prefix, indent = f"    {key}: [", " " * (len(key) + 7)
    lines = []
    for group in groups:
        line = ""
        for word in (f'"{item}"' if "{" in item else item for item in group):
            start = prefix if not lines and not line else indent
            if line and len(start) + len(line) + len(word) + 2 > width:
                lines.append(line + ",")
                line = word
            else:
                line = f"{line}, {word}" if line else word
        if line:
            lines.append(line + ",")
    lines[-1] = lines[-1][:-1] + "]"
    return [(prefix if i == 0 else indent) + line for i, line in enumerate(lines)]


def _wrap_options(cmd: str, width: int = 112) -> list[str]:
    """A command on lines of at most ``width``, broken only before an option (``--key value`` stays whole)."""
    lines = []
    for part in re.split(r" (?=--)", cmd):
        if lines and len(lines[-1]) + 1 + len(part) <= width:
            lines[-1] += " " + part
        else:
            lines.append(part)
    return lines


def _uncached(path: str, comment: str = "") -> str:
    return f"{path}:{'     # ' + comment if comment else ''}\n          cache: false"


def _train_plot(run: str) -> str:
    return (f"    plots:\n      - metrics/train/{run}.csv:\n          cache: false\n"
            f"          x: samples_seen\n          y: test_p1_mm")


def data_stages() -> list[Stage]:
    """From params.yaml to the aligned arrays every run reads (and the images and detector when asked for)."""
    return [
        Stage("check_params", "python -m stages.check_params --out data/params_checked.json",
              ("stages.check_params", *(method_module_name(m) for m in METHOD_NAMES)), deps=("params.yaml",),
              outs=(GATE,), gated=False,
              comment="depends on the whole file and every method's Config; its output (the same whenever the "
                      "check passes) gates every other stage"),
        Stage("fetch", "python -m stages.fetch --out data/raw", ("stages.fetch",),
              params=("data.source", "data.h36m_dir", "data.smpl_dir", "data.download", "data.inputs2d"),
              outs=("data/raw",)),
        Stage("normalize", "python -m stages.normalize --raw data/raw --out data/parquet", ("stages.normalize",),
              deps=("data/raw",), params=("data.source", "data.inputs2d"), outs=("data/parquet",)),
        Stage("render", "python -m stages.render --raw data/raw --store data/parquet --out data/images",
              ("stages.render",), deps=("data/raw", "data/parquet"),
              params=(*IMAGE_PARAMS, "data.h36m_videos", "render"), outs=("data/images",),
              comment="the images of the detector and Context-Aware PoseFormer: runs only when data.inputs2d has "
                      "detected or runs.context_poseformer is set"),
        Stage("train_detector", "python -m stages.train_detector --images data/images --store data/parquet "
                                "--out data/detector --log metrics/train/detector.csv",
              ("stages.train_detector",), deps=("data/images", "data/parquet"),
              params=(*IMAGE_PARAMS, "data.train_subjects", "detector", "train.threads"), outs=("data/detector",),
              extra="    plots:\n      - metrics/train/detector.csv:\n          cache: false\n"
                    "          x: samples_seen\n          y: train_loss"),
        Stage("detect2d", "python -m stages.detect2d --images data/images --detector data/detector/model.pt "
                          "--store data/parquet --out data/detected --metrics metrics/detector.json",
              ("stages.detect2d",), deps=("data/images", "data/detector", "data/parquet"),
              params=(*IMAGE_PARAMS, "data.train_subjects", "data.test_subjects", "detector.flip_test",
                      "detector.bf16_cpu", "train.threads"),
              outs=("data/detected", _uncached("metrics/speed/detector.json", "seconds and views/s: beside the "
                                                                              "metrics, not in them")),
              extra="    metrics:\n      - metrics/detector.json:\n          cache: false"),
        Stage("align", "python -m stages.align --store data/parquet --detected data/detected --out data/aligned",
              ("stages.align",), deps=("data/parquet", "data/detected"),
              params=("data.source", "data.inputs2d", "data.train_subjects", "data.test_subjects"),
              outs=("data/aligned",)),
    ]


@dataclass(frozen=True)
class RunBlock:
    """The train and evaluate stages of one method (or one of its variants or training stages).

    ``run``: the run's name in files (``${item.sgt}`` in it for GridConv's variants); ``method``:
    the registered method; ``stage``: the train block's name; ``set``: ``--set`` options;
    ``init``: the ``--init`` file (the previous stage's model); ``images``: the method looks at the
    image (``--images`` and the frozen ``--detector`` whose features it samples); ``evaluate``:
    whether this block's run is scored (not RIE's first two stages)."""

    method: str
    run: str
    stage: str
    matrix: tuple[tuple[str, str], ...]
    budget: str
    set: tuple[str, ...] = ()
    init: str | None = None
    init_dep: str | None = None
    images: bool = False
    evaluate: bool = True
    model_params: tuple[str, ...] = field(default=())
    comment: str = ""


def run_blocks() -> list[RunBlock]:
    """Every method's blocks, in the order of ``METHOD_NAMES``."""
    inputs = lambda method: (("input2d", f"${{runs.{method}}}"),)  # noqa: E731
    blocks = []
    for method in METHOD_NAMES:
        if method == "gridconv":
            blocks.append(RunBlock(method, "gridconv_${item.sgt}", "train_gridconv",
                                   (("sgt", "${gridconv_sgt}"), *inputs(method)), method, set=("sgt=${item.sgt}",),
                                   model_params=("model.padding",),
                                   comment="one run per variant of gridconv_sgt, on runs.gridconv"))
        elif method == "rie":
            stages = sorted(STAGED_RUNS, key=lambda run: run[-1]) + ["rie"]
            for k, run in enumerate(stages, start=1):
                before = stages[k - 2] if k > 1 else None
                blocks.append(RunBlock(
                    method, run, f"train_rie_stage{k}", inputs(method), run, set=(f"stage={k}",),
                    init=f"data/checkpoints/{before}-${{item.input2d}}/model.pt" if before else None,
                    init_dep=f"data/checkpoints/{before}-${{item.input2d}}" if before else None,
                    evaluate=run == "rie",
                    comment="Pose3D-RIE's three training stages: each starts from the one before (--init)"
                    if k == 1 else ""))
        elif method == "context_poseformer":
            blocks.append(RunBlock(method, method, f"train_{method}", inputs(method), method,
                                   images=True,
                                   comment="the lifting network on the detector's frozen features"))
        else:
            blocks.append(RunBlock(method, method, f"train_{method}", inputs(method), method))
    return blocks


def _run_id(block: RunBlock) -> str:
    return f"{block.run}-${{item.input2d}}"


def train_stage(block: RunBlock) -> Stage:
    run = _run_id(block)
    name = "" if block.run == block.method else f" --name {block.run}"
    options = "".join(f" --set {s}" for s in block.set) + name
    images = " --images data/images --detector data/detector/model.pt" if block.images else ""
    init = f" --init {block.init}" if block.init else ""
    cmd = (f"python -m stages.train --method {block.method}{options} --input2d ${{item.input2d}} "
           f"--aligned data/aligned{images}{init} "
           f"--out data/checkpoints/{run} --log metrics/train/{run}.csv")
    deps = (*((block.init_dep,) if block.init_dep else ()), *RUN_DATA,
            *((*IMAGE_DATA, "data/detector") if block.images else ()))
    params = (*PLAIN_BUDGET, f"budget.{block.budget}", "train", *block.model_params, f"model.{block.method}")
    return Stage(block.stage, cmd, ("stages.train", method_module_name(block.method)), deps=deps, params=params,
                 outs=(f"data/checkpoints/{run}:\n          persist: true     # keeps checkpoint.pt: an interrupted "
                       f"run resumes",),
                 matrix=block.matrix, extra=_train_plot(run), comment=block.comment)


def _scoring_name(block: RunBlock, verb: str) -> str:
    """The name of a stage that scores ``block``'s run: ``train`` replaced by ``verb``, RIE's last
    stage named after the run (``evaluate_rie@gt``)."""
    return block.stage.replace("train", verb, 1).removesuffix("_stage3")


def _metrics_extra(path: str) -> str:
    """The ``metrics:`` block declaring ``path`` (committed, not cached)."""
    return f"    metrics:\n      - {path}:\n          cache: false"


#: Why a speed sibling is beside a metrics file.
SPEED_COMMENT = "seconds and samples/s: beside the metrics, not in them"


def evaluate_stage(block: RunBlock) -> Stage:
    run = _run_id(block)
    images = " --images data/images" if block.images else ""
    cmd = (f"python -m stages.evaluate --model data/checkpoints/{run}/model.pt "
           f"--input2d ${{item.input2d}} --aligned data/aligned{images} "
           f"--metrics metrics/{run}.json --predictions data/predictions/{run}.parquet")
    deps = (*RUN_DATA, *(IMAGE_DATA if block.images else ()), f"data/checkpoints/{run}")
    return Stage(_scoring_name(block, "evaluate"), cmd, ("stages.evaluate", method_module_name(block.method)), deps=deps,
                 params=EVALUATE_PARAMS,
                 outs=(f"data/predictions/{run}.parquet",
                       _uncached(f"metrics/speed/{run}.json", SPEED_COMMENT)),
                 matrix=block.matrix, extra=_metrics_extra(f"metrics/{run}.json"))


MPI3DHP_STORE = "data/mpi3dhp"


def normalize_3dhp_stage() -> Stage:
    return Stage("normalize_3dhp", f"python -m stages.normalize_3dhp --out {MPI3DHP_STORE}", ("stages.normalize_3dhp",),
                 params=("data.mpi3dhp_dir",), outs=(MPI3DHP_STORE,),
                 comment="MPI-INF-3DHP's test set from data.mpi3dhp_dir (TS1..TS6), read and checked; null: a "
                         "folder saying it is skipped")


def evaluate_3dhp_stage(block: RunBlock) -> Stage:
    """A run scored zero-shot on MPI-INF-3DHP (a skipped record, without loading the run, where
    ``data.mpi3dhp_dir`` is null)."""
    run = _run_id(block)
    cmd = (f"python -m stages.evaluate_3dhp --model data/checkpoints/{run}/model.pt --input2d ${{item.input2d}} "
           f"--store {MPI3DHP_STORE} --metrics metrics/3dhp/{run}.json")
    return Stage(_scoring_name(block, "evaluate_3dhp"), cmd, ("stages.evaluate_3dhp", method_module_name(block.method)),
                 deps=(MPI3DHP_STORE, f"data/checkpoints/{run}"), params=("data.source",), matrix=block.matrix,
                 extra=_metrics_extra(f"metrics/3dhp/{run}.json"))


#: The data a run's robustness stage reads: its 2D input's test frames, their targets and image widths.
ROBUSTNESS_DATA = ("data/aligned/targets.parquet", "data/aligned/stats.json",
                   "data/aligned/inputs2d_${item.input2d}.parquet", "data/aligned/inputs2d_${item.input2d}.stats.json",
                   "data/parquet/cameras.parquet")


def robustness_stage(block: RunBlock) -> Stage:
    """``robustness_<method>@<input>``: the trained run on perturbed test 2D (:mod:`lifting.robustness`)."""
    run = _run_id(block)
    images = " --images data/images" if block.images else ""
    cmd = (f"python -m stages.robustness --model data/checkpoints/{run}/model.pt --input2d ${{item.input2d}} "
           f"--aligned data/aligned --cameras data/parquet/cameras.parquet{images} "
           f"--metrics metrics/robustness/{run}.json")
    deps = (*ROBUSTNESS_DATA, *(IMAGE_DATA if block.images else ()), f"data/checkpoints/{run}")
    return Stage(_scoring_name(block, "robustness"), cmd, ("stages.robustness", method_module_name(block.method)), deps=deps,
                 params=("robustness",),
                 outs=(_uncached(f"metrics/robustness/speed/{run}.json", SPEED_COMMENT),),
                 matrix=block.matrix, extra=_metrics_extra(f"metrics/robustness/{run}.json"))


def report_stage() -> Stage:
    notebook = "reports/comparison.ipynb"
    return Stage("report", "python -m stages.report", ("stages.report", *sorted(notebook_modules(REPO / notebook))),
                 deps=(notebook, "lifting/report/published.csv", "metrics", "data/predictions", "data/aligned",
                       "data/parquet/cameras.parquet", "benchmarks/results/convergence",
                       "benchmarks/results/experiments"),
                 params=("runs", "gridconv_sgt", "data.inputs2d", "report"),
                 outs=("reports/comparison.html", "reports/results.md:\n          cache: false      # committed; "
                       "the README links to it"))


def plots(params: dict) -> str:
    """The overlay of every default run's curves (DVC cannot expand a params list here; the
    file is regenerated, and tests/test_dvc_yaml.py checked, against params.yaml's runs)."""
    from lifting.config import pipeline_runs
    from lifting.runner import is_lookup

    files = [f"metrics/train/{run}-{i}.csv" for run, i in pipeline_runs(params)
             if not (run in METHOD_NAMES and is_lookup(run))]
    text = ["", "# One overlay of every default run's curves. test_p1_mm is scored on every 8th test frame and",
            "# logged only: nothing selects on it.", "plots:"]
    for title, column, label in (("test-set P1 by method (logged, never used for selection)", "test_p1_mm",
                                  "test P1 (mm, every 8th test frame)"),
                                 ("training loss by method", "train_loss", "training loss (each method's own)")):
        text += [f"  - {title}:", "      template: by_method", "      x: samples_seen", "      y:"]
        text += [f"        {f}: {column}" for f in files]
        text += [f"      y_label: {label}"]
    return "\n".join(text) + "\n"


def render(params: dict) -> str:
    """The text of dvc.yaml for ``params`` (params.yaml: only its default runs, for the plots)."""
    stages = [*data_stages(), normalize_3dhp_stage()]
    for block in run_blocks():
        stages.append(train_stage(block))
        if block.evaluate:
            stages.append(evaluate_stage(block))
            if not block.images:  # MPI-INF-3DHP's images are not read: a method that looks at them is not scored there
                stages.append(evaluate_3dhp_stage(block))
            stages.append(robustness_stage(block))
    stages.append(report_stage())
    return HEADER + "stages:\n" + "".join(_block(s) for s in stages) + plots(params)


def main(argv=None) -> None:
    import yaml

    cli = argparse.ArgumentParser(description="Write dvc.yaml from lifting/dvc_yaml.py and the code's imports.")
    cli.add_argument("--check", action="store_true", help="only say whether dvc.yaml is current (exit 1 if not)")
    args = cli.parse_args(argv)
    text = render(yaml.safe_load((REPO / "params.yaml").read_text()))
    target = REPO / "dvc.yaml"
    if args.check:
        current = target.read_text() == text
        print("dvc.yaml is current" if current else "dvc.yaml is stale: run `python -m lifting.dvc_yaml`")
        sys.exit(0 if current else 1)
    target.write_text(text)


if __name__ == "__main__":
    main()
