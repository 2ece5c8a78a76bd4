"""The comparison report: load the pipeline's artefacts, build the tables and figures, render HTML.

The report only *reads* artefacts (DESIGN §C.7-13): the evaluate stage's metrics JSON, the train
stage's CSV logs, the prediction Parquet files, the aligned targets and 2D inputs, and the
cameras. Nothing here retrains a model or re-scores a method; per-frame errors for the
distribution plots are the one thing computed, from predictions vs targets, and they are checked
against the metrics' frame-mean.

Modules, in the order the report uses them:

- :mod:`~lifting.report.published`: the papers' Human3.6M figures (``published.csv``).
- :mod:`~lifting.report.artefacts`: loading metrics, logs, convergence records, predictions,
  targets, cameras.
- :mod:`~lifting.report.convergence`: seeds (mean ± std), the convergence flag, the gap to the
  plateau and shared ranks: the rules the leaderboard applies, with their texts.
- :mod:`~lifting.report.cross_dataset`: the runs' zero-shot MPI-INF-3DHP scores.
- :mod:`~lifting.report.tables`: leaderboard, per-action and per-joint tables, labels, banner.
- :mod:`~lifting.report.render`: those tables as HTML (notebook) and Markdown (results.md).
- :mod:`~lifting.report.figures`: the charts (matplotlib, headless).
- :mod:`~lifting.report.robustness`: every run's P1 on perturbed test 2D (the robustness stages'
  metrics): tables, the ranking they imply, one figure per kind of perturbation.
- :mod:`~lifting.report.poses`: the qualitative pose panels.
- :mod:`~lifting.report.notebook`: running ``reports/comparison.ipynb`` and converting it to HTML.

Everything the notebook, ``stages/report.py``, ``lifting/sweep.py`` and the tests use is
re-exported here, so ``from lifting import report as R; R.leaderboard(...)`` works.
"""

from lifting.config import REPORT_DEFAULTS, report_options
from lifting.report.artefacts import (
    KEYS,
    LOG_COLUMNS,
    check_against_metrics,
    experiment_grid,
    load_cameras,
    load_context_runs,
    load_convergence,
    load_detector,
    load_inputs2d,
    load_metrics,
    load_predictions,
    load_targets,
    load_train_logs,
    per_frame_errors,
    run_grid,
)
from lifting.report.convergence import (
    CONVERGENCE_RULE,
    GAP_RULE,
    RANK_RULE,
    SEEDS_RULE,
    convergence_flag,
    curve_change,
    format_mean_std,
    gap_percent,
    last_fifth_change,
    rank_spread,
    seed_stats,
    shared_ranks,
)
from lifting.report.cross_dataset import (
    MPI3DHP_NOTE,
    load_3dhp,
    mpi3dhp_table,
)
from lifting.report.figures import (
    figure_png,
    method_colours,
    new_figure,
    plot_action_heatmap,
    plot_compute,
    plot_error_distributions,
    plot_joint_errors,
    plot_training_curves,
    show,
)
from lifting.report.notebook import (
    notebook_parameters,
    render_report,
)
from lifting.report.poses import (
    common_test_keys,
    draw_pose_2d,
    draw_pose_3d,
    plot_qualitative,
    select_qualitative_frames,
)
from lifting.report.published import (
    PUBLISHED_LABEL,
    Published,
    published_for,
    published_rows,
    published_table,
    read_published,
)
from lifting.report.render import (
    LEADERBOARD_RULES,
    banner_html,
    context_html,
    formatted_leaderboard,
    formatted_plateaus,
    html_table,
    leaderboard_html,
    markdown_table,
    mpi3dhp_html,
    number_table_html,
    plateau_html,
    published_html,
    results_markdown,
    robustness_markdown,
    write_results_md,
)
from lifting.report.robustness import (
    degradation,
    kind_tables,
    load_robustness,
    plot_robustness,
    protocol_text,
    ranking_sentences,
    robustness_table,
    subsample_table,
)
from lifting.report.tables import (
    METHOD_NAMES,
    PROTOCOLS,
    action_table,
    banner,
    budget_label,
    context_table,
    is_budget_limited,
    joint_table,
    leaderboard,
    plain_text,
    plateau_table,
    protocol_rows,
    run_notes,
)

__all__ = [
    "CONVERGENCE_RULE", "GAP_RULE", "KEYS", "LEADERBOARD_RULES", "LOG_COLUMNS", "METHOD_NAMES", "PROTOCOLS",
    "PUBLISHED_LABEL", "RANK_RULE", "REPORT_DEFAULTS", "SEEDS_RULE", "action_table", "banner", "banner_html",
    "budget_label", "check_against_metrics", "context_html", "context_table", "common_test_keys", "convergence_flag", "experiment_grid", "curve_change", "draw_pose_2d",
    "draw_pose_3d", "figure_png", "format_mean_std", "formatted_leaderboard", "formatted_plateaus", "gap_percent",
    "html_table", "is_budget_limited", "joint_table", "last_fifth_change", "leaderboard", "leaderboard_html",
    "load_cameras", "load_context_runs", "load_convergence", "load_detector", "load_inputs2d", "load_metrics", "load_predictions", "load_targets",
    "load_train_logs", "markdown_table", "method_colours", "new_figure", "notebook_parameters", "number_table_html",
    "per_frame_errors", "plain_text", "plateau_html", "plateau_table", "plot_action_heatmap", "plot_compute",
    "plot_error_distributions", "plot_joint_errors", "plot_qualitative", "plot_training_curves", "protocol_rows",
    "Published", "published_for", "published_html", "published_rows", "published_table", "rank_spread",
    "read_published", "render_report", "report_options", "results_markdown", "run_grid", "run_notes", "seed_stats",
    "select_qualitative_frames", "shared_ranks", "show", "write_results_md",
    "MPI3DHP_NOTE", "load_3dhp", "mpi3dhp_html", "mpi3dhp_table",
    # the robustness section (lifting/report/robustness.py)
    "degradation", "kind_tables", "load_robustness", "plot_robustness", "protocol_text", "ranking_sentences",
    "robustness_markdown", "robustness_table", "subsample_table",
]
