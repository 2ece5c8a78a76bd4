"""Formatting: the tables as HTML for the notebook and as Markdown for ``reports/results.md``.

HTML tables are plain and escaped (no pandas styling), so tests can read them back.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from lifting.io import atomic_path
from lifting.report.published import PUBLISHED_LABEL, published_table
from lifting.report.convergence import CONVERGENCE_RULE, GAP_RULE, RANK_RULE, SEEDS_RULE, format_mean_std
from lifting.report.cross_dataset import MPI3DHP_NOTE, mpi3dhp_table
from lifting.report.robustness import kind_tables, protocol_text, ranking_sentences, subsample_table
from lifting.report.tables import PCK_COLUMNS, RANKED, banner, context_table, leaderboard, plateau_table, protocol_rows


def _missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def _fmt_mm(value) -> str:
    return "–" if _missing(value) else f"{value:.1f}"


def _fmt_params(value) -> str:
    if _missing(value):
        return "–"
    value = int(value)
    return "0" if value == 0 else f"{value / 1e6:.2f}M"


def _fmt_rate(value) -> str:
    return "–" if _missing(value) else f"{value:,.0f}"


def _fmt_int(value) -> str:
    return "–" if _missing(value) else str(int(value))


def _fmt_seconds(value) -> str:
    if _missing(value):
        return "–"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _fmt_plateau(value, converged) -> str:
    if _missing(value):
        return "–"
    return f"{value:.1f}" + (" (not converged)" if converged is False else "")


def _fmt_gap(value) -> str:
    return "–" if _missing(value) else f"{value:+.1f} %"


def formatted_leaderboard(table: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard with every value as display text: action-means as "mean ± std" over seeds
    (plain mean with one seed), mm to 0.1, the gap in %, params in M, rates with commas, "–" where
    a value is missing. The std, plateau-converged and last-fifth columns are folded into others."""
    out = table.copy()
    out[RANKED] = [format_mean_std(m, s) for m, s in zip(table[RANKED], table[f"{RANKED} std"])]
    for short in ("P1", "P2", "P3"):
        out[f"{short} action-mean"] = [format_mean_std(m, s) for m, s in zip(table[f"{short} action-mean"],
                                                                            table[f"{short} std"])]
        out[f"{short} frame-mean"] = [_fmt_mm(v) for v in table[f"{short} frame-mean"]]
    for _, _, column in PCK_COLUMNS:
        out[column] = [format_mean_std(m, s) for m, s in zip(table[column], table[f"{column} std"])]
    out["plateau P1"] = [_fmt_plateau(v, c) for v, c in zip(table["plateau P1"], table["plateau converged"])]
    out["gap to plateau %"] = [_fmt_gap(v) for v in table["gap to plateau %"]]
    out["seeds"] = [_fmt_int(v) for v in table["seeds"]]
    out["samples seen"] = [_fmt_rate(v) for v in table["samples seen"]]
    out["params"] = [_fmt_params(v) for v in table["params"]]
    out["train s"] = [_fmt_seconds(v) for v in table["train s"]]
    out["train samples/s"] = [_fmt_rate(v) for v in table["train samples/s"]]
    out["inference samples/s"] = [_fmt_rate(v) for v in table["inference samples/s"]]
    out["epochs"] = [_fmt_int(v) for v in table["epochs"]]
    out = out.drop(columns=[f"{RANKED} std", "P1 std", "P2 std", "P3 std", "plateau converged", "last-fifth change mm",
                            *(f"{column} std" for _, _, column in PCK_COLUMNS)])
    out = out.rename(columns={"train s": "training time", "gap to plateau %": "gap to plateau"})
    return out.astype(str)


