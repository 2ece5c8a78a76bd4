"""The comparison report: load the pipeline's artefacts, build the tables and figures, render HTML.

The report only *reads* artefacts (DESIGN §C.7-13): the evaluate stage's metrics JSON, the train
stage's per-epoch CSV logs, the prediction Parquet files, the aligned targets and 2D inputs, and
the cameras. Nothing here retrains a model or re-scores a method; per-frame errors for the
distribution plots are the one thing computed, from predictions vs targets, and they are checked
against the metrics' frame-mean.

``reports/comparison.ipynb`` is a thin notebook whose cells call these functions;
:func:`render_report` executes it with papermill and converts it to HTML with nbconvert (code
hidden, no CDN scripts). Figures are :class:`matplotlib.figure.Figure` objects drawn with the Agg
canvas (headless; no pyplot state). 3D axes use ``set_box_aspect`` (not ``set_aspect('equal')``).

Names: P1 = MPJPE (``mpjpe_mm``), P2 = P-MPJPE (``p_mpjpe_mm``), P3 = N-MPJPE (``n_mpjpe_mm``);
"action-mean" is the papers' headline (mean over actions of per-action frame means), "frame-mean"
pools all frames (MMPose's headline).
"""

from __future__ import annotations

import csv
import html
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from lifting.data.schema import cameras_from_frame, joint_columns, poses_from_frame, read_metadata, read_table
from lifting.errors import DataError
from lifting.geometry import image_coordinates
from lifting.io import atomic_path
from lifting.metrics import joint_errors_mpjpe
from lifting.skeleton import H36M17, JointSet, get_joint_set

#: The three protocols of every metrics file: (key in the JSON, short name, long name).
PROTOCOLS = (("mpjpe_mm", "P1", "MPJPE"), ("p_mpjpe_mm", "P2", "P-MPJPE"), ("n_mpjpe_mm", "P3", "N-MPJPE"))
#: Row keys shared by predictions and targets.
KEYS = ["subject", "action", "sequence", "camera", "frame"]
#: Knobs of the ``report`` section of params.yaml, with their defaults.
REPORT_DEFAULTS = {"qualitative_frames": 3}

METHOD_NAMES = {
    "knn": "k-NN pose lookup (floor)",
    "simple_baseline": "Martinez simple baseline",
    "semgcn": "SemGCN",
    "modulated_gcn": "Modulated GCN",
    "gridconv_handcrafted": "D-GridConv, handcrafted SGT",
    "gridconv_learnable": "D-GridConv, learnable SGT",
    "hgn": "HGN",
    "rie": "Pose3D-RIE",
    "ca_poseformer": "Context-Aware PoseFormer",
    "videopose3d": "VideoPose3D",
}


# ------------------------------------------------------------------------------------------------
# Published numbers


@dataclass(frozen=True)
class Published:
    """One published result on Human3.6M (S9+S11, mm), from reference/methods.md §9.

    Attributes:
        method: our method key (``simple_baseline``, ...), or the anchor's key.
        variant: the paper's configuration the numbers belong to.
        frames: temporal receptive field. input2d: the 2D input as the paper names it.
        input_kind: how our ``data.inputs2d`` names that input: ``gt`` or the prefix of a
            detection source (``cpn_ft``, ``sh_ft``, ``hrnet``); matched by :func:`published_for`.
        p1, p2: MPJPE and P-MPJPE in mm, as printed by the source (``None``: not published or
            not verified).
        params: parameter count as reported (or computed, where marked).
        source: where the number comes from. note: protocol caveats.
    """

    method: str
    variant: str
    frames: int
    input2d: str
    input_kind: str
    p1: str
    p2: str | None
    params: str | None
    source: str
    note: str = ""


#: Only the rows of methods.md §9 with a (verified) P1; the first row of a (method, input kind)
#: is the configuration our defaults reproduce and is the one shown in the leaderboard.
PUBLISHED: tuple[Published, ...] = (
    Published("simple_baseline", "PyTorch re-implementation", 1, "GT (16 joints)", "gt", "44.40", "35.25", "4.29M",
              "SemGCN README"),
    Published("simple_baseline", "PyTorch re-implementation", 1, "SH fine-tuned", "sh_ft", "63.48", "48.15", "4.29M",
              "SemGCN README"),
    Published("semgcn", "SemGCN", 1, "GT (16 joints)", "gt", "42.14", "33.53", "0.27M", "SemGCN README"),
    Published("semgcn", "SemGCN + non-local", 1, "GT (16 joints)", "gt", "40.78", "31.46", "0.43M", "SemGCN README"),
    Published("semgcn", "SemGCN + non-local", 1, "SH fine-tuned", "sh_ft", "61.24", "47.71", "0.43M", "SemGCN README"),
    Published("modulated_gcn", "Modulated GCN", 1, "GT (16 joints)", "gt", "38.25", "30.06", "0.29M",
              "Modulated GCN README + checkpoint name"),
    Published("modulated_gcn", "Modulated GCN (+ post-refinement?)", 1, "CPN", "cpn_ft", "49.39", None,
              "≈2.7M (computed)", "Modulated GCN benchmark checkpoint name", "P1 read from a checkpoint file name"),
    Published("hgn", "HGN", 1, "GT", "gt", "37.32", None, "≈1.04M (computed)", "HGN README",
              "tested on every 50th frame"),
    Published("gridconv_learnable", "D-GridConv, learnable SGT", 1, "GT", "gt", "36.39", "28.29", "4.79M", "GridConv README"),
    Published("gridconv_handcrafted", "D-GridConv, handcrafted SGT", 1, "GT", "gt", "37.15", "28.32", "4.79M (computed)",
              "GridConv README"),
    Published("gridconv_learnable", "D-GridConv, learnable SGT", 1, "HRNet (EvoSkeleton)", "hrnet", "47.56", "37.43", "4.79M",
              "GridConv README", "S9 drifting sequences excluded"),
    Published("gridconv_handcrafted", "D-GridConv, handcrafted SGT", 1, "HRNet (EvoSkeleton, H36M-ft)", "hrnet", "47.93", "37.85",
              "4.79M", "GridConv README", "S9 drifting sequences excluded"),
    Published("videopose3d", "VideoPose3D (the RIE backbone)", 243, "CPN", "cpn_ft", "46.8", "36.5", None,
              "VideoPose3D README"),
    Published("videopose3d", "VideoPose3D (the RIE backbone)", 243, "GT", "gt", "37.2", "27.2", None,
              "VideoPose3D README"),
)

