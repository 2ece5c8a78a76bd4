"""The report's tables and labels, as plain DataFrames and dicts (no formatting here).

Names: P1 = MPJPE (``mpjpe_mm``), P2 = P-MPJPE (``p_mpjpe_mm``), P3 = N-MPJPE (``n_mpjpe_mm``);
"action-mean" is the papers' headline (mean over actions of per-action frame means), "frame-mean"
pools all frames (MMPose's headline).
"""

from __future__ import annotations

import pandas as pd

from lifting.report.convergence import (
    convergence_flag,
    curve_change,
    gap_percent,
    plateau_of,
    rank_spread,
    seed_stats,
    shared_ranks,
)
from lifting.report.published import published_for
from lifting.skeleton import COMMON_JOINTS, H36M17, get_joint_set


#: The column runs are ranked by: P1 action-mean on the joints every method predicts.
RANKED = f"P1 {COMMON_JOINTS.name}"
#: The three protocols of every metrics file: (key in the JSON, short name, long name).
PROTOCOLS = (("mpjpe_mm", "P1", "MPJPE"), ("p_mpjpe_mm", "P2", "P-MPJPE"), ("n_mpjpe_mm", "P3", "N-MPJPE"))
#: PCK@150 mm and AUC (%, action-mean, MPI-INF-3DHP's 14 joints): (key in the JSON, key in the seeds block, column).
PCK_COLUMNS = (("pck150_pct", "pck150", "PCK@150 %"), ("auc_pct", "auc", "AUC %"))

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


def budget_label(record: dict) -> str | None:
    """A short label for a run trained under a budget, else None.

    ``budget.max_epochs`` not null makes a run "budget-limited" (its paper's schedule was cut); a
    training-frame stride > 1 is stated too, since it shrinks the training set (lookups included),
    and so is every change the budget made to the paper's recipe (batch size, lr scale, lr decay
    to zero, warm-up, bf16 autocast on the CPU).
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
        decay = "cosine" if budget.get("cosine") else budget.get("decay")
        if decay not in (None, "paper"):
            parts.append(f"{decay} lr")
        if float(budget.get("warmup") or 0.0) > 0:
            parts.append(f"{float(budget['warmup']):.0%} warm-up")
        if budget.get("bf16_cpu"):
            parts.append("bf16 on the CPU")
        return f"budget-limited ({', '.join(parts)})"
    if capped and frames:
        return f"budget-limited ({frames})"
    if frames:
        return f"paper schedule on {frames}"
    return None


def run_notes(record: dict) -> str:
    """Caveats of one run: the paper's configuration it ran, budget, test-set checkpoint selection,
    flip test."""
    notes = []
    if (record.get("training") or {}).get("schedule") is None:
        notes.append("lookup")
    configuration = record.get("protocol", {}).get("configuration_label")
    if configuration:
        notes.append(str(configuration))
    label = budget_label(record)
    if label:
        notes.append(label)
    protocol = record.get("protocol", {})
    if "TEST SET" in str(protocol.get("checkpoint", "")).upper():
        notes.append("checkpoint selected on the test set")
    if protocol.get("train_flip"):
        notes.append("train flip")
    if protocol.get("flip_test"):
        notes.append("flip test")
    stages = (record.get("training") or {}).get("stages") or {}
    if len(stages) > 1:
        notes.append(f"trained in {len(stages)} stages ({chain_text(stages, record.get('method'))}; samples seen and "
                     "training time are the chain's totals)")
    return ", ".join(notes)


def chain_text(stages: dict, run: str | None = None) -> str:
    """A staged run's chain, stage by stage: epochs, samples, time and the last logged test-curve P1.
    The metrics file sorts the stages' names, so they are listed by name with ``run`` itself (the
    last stage, e.g. ``rie`` after ``rie_stage1`` and ``rie_stage2``) last."""
    parts = []
    for name in sorted(stages, key=lambda name: (name == run, name)):
        stage = stages[name]
        seconds, p1 = stage.get("train_seconds"), stage.get("curve_p1")
        parts.append(f"{name}: {stage.get('epochs')} epochs, {stage.get('samples_seen') or 0:,} samples"
                     + (f", {seconds / 60:.1f} min" if seconds is not None else "")
                     + (f", curve P1 {p1:.1f} mm" if p1 is not None else ""))
    return "; ".join(parts)


def chain_total(training: dict, key: str):
    """``training[key]`` ("samples_seen", "seconds"), summed over a staged run's stages."""
    stages = training.get("stages") or {}
    if len(stages) < 2:
        return training.get(key)
    values = [stage.get("train_seconds" if key == "seconds" else key) for stage in stages.values()]
    return None if None in values else sum(values)