def formatted_plateaus(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`~lifting.report.tables.plateau_table` as display text."""
    out = table.copy()
    for column in ("plateau P1", "plateau P2"):
        out[column] = [_fmt_mm(v) for v in table[column]]
    out["samples seen"] = [_fmt_rate(v) for v in table["samples seen"]]
    out["core-seconds"] = [_fmt_rate(v) for v in table["core-seconds"]]
    out["converged"] = ["–" if _missing(v) else "yes" if v else "NO" for v in table["converged"]]
    out["threads"] = [_fmt_int(v) for v in table["threads"]]
    return out.astype(object).where(table.notna(), "–").astype(str)


#: What the leaderboard's columns mean and how rank, seeds, gap and convergence are decided.
LEADERBOARD_RULES = (RANK_RULE, SEEDS_RULE, GAP_RULE, CONVERGENCE_RULE)


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


def detector_markdown(detector: dict) -> list[str]:
    """The ``detected`` 2D source's accuracy (``metrics/detector.json``) as Markdown lines."""
    thresholds = sorted(detector["test"]["pck"], key=lambda t: float(t.removesuffix("px")))
    rows = [[split, detector[split]["keypoints"] // len(detector[split]["per_joint_px"]),
             f"{detector[split]['mean_px']:.1f}", f"{detector[split]['median_px']:.1f}",
             *[f"{detector[split]['pck'][t]:.1f}" for t in thresholds],
             f"{detector[split]['swapped_pct']:.1f}" if "swapped_pct" in detector[split] else "–"]
            for split in ("test", "train")]
    columns = ["subjects", "views", "mean error (px)", "median error (px)", *[f"PCK@{t} (%)" for t in thresholds],
               "left/right swapped (%)"]
    return ["## The `detected` 2D source", "",
            f"The pipeline's own HRNet ({detector['parameters']:,} parameters, trained "
            f"{detector['training']['epochs']} epochs on {detector['training']['train_views']:,} rendered training "
            f"views of {detector['crop']['width']}x{detector['crop']['height']} pixels), run on every view; errors "
            "in image pixels (the training subjects' views include the ones it was trained on); swapped: the "
            "share of left and right keypoints closer to their twin's ground truth than to their own.", "",
            markdown_table(pd.DataFrame(rows, columns=columns)), ""]


def results_markdown(runs: dict, logs: pd.DataFrame | None = None, convergence: dict | None = None,
                     detector: dict | None = None, mpi3dhp: dict | None = None,
                     robustness: dict | None = None) -> str:
    """reports/results.md: the leaderboard as Markdown, generated from the metrics JSON, the training
    logs, the convergence records, the detector's accuracy, the runs' MPI-INF-3DHP scores
    (:func:`~lifting.report.cross_dataset.load_3dhp`) and their robustness records
    (:func:`~lifting.report.robustness.load_robustness`) (no timestamps)."""
    info = banner(runs)
    board = formatted_leaderboard(leaderboard(runs, logs, convergence))
    methods = list(dict.fromkeys(m for m, _ in runs))
    parts = [
        "# Results",
        "",
        "<!-- Generated by the `report` stage (lifting/report/) from metrics/*.json, metrics/train/*.csv and "
        "benchmarks/results/convergence/*.json; do not edit by hand. -->",
        "",
        "Errors in mm on the test subjects; P1 = MPJPE, P2 = P-MPJPE (Procrustes-aligned), P3 = N-MPJPE "
        "(scale-aligned); action-mean = mean over actions (the papers' headline), frame-mean = mean over frames. "
        "PCK@150 % and AUC % (action-mean): MPI-INF-3DHP's definition (share of joint errors below 150 mm; its mean "
        "over thresholds 0, 5, ..., 150 mm) on its 14 joints (all but pelvis, spine and nose), on every test set. "
        "The full report with per-action, per-joint, distribution, training-curve, compute and qualitative "
        "figures is `reports/comparison.html` (built by `dvc repro report`).",
        "",
        "\n>\n".join(f"> {line}" for line in info["lines"]),
        "",
        markdown_table(board),
        "",
        *[f"- {rule}" for rule in LEADERBOARD_RULES],
        "- Published P1/P2 in the leaderboard are the paper's figures for the same kind of 2D input "
        f"({PUBLISHED_LABEL}).",
        "",
    ]
    if convergence:
        parts += ["## Plateaus: each method trained to convergence on the same data", "",
                  markdown_table(formatted_plateaus(plateau_table(convergence, runs))), ""]
    if mpi3dhp:
        parts += ["## MPI-INF-3DHP, zero-shot", "", MPI3DHP_NOTE, "", markdown_table(mpi3dhp_table(mpi3dhp)), ""]
    if detector:
        parts += detector_markdown(detector)
    if robustness:
        parts += robustness_markdown(robustness, runs)
    parts += [
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


def write_results_md(path: str | Path, runs: dict, logs: pd.DataFrame | None = None,
                     convergence: dict | None = None, detector: dict | None = None, mpi3dhp: dict | None = None,
                     robustness: dict | None = None) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(results_markdown(runs, logs, convergence, detector, mpi3dhp, robustness), encoding="utf-8")


def robustness_markdown(records: dict, runs: dict) -> list[str]:
    """The robustness section of reports/results.md: per kind a table of P1 (mm) at each level, the
    ranking the curves imply, and the scored subsample against the whole test set (``records``:
    :func:`lifting.report.load_robustness`; ``runs``: the evaluate stage's records)."""
    def shown(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.map(lambda v: _fmt_mm(v) if isinstance(v, float) else v)

    parts = ["## Robustness to worse 2D", "", protocol_text(records), ""]
    for _, title, table in kind_tables(records):
        parts += [f"### {title}: P1 (mm) by level", "", markdown_table(shown(table)), ""]
    parts += [*(f"- {sentence}" for sentence in ranking_sentences(records)), "",
              "The scored subsample against the whole test set (P1 at level 0 and the evaluate stage's P1, mm):", "",
              markdown_table(shown(subsample_table(records, runs))), ""]
    return parts


_TABLE_CSS = """
<style>
div.lifting-scroll { overflow-x: auto; max-width: 100%; }
table.lifting { border-collapse: collapse; font-size: 12px; margin: 6px 0 14px 0; table-layout: auto;
                width: max-content; }
table.lifting th, table.lifting td { border: 1px solid #d0d0d0; padding: 3px 6px; text-align: right; }
table.lifting th { background: #f3f3f3; }
table.lifting td.text, table.lifting th.text { text-align: left; }
table.lifting tr.best td { font-weight: bold; }
table.lifting.leaderboard td:last-child { min-width: 15em; text-align: left; }
table.lifting td.published, table.lifting th.published { background: #f4f0fa; color: #4b3a72; }
div.lifting-banner { border-left: 6px solid #c0392b; background: #fdf0ee; padding: 8px 12px; margin: 8px 0; }
div.lifting-banner.ok { border-left-color: #2e7d32; background: #eef7ee; }
div.lifting-banner p { margin: 4px 0; }
ul.lifting-rules { font-size: 12px; max-width: 60em; }
</style>
"""


def html_table(frame: pd.DataFrame, css_class: str = "lifting", text_columns=(), published_columns=(),
               bold_rows=()) -> str:
    """A plain, escaped HTML table (no pandas styling, so tests can read it back), in a box that
    scrolls sideways when the table is wider than the page."""
    def head(column):
        classes = [c for c, on in (("text", column in text_columns), ("published", column in published_columns)) if on]
        return f'<th class="{" ".join(classes)}">{html.escape(str(column))}</th>'

    def data(column, value):
        classes = [c for c, on in (("text", column in text_columns), ("published", column in published_columns)) if on]
        text = "–" if _missing(value) else str(value)
        return f'<td class="{" ".join(classes)}">{html.escape(text)}</td>'

    lines = ['<div class="lifting-scroll" style="overflow-x: auto; max-width: 100%;">',
             f'<table class="{css_class}">', "<thead><tr>" + "".join(head(c) for c in frame.columns) + "</tr></thead>",
             "<tbody>"]
    for i, row in enumerate(frame.itertuples(index=False)):
        cls = ' class="best"' if i in set(bold_rows) else ""
        lines.append(f"<tr{cls}>" + "".join(data(c, v) for c, v in zip(frame.columns, row)) + "</tr>")
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def banner_html(runs: dict) -> str:
    info = banner(runs)
    cls = "lifting-banner ok" if info["comparable"] and not info["budget_limited"] else "lifting-banner"
    body = "".join(f"<p>{html.escape(line)}</p>" for line in info["lines"])
    protocol = html_table(pd.DataFrame(protocol_rows(runs), columns=["protocol", "value"]),
                          text_columns=("protocol", "value"))
    return f'{_TABLE_CSS}<div class="{cls}">{body}</div>{protocol}'


def leaderboard_html(runs: dict, logs: pd.DataFrame | None = None, convergence: dict | None = None) -> str:
    """The leaderboard table (class ``lifting leaderboard``), rank 1 of each 2D input in bold (all of
    them when several share it), followed by the rules of its columns."""
    table = leaderboard(runs, logs, convergence)
    best = [i for i, rank in enumerate(table["rank"]) if rank in ("1", "1=")]
    shown = formatted_leaderboard(table)
    rules = "".join(f"<li>{html.escape(rule)}</li>" for rule in LEADERBOARD_RULES)
    return _TABLE_CSS + html_table(shown, css_class="lifting leaderboard",
                                   text_columns=("rank", "method", "2D input", "convergence", "notes"),
                                   published_columns=("published P1", "published P2"),
                                   bold_rows=best) + f'<ul class="lifting-rules">{rules}</ul>'


def plateau_html(convergence: dict, pipeline_runs=None) -> str:
    """The plateaus of :func:`~lifting.report.tables.plateau_table` as a table."""
    return _TABLE_CSS + html_table(formatted_plateaus(plateau_table(convergence, pipeline_runs)),
                                   css_class="lifting plateaus",
                                   text_columns=("method", "2D input", "configuration", "recipe", "rule"))


def context_html(records: list[dict]) -> str:
    """:func:`~lifting.report.tables.context_table` as a table (P1/P2 in mm, one decimal)."""
    table = context_table(records)
    shown = table.assign(P1=table["P1"].map(_fmt_mm), P2=table["P2"].map(_fmt_mm),
                         **{"samples seen": table["samples seen"].map(_fmt_rate)})
    return _TABLE_CSS + html_table(shown, css_class="lifting context",
                                   text_columns=("network", "2D input", "budget", "file"))


def published_html(methods) -> str:
    table = published_table(methods)
    return _TABLE_CSS + html_table(table, css_class="lifting published",
                                   text_columns=("method", "configuration", "2D input", "params", "source"),
                                   published_columns=("P1 (mm)", "P2 (mm)"))


def number_table_html(frame: pd.DataFrame, index_label: str) -> str:
    """A numeric table (mm, one decimal) with its index as the first column."""
    def text(value) -> str:
        if value is None:
            return "–"
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "NO"
        if isinstance(value, (int, np.integer)):
            return f"{int(value):,}"
        if isinstance(value, (float, np.floating)):
            return _fmt_mm(value)
        return str(value)

    shown = frame.astype(object).map(text).reset_index().rename(columns={frame.index.name or "index": index_label})
    return _TABLE_CSS + html_table(shown, text_columns=(index_label,))


def mpi3dhp_html(records: dict) -> str:
    """The runs' MPI-INF-3DHP scores (:func:`~lifting.report.cross_dataset.mpi3dhp_table`) for the notebook,
    or a line saying why there are none."""
    if not records:
        return ("<p>Not scored on MPI-INF-3DHP: <code>data.mpi3dhp_dir</code> is null (set it to the folder of the "
                "licensed test set, TS1..TS6, and run <code>dvc repro</code>).</p>")
    return (_TABLE_CSS + f"<p>{html.escape(MPI3DHP_NOTE)}</p>"
            + html_table(mpi3dhp_table(records), css_class="lifting mpi3dhp", text_columns=("method", "trained on")))