PUBLISHED_LABEL = "published, Human3.6M"


def published_for(method: str, input2d: str) -> Published | None:
    """The published row that matches one of our runs: same method, same kind of 2D input."""
    for row in PUBLISHED:
        if row.method == method and (input2d == row.input_kind if row.input_kind == "gt"
                                     else input2d.startswith(row.input_kind)):
            return row
    return None


def published_table(methods=None) -> pd.DataFrame:
    """The published rows (of ``methods``, or all), as a table labelled "published, Human3.6M"."""
    rows = [row for row in PUBLISHED if methods is None or row.method in set(methods)]
    return pd.DataFrame({
        "method": [r.method for r in rows],
        "configuration": [r.variant for r in rows],
        "frames": [r.frames for r in rows],
        "2D input": [r.input2d for r in rows],
        "P1 (mm)": [r.p1 for r in rows],
        "P2 (mm)": [r.p2 for r in rows],
        "params": [r.params for r in rows],
        "source": [r.source + (f"; {r.note}" if r.note else "") for r in rows],
    })


# ------------------------------------------------------------------------------------------------
# Loading artefacts


def report_options(report: dict | None) -> dict:
    """The ``report`` section of params.yaml merged over :data:`REPORT_DEFAULTS` (unknown keys fail)."""
    report = dict(report or {})
    unknown = sorted(set(report) - set(REPORT_DEFAULTS))
    if unknown:
        raise ValueError(f"report: unknown key(s) {unknown}; known: {sorted(REPORT_DEFAULTS)}")
    options = {**REPORT_DEFAULTS, **report}
    if not isinstance(options["qualitative_frames"], int) or options["qualitative_frames"] < 0:
        raise ValueError("report.qualitative_frames must be an integer >= 0")
    return options


def load_metrics(metrics_dir: str | Path, methods, inputs2d) -> dict[tuple[str, str], dict]:
    """``{(method, input2d): metrics record}`` for every method x 2D input, in that order."""
    metrics_dir = Path(metrics_dir)
    runs = {}
    for method in methods:
        for input2d in inputs2d:
            path = metrics_dir / f"{method}-{input2d}.json"
            rerun = f"re-run `dvc repro evaluate@{method}-{input2d}`"
            try:
                record = json.loads(path.read_text())
            except FileNotFoundError:
                raise DataError(path, "metrics file not found",
                                f"run `dvc repro evaluate@{method}-{input2d}` (or `dvc repro`)") from None
            except json.JSONDecodeError as err:
                raise DataError(path, f"not valid JSON ({err})", rerun) from None
            for key in ("method", "input2d", "protocol", "metrics"):
                if key not in record:
                    raise DataError(path, f"metrics record lacks {key!r}", rerun)
            runs[(method, input2d)] = record
    if not runs:
        raise ValueError("no runs to report: `methods` or `data.inputs2d` is empty")
    return runs


def load_train_logs(log_dir: str | Path, methods, inputs2d) -> pd.DataFrame:
    """All per-epoch training logs in one long table (method, input2d, epoch, train_loss, ...).

    A method without training (the k-NN lookup) has a header-only CSV and contributes no rows;
    a missing CSV is an error.
    """
    log_dir = Path(log_dir)
    frames = []
    for method in methods:
        for input2d in inputs2d:
            path = log_dir / f"{method}-{input2d}.csv"
            if not path.exists():
                raise DataError(path, "training log not found", f"run `dvc repro train@{method}-{input2d}`")
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            if rows:
                frame = pd.DataFrame(rows)
                frame.insert(0, "input2d", input2d)
                frame.insert(0, "method", method)
                frames.append(frame)
    columns = ["method", "input2d", "epoch", "train_loss", "val_mpjpe_mm", "lr", "seconds", "samples_per_s"]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=str if c in ("method", "input2d") else float) for c in columns})
    logs = pd.concat(frames, ignore_index=True)
    for column in columns[2:]:
        logs[column] = pd.to_numeric(logs[column], errors="coerce")
    return logs[columns]


def load_targets(aligned_dir: str | Path) -> pd.DataFrame:
    """The test rows of ``targets.parquet``: keys + h36m17 root-relative camera-frame joints (mm)."""
    path = Path(aligned_dir) / "targets.parquet"
    frame, _ = read_table(path, {"table": "targets", "joint_set": H36M17.name},
                          columns=KEYS + ["split"] + joint_columns(H36M17, "xyz"))
    return frame[frame["split"] == "test"].drop(columns="split").reset_index(drop=True)


