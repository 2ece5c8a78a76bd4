"""The report's charts: headless :class:`matplotlib.figure.Figure` objects on the Agg canvas.

No pyplot state: every figure is made by :func:`new_figure` and turned into PNG bytes by
:func:`figure_png`, or into an IPython image by :func:`show`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

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