def is_budget_limited(runs: dict) -> bool:
    return any((r.get("protocol", {}).get("budget") or {}).get("max_epochs") is not None for r in runs.values())


def leaderboard(runs: dict[tuple[str, str], dict], logs: pd.DataFrame | None = None,
                convergence: dict | None = None) -> pd.DataFrame:
    """One row per (method, 2D input), ranked by P1 on the common joints within each 2D input (see
    ``RANK_RULE``).

    Columns: rank (ties shared, "2="), seeds, the ranked P1 (:data:`RANKED`, action-mean on the
    joints every method predicts, with its seed std), P1/P2/P3 action-mean on the run's own joints with their seed std and
    frame-mean (mm), PCK@150 mm and AUC (%, action-mean, with their seed std), the plateau P1 from ``convergence`` and the gap to it (%), samples seen,
    the last-fifth change of the run's test-set curve in ``logs`` and its convergence flag, size,
    speed, the matching published Human3.6M P1/P2, notes. Missing inputs leave None ("–").

    Args:
        runs: :func:`~lifting.report.artefacts.load_metrics`.
        logs: :func:`~lifting.report.artefacts.load_train_logs` (optional).
        convergence: :func:`~lifting.report.artefacts.load_convergence` (optional).
    """
    rows = []
    for (method, input2d), record in runs.items():
        metrics = record["metrics"]
        training = record.get("training") or {}
        published = published_for(method, input2d)
        stats = seed_stats(record)
        row = {"method": method, "2D input": input2d,
               "joints": int(get_joint_set(record["protocol"]["joint_set"]).num_joints), "seeds": stats["seeds"]}
        row[RANKED] = stats[f"p1_{COMMON_JOINTS.name}"]
        row[f"{RANKED} std"] = stats[f"p1_{COMMON_JOINTS.name}_std"]
        for key, short, _ in PROTOCOLS:
            row[f"{short} action-mean"] = metrics[key]["action_mean"]
            row[f"{short} std"] = stats[f"{short.lower()}_std"]
            row[f"{short} frame-mean"] = metrics[key]["frame_mean"]
        for key, seed_key, column in PCK_COLUMNS:  # None in a metrics file written before PCK existed
            row[column] = (metrics.get(key) or {}).get("action_mean")
            row[f"{column} std"] = ((record.get("seeds") or {}).get("std") or {}).get(seed_key)
        notes = [run_notes(record)] if run_notes(record) else []
        measured = (convergence or {}).get((method, input2d)) or {}
        plateau = plateau_of(measured)
        ours, theirs = record["protocol"].get("configuration"), measured.get("configuration")
        if ours and theirs and ours != theirs:
            notes.append(f"plateau measured for the {theirs} configuration, not shown")
            plateau = {}
        run_log = None if logs is None else logs[(logs["method"] == method) & (logs["input2d"] == input2d)]
        change = None if run_log is None else curve_change(run_log)
        row.update({
            "plateau P1": plateau.get("p1"),
            "plateau converged": plateau.get("converged"),
            "gap to plateau %": gap_percent(row["P1 action-mean"], plateau.get("p1")),
            "samples seen": chain_total(training, "samples_seen"),
            "last-fifth change mm": change,
            "convergence": convergence_flag(change, row["P1 action-mean"]),
            "params": record.get("parameters"),
            "epochs": training.get("epochs"),
            "train s": chain_total(training, "seconds"),
            "train samples/s": training.get("samples_per_s"),
            "inference samples/s": record.get("inference_samples_per_s"),
            "published P1": published.p1 if published else None,
            "published P2": published.p2 if published else None,
            "notes": ", ".join(notes),
        })
        rows.append(row)
    table = pd.DataFrame(rows)
    order = {name: i for i, name in enumerate(dict.fromkeys(i for _, i in runs))}
    table["_input"] = table["2D input"].map(order)
    table = table.sort_values(["_input", RANKED], kind="stable").drop(columns="_input")
    table = table.reset_index(drop=True)
    table.insert(0, "rank", "–")
    for _, group in table.groupby("2D input", sort=False):
        spread = [rank_spread(v) for v in group[f"{RANKED} std"]]
        table.loc[group.index, "rank"] = shared_ranks(group[RANKED].tolist(), spread)
    return table