def load_inputs2d(aligned_dir: str | Path, source2d: str) -> pd.DataFrame:
    """Screen-normalised h36m17 2D of one source (all rows; keys subject, sequence, camera, frame)."""
    path = Path(aligned_dir) / f"inputs2d_{source2d}.parquet"
    frame, _ = read_table(path, {"table": "inputs2d", "joint_set": H36M17.name, "source2d": source2d},
                          columns=["subject", "sequence", "camera", "frame"] + joint_columns(H36M17, "uv"))
    return frame


def load_cameras(path: str | Path) -> dict:
    """``{(subject, camera id): Camera}`` from ``cameras.parquet``."""
    frame, _ = read_table(path, {"table": "cameras"})
    return cameras_from_frame(frame)


def load_predictions(predictions_dir: str | Path, methods,
                     inputs2d) -> dict[tuple[str, str], tuple[pd.DataFrame, JointSet]]:
    """``{(method, input2d): (predictions table, its joint set)}`` from the evaluate stage's Parquet."""
    predictions_dir = Path(predictions_dir)
    out = {}
    for method in methods:
        for input2d in inputs2d:
            path = predictions_dir / f"{method}-{input2d}.parquet"
            metadata = read_metadata(path)
            frame, _ = read_table(path, {"table": "predictions", "method": method, "source2d": input2d})
            out[(method, input2d)] = (frame, get_joint_set(metadata["joint_set"]))
    return out


# ------------------------------------------------------------------------------------------------
# Labels and tables


def budget_label(record: dict) -> str | None:
    """A short label for a run trained under a budget, else None.

    ``budget.max_epochs`` not null makes a run "budget-limited" (its paper's schedule was cut); a
    training-frame stride > 1 is stated too, since it shrinks the training set (lookups included),
    and so is every change the budget made to the paper's recipe (batch size, lr scale, cosine).
    """
    budget = record.get("protocol", {}).get("budget") or {}
    stride = int(budget.get("train_stride") or 1)
    frames = f"1/{stride} of training frames" if stride > 1 else None
    capped = budget.get("max_epochs") is not None
    trained = (record.get("training") or {}).get("schedule") is not None
    if capped and trained:
        epochs = int(budget["max_epochs"])
        parts = [f"≤{epochs} epoch{'s' if epochs != 1 else ''}"] + ([frames] if frames else [])
        if budget.get("batch_size"):
            parts.append(f"batch {int(budget['batch_size'])}")
        if float(budget.get("lr_scale") or 1.0) != 1.0:
            parts.append(f"lr ×{float(budget['lr_scale']):g}")
        if budget.get("cosine"):
            parts.append("cosine lr")
        return f"budget-limited ({', '.join(parts)})"
    if capped and frames:
        return f"budget-limited ({frames})"
    if frames:
        return f"paper schedule on {frames}"
    return None


def run_notes(record: dict) -> str:
    """Caveats of one run: budget, test-set checkpoint selection, flip test."""
    notes = []
    if (record.get("training") or {}).get("schedule") is None:
        notes.append("lookup")
    label = budget_label(record)
    if label:
        notes.append(label)
    protocol = record.get("protocol", {})
    if "TEST SET" in str(protocol.get("checkpoint", "")).upper():
        notes.append("checkpoint selected on the test set")
    if protocol.get("flip_test"):
        notes.append("flip test")
    return ", ".join(notes)


def is_budget_limited(runs: dict) -> bool:
    return any((r.get("protocol", {}).get("budget") or {}).get("max_epochs") is not None for r in runs.values())


def leaderboard(runs: dict[tuple[str, str], dict]) -> pd.DataFrame:
    """One row per (method, 2D input): P1/P2/P3 action- and frame-mean (mm), size, speed, notes,
    and the matching published Human3.6M P1/P2 beside them. Sorted by 2D input, then P1."""
    rows = []
    for (method, input2d), record in runs.items():
        metrics = record["metrics"]
        training = record.get("training") or {}
        published = published_for(method, input2d)
        row = {"method": method, "2D input": input2d,
               "joints": int(get_joint_set(record["protocol"]["joint_set"]).num_joints)}
        for key, short, _ in PROTOCOLS:
            row[f"{short} action-mean"] = metrics[key]["action_mean"]
            row[f"{short} frame-mean"] = metrics[key]["frame_mean"]
        row.update({
            "params": record.get("parameters"),
            "epochs": training.get("epochs"),
            "train s": training.get("seconds"),
            "train samples/s": training.get("samples_per_s"),
            "inference samples/s": record.get("inference_samples_per_s"),
            "published P1": published.p1 if published else None,
            "published P2": published.p2 if published else None,
            "notes": run_notes(record),
        })
        rows.append(row)
    table = pd.DataFrame(rows)
    order = {name: i for i, name in enumerate(dict.fromkeys(i for _, i in runs))}
    table["_input"] = table["2D input"].map(order)
    return table.sort_values(["_input", "P1 action-mean"], kind="stable").drop(columns="_input").reset_index(drop=True)


def action_table(runs: dict, metric: str = "mpjpe_mm") -> pd.DataFrame:
    """Actions x runs ("method / input2d") of one protocol's per-action error (mm), plus the mean row."""
    columns = {f"{m} / {i}": record["metrics"][metric]["by_action"] for (m, i), record in runs.items()}
    table = pd.DataFrame(columns)
    table = table.loc[sorted(table.index)]
    table.loc["action mean"] = [record["metrics"][metric]["action_mean"] for record in runs.values()]
    table.index.name = "action"
    return table


