"""The report's charts: headless :class:`matplotlib.figure.Figure` objects on the Agg canvas.

No pyplot state: every figure is made by :func:`new_figure` and turned into PNG bytes by
:func:`figure_png`, or into an IPython image by :func:`show`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from lifting.report.convergence import plateau_curve, plateau_of
from lifting.report.tables import joint_table


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
    """Grouped bars of per-joint error, one panel per 2D input, one bar colour per method.

    Every bar is inside its axes: the y limit is set from the data (5 % headroom over the tallest
    bar), and the legend sits above the panels, outside them, where it cannot hide a bar.
    """
    inputs2d = list(dict.fromkeys(i for _, i in runs))
    methods = list(dict.fromkeys(m for m, _ in runs))
    colours = method_colours(methods)
    table = joint_table(runs, metric)
    figure = new_figure(max(8.0, 0.55 * len(table) + 2.0), 2.8 * len(inputs2d) + 0.8)
    axes = figure.subplots(len(inputs2d), 1, squeeze=False, sharex=True)[:, 0]
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(table))
    for ax, input2d in zip(axes, inputs2d):
        tallest = 0.0
        for k, method in enumerate(methods):
            column = f"{method} / {input2d}"
            if column in table:
                heights = table[column].to_numpy(np.float64)
                ax.bar(x + (k - (len(methods) - 1) / 2) * width, heights, width, label=method, color=colours[method])
                finite = heights[np.isfinite(heights)]
                tallest = max(tallest, float(finite.max()) if finite.size else 0.0)
        ax.set_ylim(0.0, 1.05 * tallest if tallest > 0 else 1.0)
        ax.set_ylabel(f"{label}, mm")
        ax.set_title(f"2D input: {input2d}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(x, table.index, rotation=45, ha="right")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncols=min(6, len(methods)), fontsize=8)
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


def _curve_mean(log: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds of ``y`` at each evaluation point (the same step, else the same epoch)."""
    key = "step" if log["step"].notna().all() else "epoch"
    points = log.groupby(key, sort=True)[[c for c in dict.fromkeys([x, y]) if c != key]].mean()
    xs = (points.index if x == key else points[x]).to_numpy(np.float64)
    ys = points[y].to_numpy(np.float64)
    keep = np.isfinite(xs) & np.isfinite(ys)
    return xs[keep], ys[keep]


def plot_training_curves(logs: pd.DataFrame, methods, inputs2d) -> Figure:
    """The logged test-set P1 (left) and the training loss (right), one row per 2D input.

    The test-set curve (``test_p1_mm``, a fixed subsample of the test set) is logged only and never
    used for selection; it is drawn against samples seen, one thin line per seed and a thick line
    for their mean. Rows of old logs (no samples seen) fall back to the epoch, and runs without a
    test-set curve show their validation MPJPE (dashed) where they have one.
    """
    colours = method_colours(methods)
    figure = new_figure(12.0, 3.0 * len(inputs2d) + 0.4)
    axes = figure.subplots(len(inputs2d), 2, squeeze=False)
    for row, input2d in enumerate(inputs2d):
        curve_ax, loss_ax = axes[row]
        here = logs[logs["input2d"] == input2d]
        x = "samples_seen" if len(here) and here["samples_seen"].notna().all() else "epoch"
        any_test = False
        for method in methods:
            log = here[here["method"] == method]
            if log.empty:
                continue
            test = log["test_p1_mm"].notna().any()
            y = "test_p1_mm" if test else "val_mpjpe_mm"
            any_test |= bool(test)
            if test:
                for _, seed_log in log.groupby(log["seed"].fillna(-1)):
                    seed_log = seed_log.sort_values(x)
                    curve_ax.plot(seed_log[x], seed_log[y], color=colours[method], linewidth=0.8, alpha=0.35)
            style = {"color": colours[method], "marker": "o", "markersize": 3}
            curve_ax.plot(*_curve_mean(log, x, y), linestyle="-" if test else "--",
                          label=method if test else f"{method} (validation)", **style)
            loss_ax.plot(*_curve_mean(log, x, "train_loss"), label=method, **style)
        curve_ax.set_ylabel("P1 (MPJPE), mm" if any_test else "validation MPJPE, mm")
        curve_ax.set_title(f"2D input: {input2d} · test-set curve, logged only (never used for selection)"
                           if any_test else f"2D input: {input2d}", fontsize=10)
        loss_ax.set_title(f"2D input: {input2d} · training loss", fontsize=10)
        loss_ax.set_ylabel("training loss (method's own)")
        loss_ax.set_yscale("log")
        for ax in (curve_ax, loss_ax):
            ax.set_xlabel("samples seen" if x == "samples_seen" else "epoch")
            ax.grid(alpha=0.3)
            if x == "epoch":
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        losses = here["train_loss"].to_numpy(np.float64)
        losses = losses[np.isfinite(losses) & (losses > 0)]
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        loss_ax.yaxis.set_major_formatter(plain)
        # label the minor ticks too when the losses span less than a decade or so (else too crowded)
        narrow = losses.size and losses.max() / losses.min() < 20
        loss_ax.yaxis.set_minor_formatter(plain if narrow else NullFormatter())
        if curve_ax.get_legend_handles_labels()[0]:
            curve_ax.legend(fontsize=8)
    return figure