def context_table(records: list[dict]) -> pd.DataFrame:
    """What the image adds to Context-Aware PoseFormer: one row per recorded run
    (:func:`~lifting.report.artefacts.load_context_runs`), with or without its image context, its
    2D input, P1/P2 (action mean over seeds), the samples it trained on and its budget."""
    rows = []
    for record in records:
        config, training = record.get("config") or {}, record.get("training") or {}
        mean = record["seeds"]["mean"]
        rows.append({"network": ("with image context" if config.get("image_context", True)
                                 else "without the image (2D tokens only)"),
                     "2D input": record["input2d"], "P1": mean["p1"], "P2": mean["p2"],
                     "samples seen": chain_total(training, "samples_seen"), "seeds": len(record["seeds"]["seeds"]),
                     "budget": budget_label(record) or "paper schedule", "file": record["file"]})
    return pd.DataFrame(rows, columns=["network", "2D input", "P1", "P2", "samples seen", "seeds", "budget", "file"])


def plateau_table(convergence: dict, pipeline_runs=None) -> pd.DataFrame:
    """One row per convergence record: the plateau P1/P2, the recipe that reached it, its cost and
    whether its rule judged it converged (the rule text is in the last column). With
    ``pipeline_runs`` (the (method, input2d) keys the pipeline ran), the other records' rows come
    last, their method marked "(experiment)"."""
    rows = []
    ran = None if pipeline_runs is None else set(pipeline_runs)
    keys = sorted(convergence, key=lambda k: ran is not None and k not in ran)  # stable: the runs first
    for method, input2d in keys:
        record = convergence[(method, input2d)]
        plateau = plateau_of(record)
        recipe = next((r for r in record.get("recipes") or [] if r.get("name") == plateau.get("recipe")), {})
        configuration = record.get("configuration_label") or record.get("configuration")
        shown = method if ran is None or (method, input2d) in ran else f"{method} (experiment)"
        rows.append({"method": shown, "2D input": input2d, "configuration": configuration,
                     "plateau P1": plateau.get("p1"), "plateau P2": plateau.get("p2"),
                     "recipe": recipe.get("label") or plateau.get("recipe"),
                     "samples seen": plateau.get("samples_seen"), "core-seconds": plateau.get("core_seconds"),
                     "converged": plateau.get("converged"), "threads": record.get("threads"),
                     "rule": plateau.get("rule")})
    columns = ["method", "2D input", "configuration", "plateau P1", "plateau P2", "recipe", "samples seen",
               "core-seconds", "converged", "threads", "rule"]
    return pd.DataFrame(rows, columns=columns)


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
              "train_frames", "joint_set", "root", "train_flip", "flip_test", "configuration", "configuration_label", "seeds",
              "checkpoint", "test_curve", "budget", "comparable_with_published_h36m"]
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
        limited = [key for key, r in runs.items() if (r["protocol"].get("budget") or {}).get("max_epochs") is not None]
        lines.append(f"Budget-limited: {len(limited)} of {len(runs)} runs were trained under a budget (each run's is "
                     "in its notes: epochs, share of the training frames, batch, lr scale), not its paper's full "
                     "schedule, so the errors are higher than the method can reach. Set budget.max_epochs: null "
                     "for the papers' schedules.")
    test_selected = [f"{m}-{i}" for (m, i), r in runs.items()
                     if "TEST SET" in str(r["protocol"].get("checkpoint", "")).upper()]
    if test_selected:
        lines.append("Checkpoint selected on the test set (optimistic, as several papers do): "
                     f"{', '.join(test_selected)}.")
    return {"data_source": ", ".join(sources), "comparable": comparable,
            "budget_limited": is_budget_limited(runs), "lines": lines}