def joint_table(runs: dict, metric: str = "mpjpe_mm") -> pd.DataFrame:
    """h36m17 joints x runs of one protocol's per-joint error (mm); NaN where a run has no such joint."""
    columns = {f"{m} / {i}": record["metrics"][metric]["by_joint"] for (m, i), record in runs.items()}
    table = pd.DataFrame(columns)
    names = [n for n in H36M17.names if n in table.index] + [n for n in table.index if n not in H36M17.names]
    table = table.loc[names]
    table.index.name = "joint"
    return table


def protocol_rows(runs: dict) -> list[tuple[str, str]]:
    """(field, value) pairs of the protocol block; values that differ between runs are listed per run."""
    fields = ["data_source", "test_subjects", "excluded_sequences", "test_frame_stride", "train_frame_stride",
              "joint_set", "root", "flip_test", "checkpoint", "budget", "comparable_with_published_h36m"]
    seen = [f for f in fields if any(f in r["protocol"] for r in runs.values())]
    extra = sorted({k for r in runs.values() for k in r["protocol"]} - set(fields))
    out = []
    for field in seen + extra:
        values = {key: plain_text(r["protocol"].get(field)) for key, r in runs.items()}
        distinct = list(dict.fromkeys(values.values()))
        if len(distinct) == 1:
            out.append((field, distinct[0]))
        else:
            groups = {}
            for (method, input2d), value in values.items():
                groups.setdefault(value, []).append(f"{method}-{input2d}")
            out.append((field, "; ".join(f"{v} ({', '.join(k)})" for v, k in groups.items())))
    return out


def plain_text(value) -> str:
    """A params or protocol value as text: lists comma-joined, mappings as ``k=v``, None as null."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={'null' if v is None else v}" for k, v in value.items())
    if value is None:
        return "null"
    return str(value)


def banner(runs: dict) -> dict:
    """What the report's banner says: data source, comparability, budget, checkpoint caveats."""
    sources = sorted({r["protocol"].get("data_source", "?") for r in runs.values()})
    comparable = all(r["protocol"].get("comparable_with_published_h36m") for r in runs.values())
    lines = []
    if comparable:
        lines.append("Scored on Human3.6M under the protocol below: the published figures are comparable "
                     "where the protocol matches the paper's (see each paper's caveats).")
    else:
        lines.append(f"Data source: {', '.join(sources)}. These numbers are real, but they are NOT comparable "
                     "with published Human3.6M numbers (different motions, skeletons and subjects); the "
                     "published figures are shown for reference only.")
    if is_budget_limited(runs):
        budgets = sorted({plain_text(r["protocol"].get("budget")) for r in runs.values()})
        lines.append(f"Budget-limited: every method was trained under a budget ({'; '.join(budgets)}), not its "
                     "paper's full schedule, so the errors are higher than the method can reach. "
                     "Set budget.max_epochs: null for the papers' schedules.")
    test_selected = [f"{m}-{i}" for (m, i), r in runs.items()
                     if "TEST SET" in str(r["protocol"].get("checkpoint", "")).upper()]
    if test_selected:
        lines.append("Checkpoint selected on the test set (optimistic, as several papers do): "
                     f"{', '.join(test_selected)}.")
    return {"data_source": ", ".join(sources), "comparable": comparable,
            "budget_limited": is_budget_limited(runs), "lines": lines}


# ------------------------------------------------------------------------------------------------
# Formatting (HTML for the notebook, Markdown for reports/results.md)