def plot_compute(convergence: dict, runs: dict, inputs2d) -> Figure:
    """P1 against training compute: samples seen (left) and core-seconds (right), log x.

    One line per run and 2D input from its convergence curve (the recipe its plateau comes from),
    a star at the plateau, and a round marker at each pipeline run's own final point (samples seen
    or core-seconds per seed, P1 mean over seeds), so the ranking at equal compute and at
    convergence can be read off. One row per 2D input that has anything to draw.
    """
    methods = list(dict.fromkeys([m for m, _ in runs] + [m for m, _ in convergence]))
    colours = method_colours(methods)
    rows = [i for i in inputs2d if any(k[1] == i for k in convergence)
            or any(k[1] == i and (r.get("training") or {}).get("samples_seen") for k, r in runs.items())]
    figure = new_figure(12.0, 3.4 * max(1, len(rows)) + 0.8)
    axes = figure.subplots(max(1, len(rows)), 2, squeeze=False)
    columns = (("samples_seen", "samples seen"), ("core_seconds", "core-seconds (training seconds × threads)"))
    shown = set()
    for row, input2d in enumerate(rows):
        for ax, (key, label) in zip(axes[row], columns):
            for (method, source), record in convergence.items():
                recipe = plateau_curve(record) if source == input2d else None
                if recipe is None:
                    continue
                curve = pd.DataFrame(recipe["curve"]).reindex(columns=[key, "p1"]).astype(np.float64).dropna()
                curve = curve[curve[key] > 0].sort_values(key)
                ax.plot(curve[key], curve["p1"], color=colours[method], linewidth=1.5, label=method)
                shown.add(method)
                plateau = plateau_of(record)
                if (plateau.get(key) or 0) > 0 and plateau.get("p1") is not None:
                    ax.scatter([plateau[key]], [plateau["p1"]], marker="*", s=120, color=colours[method],
                               edgecolors="black", linewidths=0.5, zorder=4)
            for (method, source), record in runs.items():
                done = (record.get("training") or {}).get(key)
                if source == input2d and done:
                    ax.scatter([done], [record["metrics"]["mpjpe_mm"]["action_mean"]], marker="o", s=40,
                               color=colours[method], edgecolors="black", linewidths=0.8, zorder=5)
                    shown.add(method)
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(f"{label}, log scale")
            ax.set_ylabel("P1 (MPJPE), mm")
            ax.set_title(f"2D input: {input2d}", fontsize=10)
            ax.grid(alpha=0.3, which="both")
    if not rows:
        axes[0, 0].text(0.5, 0.5, "no convergence curves or compute records", ha="center", va="center",
                        transform=axes[0, 0].transAxes)
    handles = {method: Line2D([], [], color=colours[method], linewidth=3) for method in methods if method in shown}
    handles["convergence curve (plateau recipe)"] = Line2D([], [], color="grey")
    handles["plateau"] = Line2D([], [], color="grey", marker="*", markersize=10, linestyle="none")
    handles["pipeline run (default budget)"] = Line2D([], [], color="grey", marker="o", markeredgecolor="black",
                                                      linestyle="none")
    figure.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=4, fontsize=8)
    return figure