def _fmt_mm(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def _fmt_params(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = int(value)
    return "0" if value == 0 else f"{value / 1e6:.2f}M"


def _fmt_rate(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.0f}"


def _fmt_seconds(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def formatted_leaderboard(table: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard with every value as display text (mm to 0.1, params in M, rates with commas)."""
    out = table.copy()
    for column in out.columns:
        if column.startswith(("P1", "P2", "P3")):
            out[column] = [_fmt_mm(v) for v in table[column]]
    out["params"] = [_fmt_params(v) for v in table["params"]]
    out["train s"] = [_fmt_seconds(v) for v in table["train s"]]
    out["train samples/s"] = [_fmt_rate(v) for v in table["train samples/s"]]
    out["inference samples/s"] = [_fmt_rate(v) for v in table["inference samples/s"]]
    out["epochs"] = ["–" if v is None or (isinstance(v, float) and math.isnan(v)) else str(int(v))
                     for v in table["epochs"]]
    out = out.rename(columns={"train s": "training time"})
    return out.astype(str)


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table of ``frame`` (values as text; ``|`` escaped)."""
    def cell(value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        return str(value).replace("|", "\\|")
    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def results_markdown(runs: dict) -> str:
    """reports/results.md: the leaderboard as Markdown, generated from the metrics JSON (no timestamps)."""
    info = banner(runs)
    board = formatted_leaderboard(leaderboard(runs))
    methods = list(dict.fromkeys(m for m, _ in runs))
    parts = [
        "# Results",
        "",
        "<!-- Generated by the `report` stage (lifting/report.py) from metrics/*.json; do not edit by hand. -->",
        "",
        "Errors in mm on the test subjects; P1 = MPJPE, P2 = P-MPJPE (Procrustes-aligned), P3 = N-MPJPE "
        "(scale-aligned); action-mean = mean over actions (the papers' headline), frame-mean = mean over frames. "
        "The full report with per-action, per-joint, distribution, training-curve and qualitative figures is "
        "`reports/comparison.html` (built by `dvc repro report`).",
        "",
        "\n>\n".join(f"> {line}" for line in info["lines"]),
        "",
        markdown_table(board),
        "",
        "Published P1/P2 in the leaderboard are the paper's figures for the same kind of 2D input "
        f"({PUBLISHED_LABEL}).",
        "",
        "## Published figures on Human3.6M (S9 + S11, mm)",
        "",
        markdown_table(published_table(methods)),
        "",
        "## Protocol",
        "",
        markdown_table(pd.DataFrame(protocol_rows(runs), columns=["field", "value"])),
        "",
    ]
    return "\n".join(parts)


def write_results_md(path: str | Path, runs: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(results_markdown(runs), encoding="utf-8")


_TABLE_CSS = """
<style>
table.lifting { border-collapse: collapse; font-size: 12px; margin: 6px 0 14px 0; }
table.lifting th, table.lifting td { border: 1px solid #d0d0d0; padding: 3px 6px; text-align: right; }
table.lifting th { background: #f3f3f3; }
table.lifting td.text, table.lifting th.text { text-align: left; }
table.lifting tr.best td { font-weight: bold; }
table.lifting.leaderboard td:last-child { min-width: 15em; text-align: left; }
table.lifting td.published, table.lifting th.published { background: #f4f0fa; color: #4b3a72; }
div.lifting-banner { border-left: 6px solid #c0392b; background: #fdf0ee; padding: 8px 12px; margin: 8px 0; }
div.lifting-banner.ok { border-left-color: #2e7d32; background: #eef7ee; }
div.lifting-banner p { margin: 4px 0; }
</style>
"""


def html_table(frame: pd.DataFrame, css_class: str = "lifting", text_columns=(), published_columns=(),
               bold_rows=()) -> str:
    """A plain, escaped HTML table (no pandas styling, so tests can read it back)."""
    def head(column):
        classes = [c for c, on in (("text", column in text_columns), ("published", column in published_columns)) if on]
        return f'<th class="{" ".join(classes)}">{html.escape(str(column))}</th>'

    def data(column, value):
        classes = [c for c, on in (("text", column in text_columns), ("published", column in published_columns)) if on]
        text = "–" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        return f'<td class="{" ".join(classes)}">{html.escape(text)}</td>'

    lines = [f'<table class="{css_class}">', "<thead><tr>" + "".join(head(c) for c in frame.columns) + "</tr></thead>",
             "<tbody>"]
    for i, row in enumerate(frame.itertuples(index=False)):
        cls = ' class="best"' if i in set(bold_rows) else ""
        lines.append(f"<tr{cls}>" + "".join(data(c, v) for c, v in zip(frame.columns, row)) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def banner_html(runs: dict) -> str:
    info = banner(runs)
    cls = "lifting-banner ok" if info["comparable"] and not info["budget_limited"] else "lifting-banner"
    body = "".join(f"<p>{html.escape(line)}</p>" for line in info["lines"])
    protocol = html_table(pd.DataFrame(protocol_rows(runs), columns=["protocol", "value"]),
                          text_columns=("protocol", "value"))
    return f'{_TABLE_CSS}<div class="{cls}">{body}</div>{protocol}'


def leaderboard_html(runs: dict) -> str:
    """The leaderboard table (class ``lifting leaderboard``); the best P1 of each 2D input in bold."""
    table = leaderboard(runs)
    best = [int(group["P1 action-mean"].idxmin()) for _, group in table.groupby("2D input", sort=False)]
    shown = formatted_leaderboard(table)
    return _TABLE_CSS + html_table(shown, css_class="lifting leaderboard", text_columns=("method", "2D input", "notes"),
                                   published_columns=("published P1", "published P2"), bold_rows=best)


def published_html(methods) -> str:
    table = published_table(methods)
    return _TABLE_CSS + html_table(table, css_class="lifting published",
                                   text_columns=("method", "configuration", "2D input", "params", "source"),
                                   published_columns=("P1 (mm)", "P2 (mm)"))


def number_table_html(frame: pd.DataFrame, index_label: str) -> str:
    """A numeric table (mm, one decimal) with its index as the first column."""
    def text(value) -> str:
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "NO"
        if isinstance(value, (int, np.integer)):
            return f"{int(value):,}"
        if isinstance(value, (float, np.floating)) or value is None:
            return _fmt_mm(value)
        return str(value)

    shown = frame.astype(object).map(text).reset_index().rename(columns={frame.index.name or "index": index_label})
    return _TABLE_CSS + html_table(shown, text_columns=(index_label,))


# ------------------------------------------------------------------------------------------------
# Per-frame errors (predictions vs targets)


def per_frame_errors(predictions: dict, targets: pd.DataFrame) -> pd.DataFrame:
    """Per-frame P1 (mm) of every run, from its predictions and the aligned targets.

    Args:
        predictions: ``{(method, input2d): (table, joint set)}`` from :func:`load_predictions`.
        targets: :func:`load_targets` (h36m17 test rows).
    Returns:
        Long table: method, input2d, the KEYS, ``mpjpe_mm``.
    """
    parts = []
    for (method, input2d), (frame, joint_set) in predictions.items():
        columns = joint_columns(joint_set, "xyz")
        merged = frame[KEYS + columns].merge(targets[KEYS + columns], on=KEYS, how="left", suffixes=("", "_gt"),
                                             validate="one_to_one")
        if merged[f"{columns[0]}_gt"].isna().any():
            raise DataError(None, f"predictions of {method}-{input2d} have rows without a test target",
                            "re-run `dvc repro` so that predictions and data/aligned agree")
        predicted = merged[columns].to_numpy(np.float64).reshape(len(merged), joint_set.num_joints, 3)
        truth = merged[[f"{c}_gt" for c in columns]].to_numpy(np.float64).reshape(len(merged), joint_set.num_joints, 3)
        errors = joint_errors_mpjpe(predicted, truth).mean(axis=1)
        part = merged[KEYS].copy()
        part.insert(0, "input2d", input2d)
        part.insert(0, "method", method)
        part["mpjpe_mm"] = errors
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def check_against_metrics(errors: pd.DataFrame, runs: dict, tolerance_mm: float = 0.05) -> pd.DataFrame:
    """Frame-mean P1 recomputed from the predictions beside the metrics file's, per run."""
    rows = []
    for (method, input2d), record in runs.items():
        mine = errors.loc[(errors["method"] == method) & (errors["input2d"] == input2d), "mpjpe_mm"]
        stored = record["metrics"]["mpjpe_mm"]["frame_mean"]
        rows.append({"run": f"{method} / {input2d}", "frames": len(mine), "from predictions": float(mine.mean()),
                     "metrics file": stored, "agree": bool(abs(mine.mean() - stored) <= tolerance_mm)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# Figures (headless: Figure + Agg canvas, no pyplot)


def new_figure(width: float, height: float, dpi: int = 100) -> Figure:
    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes (Agg), at the figure's dpi."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    return buffer.getvalue()


def show(figure: Figure, alt: str):
    """An IPython image of ``figure`` with alternative text, for ``display()`` in the notebook."""
    from IPython.display import Image

    return Image(data=figure_png(figure), format="png", alt=alt)


def method_colours(methods) -> dict[str, tuple]:
    """A fixed colour per method (tab10 in the order of ``methods``)."""
    from matplotlib import colormaps
    palette = colormaps["tab10"]
    return {m: palette(i % 10) for i, m in enumerate(dict.fromkeys(methods))}


def plot_action_heatmap(table: pd.DataFrame, title: str = "P1 (MPJPE, mm) by action") -> Figure:
    """Heat map of :func:`action_table` (runs on the y axis, actions on the x axis), values annotated."""
    data = table.T
    figure = new_figure(max(6.0, 0.75 * data.shape[1] + 3.0), max(2.5, 0.45 * data.shape[0] + 1.4))
    ax = figure.add_subplot()
    values = data.to_numpy(np.float64)
    image = ax.imshow(values, aspect="auto", cmap="viridis_r")
    ax.set_xticks(range(data.shape[1]), data.columns, rotation=45, ha="right")
    ax.set_yticks(range(data.shape[0]), data.index)
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (r, c), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(c, r, f"{value:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if value > middle else "black")
    ax.set_title(title)
    figure.colorbar(image, ax=ax, label="mm", shrink=0.9)
    return figure


def plot_joint_errors(runs: dict, metric: str = "mpjpe_mm", label: str = "P1 (MPJPE)") -> Figure:
    """Grouped bars of per-joint error, one panel per 2D input, one bar colour per method."""
    inputs2d = list(dict.fromkeys(i for _, i in runs))
    methods = list(dict.fromkeys(m for m, _ in runs))
    colours = method_colours(methods)
    table = joint_table(runs, metric)
    figure = new_figure(max(8.0, 0.55 * len(table) + 2.0), 2.8 * len(inputs2d) + 0.4)
    axes = figure.subplots(len(inputs2d), 1, squeeze=False, sharex=True)[:, 0]
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(table))
    for ax, input2d in zip(axes, inputs2d):
        for k, method in enumerate(methods):
            column = f"{method} / {input2d}"
            if column in table:
                ax.bar(x + (k - (len(methods) - 1) / 2) * width, table[column].to_numpy(np.float64), width,
                       label=method, color=colours[method])
        ax.set_ylabel(f"{label}, mm")
        ax.set_title(f"2D input: {input2d}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(x, table.index, rotation=45, ha="right")
    axes[0].legend(ncols=min(4, len(methods)), fontsize=8, loc="upper left")
    return figure


def plot_error_distributions(errors: pd.DataFrame, methods, inputs2d) -> Figure:
    """Per-frame P1 distributions: a histogram (left) and box plots (right) per 2D input."""
    colours = method_colours(methods)
    figure = new_figure(12.0, 3.2 * len(inputs2d) + 0.4)
    axes = figure.subplots(len(inputs2d), 2, squeeze=False, width_ratios=[3, 2])
    upper = float(np.percentile(errors["mpjpe_mm"], 99.5)) if len(errors) else 1.0
    bins = np.linspace(0.0, max(upper, 1e-6), 60)
    for row, input2d in enumerate(inputs2d):
        hist_ax, box_ax = axes[row]
        series, labels = [], []
        for method in methods:
            values = errors.loc[(errors["method"] == method) & (errors["input2d"] == input2d), "mpjpe_mm"].to_numpy()
            if not len(values):
                continue
            hist_ax.hist(np.clip(values, 0, bins[-1]), bins=bins, histtype="step", linewidth=1.5,
                         color=colours[method], label=f"{method} (median {np.median(values):.0f})")
            series.append(values)
            labels.append(method)
        hist_ax.set_xlabel("per-frame MPJPE, mm (last bin: 99.5th percentile and above)")
        hist_ax.set_ylabel("frames")
        hist_ax.set_title(f"2D input: {input2d}", fontsize=10)
        hist_ax.legend(fontsize=8)
        if series:
            box = box_ax.boxplot(series, orientation="horizontal", whis=(5, 95), showfliers=False, patch_artist=True,
                                 medianprops={"color": "black"})
            box_ax.set_yticks(range(1, len(labels) + 1), labels)
            for patch, method in zip(box["boxes"], labels):
                patch.set_facecolor(colours[method])
                patch.set_alpha(0.6)
            box_ax.invert_yaxis()
        box_ax.set_xlabel("per-frame MPJPE, mm (whiskers 5-95 %)")
        box_ax.grid(axis="x", alpha=0.3)
    return figure


def plot_training_curves(logs: pd.DataFrame, methods, inputs2d) -> Figure:
    """Validation MPJPE (left) and training loss (right) per epoch, one row per 2D input."""
    colours = method_colours(methods)
    figure = new_figure(12.0, 3.0 * len(inputs2d) + 0.4)
    axes = figure.subplots(len(inputs2d), 2, squeeze=False)
    for row, input2d in enumerate(inputs2d):
        val_ax, loss_ax = axes[row]
        for method in methods:
            log = logs[(logs["method"] == method) & (logs["input2d"] == input2d)].sort_values("epoch")
            if log.empty:
                continue
            style = {"color": colours[method], "marker": "o", "markersize": 3, "label": method}
            val_ax.plot(log["epoch"], log["val_mpjpe_mm"], **style)
            loss_ax.plot(log["epoch"], log["train_loss"], **style)
        val_ax.set_ylabel("validation MPJPE, mm")
        loss_ax.set_ylabel("training loss (method's own)")
        loss_ax.set_yscale("log")
        last = logs.loc[logs["input2d"] == input2d, "epoch"].max()
        for ax in (val_ax, loss_ax):
            ax.set_xlabel("epoch")
            ax.set_title(f"2D input: {input2d}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if pd.notna(last):
                ax.set_xlim(0.5, max(float(last), 1.0) + 0.5)
        losses = logs.loc[logs["input2d"] == input2d, "train_loss"].to_numpy(np.float64)
        losses = losses[np.isfinite(losses) & (losses > 0)]
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        loss_ax.yaxis.set_major_formatter(plain)
        # label the minor ticks too when the losses span less than a decade or so (else too crowded)
        narrow = losses.size and losses.max() / losses.min() < 20
        loss_ax.yaxis.set_minor_formatter(plain if narrow else NullFormatter())
        if val_ax.get_legend_handles_labels()[0]:
            val_ax.legend(fontsize=8)
    return figure


def select_qualitative_frames(keys: pd.DataFrame, count: int) -> pd.DataFrame:
    """``count`` test frames from different actions, deterministically.

    Actions are taken evenly spaced in sorted order; for each, the first (subject, sequence,
    camera) in sorted order and the middle frame of that sequence.
    """
    if count <= 0 or keys.empty:
        return keys.iloc[:0][KEYS]
    actions = sorted(keys["action"].unique())
    picks = np.unique(np.linspace(0, len(actions) - 1, min(count, len(actions))).round().astype(int))
    rows = []
    for index in picks:
        of_action = keys[keys["action"] == actions[index]]
        first = of_action.sort_values(["subject", "sequence", "camera", "frame"]).iloc[0]
        same = of_action[(of_action["subject"] == first["subject"]) & (of_action["sequence"] == first["sequence"])
                         & (of_action["camera"] == first["camera"])].sort_values("frame")
        rows.append(same.iloc[len(same) // 2][KEYS])
    return pd.DataFrame(rows).reset_index(drop=True)


def common_test_keys(predictions: dict) -> pd.DataFrame:
    """Test rows present in every prediction table."""
    keys = None
    for frame, _ in predictions.values():
        these = frame[KEYS]
        keys = these if keys is None else keys.merge(these, on=KEYS, how="inner")
    return keys.reset_index(drop=True)


def _bone_colour(joint_set: JointSet, child: int) -> str:
    if child in joint_set.left:
        return "#1f77b4"
    if child in joint_set.right:
        return "#d62728"
    return "#333333"


def draw_pose_2d(ax, pixels: np.ndarray, joint_set: JointSet, width: int, height: int) -> None:
    """(J, 2) pixels over the camera's frame box (origin top-left, y down)."""
    ax.add_patch(Rectangle((0, 0), width, height, fill=False, edgecolor="#888888", linewidth=1))
    for child, parent in joint_set.bones:
        ax.plot(pixels[[child, parent], 0], pixels[[child, parent], 1], color=_bone_colour(joint_set, child),
                linewidth=1.5)
    ax.scatter(pixels[:, 0], pixels[:, 1], s=5, color="black", zorder=3)
    ax.set_xlim(-0.05 * width, 1.05 * width)
    ax.set_ylim(1.05 * height, -0.05 * height)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)


def draw_pose_3d(ax, pose_mm: np.ndarray, joint_set: JointSet, radius: float = 1000.0,
                 ghost: tuple[np.ndarray, JointSet] | None = None) -> None:
    """(J, 3) root-relative camera-frame pose (x right, y down, z forward) drawn upright.

    Plotted axes: x, z (depth), -y (up), all spanning ``[-radius, radius]`` mm with a cubic box
    (``set_box_aspect``). ``ghost``: a reference pose drawn thin and grey underneath.
    """
    def lift(p):
        return p[:, 0], p[:, 2], -p[:, 1]

    if ghost is not None:
        pose, ghost_set = ghost
        gx, gy, gz = lift(pose)
        for child, parent in ghost_set.bones:
            ax.plot(gx[[child, parent]], gy[[child, parent]], gz[[child, parent]], color="#bbbbbb", linewidth=1)
    x, y, z = lift(pose_mm)
    for child, parent in joint_set.bones:
        ax.plot(x[[child, parent]], y[[child, parent]], z[[child, parent]], color=_bone_colour(joint_set, child),
                linewidth=1.8)
    ax.set_xlim(-radius, radius)
    ax.set_ylim(-radius, radius)
    ax.set_zlim(-radius, radius)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=12, azim=-72)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    ax.tick_params(length=0)


def plot_qualitative(key: pd.Series, predictions: dict, targets: pd.DataFrame, inputs: dict[str, pd.DataFrame],
                     cameras: dict, methods, inputs2d) -> Figure:
    """One test frame: per 2D input a row [2D input (px) | 3D ground truth | each method's prediction].

    Predictions are drawn over the ground truth (grey). Blue = left, red = right.
    """
    def row_of(frame: pd.DataFrame, columns) -> pd.DataFrame:
        mask = np.ones(len(frame), dtype=bool)
        for column in columns:
            mask &= (frame[column] == key[column]).to_numpy()
        return frame[mask]

    camera = cameras[(key["subject"], key["camera"])]
    truth = poses_from_frame(row_of(targets, KEYS), H36M17, "xyz")[0]
    columns = 2 + len(methods)
    figure = new_figure(2.4 * columns, 2.5 * len(inputs2d) + 0.3, dpi=90)
    figure.suptitle(f"{key['subject']} · {key['action']} ({key['sequence']}) · camera {key['camera']} · "
                    f"frame {int(key['frame'])}", fontsize=10)
    for row, input2d in enumerate(inputs2d):
        uv = poses_from_frame(row_of(inputs[input2d], ["subject", "sequence", "camera", "frame"]), H36M17, "uv")[0]
        ax = figure.add_subplot(len(inputs2d), columns, row * columns + 1)
        draw_pose_2d(ax, image_coordinates(uv, camera.width, camera.height), H36M17, camera.width, camera.height)
        ax.set_title(f"2D input: {input2d} (px)", fontsize=8)
        ax = figure.add_subplot(len(inputs2d), columns, row * columns + 2, projection="3d")
        draw_pose_3d(ax, truth, H36M17)
        ax.set_title("3D ground truth", fontsize=8)
        for k, method in enumerate(methods):
            ax = figure.add_subplot(len(inputs2d), columns, row * columns + 3 + k, projection="3d")
            if (method, input2d) not in predictions:
                ax.set_axis_off()
                continue
            frame, joint_set = predictions[(method, input2d)]
            predicted = poses_from_frame(row_of(frame, KEYS), joint_set, "xyz")[0]
            error = float(np.linalg.norm(predicted - truth[[H36M17.index(n) for n in joint_set.names]], axis=-1).mean())
            draw_pose_3d(ax, predicted, joint_set, ghost=(truth, H36M17))
            ax.set_title(f"{method} / {input2d}\nMPJPE {error:.0f} mm", fontsize=8)
    return figure


# ------------------------------------------------------------------------------------------------
# Executing and rendering the notebook


#: An nbconvert template: the JupyterLab look, without the CDN scripts (require.js, MathJax,
#: mermaid) that a report of static tables and PNGs does not need; the HTML then opens offline.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block data_png scoped %}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}"
{%- set alttext = output | get_metadata('alt', 'image/png') %}
{%- if alttext is not none %} alt="{{ alttext | escape_html }}"{% endif %}>
</div>
{% endblock data_png %}
"""


def notebook_parameters(notebook: str | Path, params: dict, paths: dict) -> dict:
    """What papermill injects: the params.yaml top-level keys the notebook declares, plus ``paths``."""
    import papermill

    declared = set(papermill.inspect_notebook(str(notebook)))
    unknown = sorted(set(paths) - declared)
    if unknown:
        raise ValueError(f"{notebook} declares no parameter(s) {unknown} in its `parameters` cell")
    return {**{k: v for k, v in params.items() if k in declared}, **paths}


def render_report(notebook: str | Path, html_path: str | Path, parameters: dict, *, cwd: str | Path | None = None,
                  executed_path: str | Path | None = None, timeout_s: int = 900) -> int:
    """Execute ``notebook`` with papermill (kernel ``python3``) and write its HTML, code hidden.

    Args:
        notebook: the template notebook (its ``parameters`` cell declares the injected names).
        html_path: the HTML to write (atomically).
        parameters: injected values (see :func:`notebook_parameters`).
        cwd: the kernel's working directory (default: the current one).
        executed_path: also keep the executed notebook here (default: a temporary file, removed).
    Returns:
        The size of the HTML in bytes.
    """
    import nbformat
    import papermill
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    with tempfile.TemporaryDirectory(prefix="lifting-report-") as scratch:
        executed = Path(executed_path) if executed_path else Path(scratch) / Path(notebook).name
        try:
            papermill.execute_notebook(str(notebook), str(executed), parameters=parameters, kernel_name="python3",
                                       progress_bar=False, cwd=str(cwd) if cwd else None, execution_timeout=timeout_s)
        except papermill.PapermillExecutionError as err:
            if err.ename not in ("DataError", "ParamsError"):
                raise
            # bad or missing input: the same one clear line (file, problem, fix) as from every other stage
            problem, _, fix = str(err.evalue).partition(". Fix: ")
            raise DataError(None, problem, fix or "fix the input named above, then `dvc repro report`") from None
        node = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"offline.html.j2": _OFFLINE_TEMPLATE})],
                            template_file="offline.html.j2", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(node)
    with atomic_path(html_path) as tmp:
        tmp.write_text(body, encoding="utf-8")
    return len(body.encode("utf-8"))
