"""Seeds, convergence and ranking: the rules the leaderboard applies, as small pure functions.

Three questions a budgeted benchmark must answer before it ranks anything:

- How much do seeds move a run? The metrics file's ``seeds`` block gives the action-mean error of
  every seed, their mean and sample standard deviation (:func:`seed_stats`).
- Had the run stopped improving? Its own logged test-set curve (the training log's
  ``test_p1_mm``, never used for selection) gives the change over the last fifth of the run
  (:func:`last_fifth_change`, :func:`curve_change`, :func:`convergence_flag`).
- How far is it from what the method reaches when trained to convergence? The plateau measured
  once per method (``benchmarks/results/convergence/``) gives the gap (:func:`gap_percent`).

Rank ties (:func:`shared_ranks`) make sure a difference within the seeds' spread is never
presented as a ranking. The rule texts below are printed in the report next to the numbers.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from lifting.skeleton import COMMON_JOINTS

#: The spread assumed for a run with one seed (or an old metrics file without seeds), in mm.
SINGLE_SEED_SPREAD_MM = 2.0
#: A curve is "still falling" when it drops by more than max(this, ...) mm over its last fifth,
FLAT_MM = 1.0
#: ... or by more than this share of the run's P1, whichever is larger.
FLAT_SHARE = 0.02
#: The fewest evaluation points a last-fifth fit uses.
MIN_POINTS = 3

RANK_RULE = (
    "Ranked by P1 on the 16 joints every method predicts (h36m16: SemGCN and Modulated GCN predict no nose; "
    "each run's P1 on its own joints is beside it) at the default budget (action-mean, mean over seeds), "
    "within each 2D input; the plateau "
    "column is the ranking at convergence. A run's rank is 1 + the number of runs whose P1 is lower by more "
    "than the larger of the two runs' seed standard deviations (a run with one seed counts as "
    f"{SINGLE_SEED_SPREAD_MM:g} mm). Runs with the same rank share it (\"2=\"): a difference within the "
    "seeds' spread is not a ranking.")
CONVERGENCE_RULE = (
    "Convergence: a least-squares line through the logged test-set P1 (a fixed subsample of the test set, "
    "logged only, never used for selection) against samples seen, over the last fifth of the run's "
    f"evaluation points (at least {MIN_POINTS}), seed by seed; its slope times the samples that fifth spans "
    "is the projected change in mm, averaged over seeds. \"still falling\" when it drops by more than "
    f"max({FLAT_MM:g} mm, {FLAT_SHARE:.0%} of P1), \"rising\" when it climbs by more than that, else "
    "\"levelled off\"; \"–\" when the log has no test-set curve.")
GAP_RULE = (
    "Gap = (P1 - plateau P1) / plateau P1: how far the budgeted run is from the method's own P1 when trained "
    "to convergence on the same data (benchmarks/results/convergence/); \"(not converged)\" marks a plateau "
    "whose own rule did not find one.")
SEEDS_RULE = "P1/P2/P3 action-mean are mean ± sample standard deviation over seeds (plain mean with one seed)."


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)


def seed_stats(record: dict) -> dict:
    """``{"seeds": n | None, "p1": mean, "p1_std": std | None, ... p2, p3, "p1_h36m16", "p1_h36m16_std"}``
    of one metrics record (the common-joint P1 is None in a file written before it existed).

    The means are the metrics' action-means (the mean over seeds by the contract); the standard
    deviations come from the ``seeds`` block (``None`` with one seed or without the block).
    """
    block = record.get("seeds") or {}
    seeds = block.get("seeds")
    std = block.get("std") or {}
    out = {"seeds": len(seeds) if isinstance(seeds, list) else None}
    for key, name in (("mpjpe_mm", "p1"), ("p_mpjpe_mm", "p2"), ("n_mpjpe_mm", "p3")):
        out[name] = record["metrics"][key]["action_mean"]
        value = std.get(name)
        out[f"{name}_std"] = float(value) if _finite(value) and (out["seeds"] or 0) > 1 else None
    key = f"p1_{COMMON_JOINTS.name}"
    out[key] = common_joint_score(record, "mpjpe_mm")
    value = std.get("p1" if _on_common_joints(record) else key)
    out[f"{key}_std"] = float(value) if _finite(value) and (out["seeds"] or 0) > 1 else None
    return out


def _on_common_joints(record: dict) -> bool:
    return (record.get("protocol") or {}).get("joint_set") == COMMON_JOINTS.name


def common_joint_score(record: dict, key: str) -> float | None:
    """A metrics record's action-mean ``key`` ("mpjpe_mm" or "p_mpjpe_mm") on the joints every
    method predicts: its own score when it predicts exactly those, else its ``metrics["h36m16"]``
    block; None in a 17-joint file written before that block existed (such a run is not ranked)."""
    metrics = record.get("metrics") or {}
    block = metrics.get(key) if _on_common_joints(record) else (metrics.get(COMMON_JOINTS.name) or {}).get(key)
    return (block or {}).get("action_mean")


def format_mean_std(mean, std=None) -> str:
    """``"52.3 ± 0.4"``, ``"52.3"`` without a std, ``"–"`` without a mean (mm, one decimal)."""
    if not _finite(mean):
        return "–"
    return f"{mean:.1f} ± {std:.1f}" if _finite(std) else f"{mean:.1f}"


def last_fifth_change(samples, p1, min_points: int = MIN_POINTS) -> float | None:
    """Projected change of ``p1`` (mm) over the last fifth of a curve's points.

    The least-squares slope of ``p1`` against ``samples`` over the last ``max(min_points,
    ceil(n / 5))`` points (sorted by samples, non-finite points dropped), times the samples those
    points span. ``None`` with fewer than ``min_points`` points or a zero span.
    """
    x, y = np.asarray(samples, np.float64), np.asarray(p1, np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < min_points:
        return None
    order = np.argsort(x, kind="stable")
    count = max(min_points, math.ceil(len(x) / 5))
    x, y = x[order][-count:], y[order][-count:]
    span = x[-1] - x[0]
    if span <= 0:
        return None
    dx = x - x.mean()
    slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    return slope * float(span)


def curve_change(log: pd.DataFrame) -> float | None:
    """:func:`last_fifth_change` of ``test_p1_mm`` against ``samples_seen``, seed by seed, averaged.

    ``log``: one run's rows of the training log (columns seed, samples_seen, test_p1_mm). ``None``
    when no seed has a usable curve (an old log without those columns, a lookup, too few points).
    """
    if log.empty or not {"samples_seen", "test_p1_mm"} <= set(log.columns):
        return None
    seeds = log["seed"] if "seed" in log.columns else pd.Series(0, index=log.index)
    changes = [last_fifth_change(part["samples_seen"], part["test_p1_mm"])
               for _, part in log.groupby(seeds.fillna(-1), sort=True)]
    changes = [c for c in changes if c is not None]
    return float(np.mean(changes)) if changes else None


def convergence_flag(change: float | None, p1: float | None) -> str:
    """The leaderboard's convergence text for a curve's last-fifth ``change`` and the run's ``p1``.

    "still falling: -3.1 mm over the last fifth" when the drop exceeds max(1 mm, 2 % of P1),
    "rising: +2.5 mm ..." when the climb does, else "levelled off: -0.4 mm ..."; "–" without a curve.
    """
    if not _finite(change):
        return "–"
    threshold = max(FLAT_MM, FLAT_SHARE * p1) if _finite(p1) else FLAT_MM
    state = "still falling" if change < -threshold else "rising" if change > threshold else "levelled off"
    return f"{state}: {change:+.1f} mm over the last fifth"


def shared_ranks(p1, spread) -> list[str]:
    """Competition ranks with ties: run i's rank is 1 + the number of runs j with
    ``p1[j] < p1[i] - max(spread[i], spread[j])``; a rank held by several runs gets "=".

    ``spread``: each run's seed standard deviation, or :data:`SINGLE_SEED_SPREAD_MM` (see
    :func:`rank_spread`). A run without a finite P1 gets "–" and beats nobody.
    """
    values = [float(v) if _finite(v) else math.nan for v in p1]
    ranks = []
    for i, value in enumerate(values):
        if math.isnan(value):
            ranks.append(None)
            continue
        better = sum(1 for j, other in enumerate(values)
                     if not math.isnan(other) and other < value - max(spread[i], spread[j]))
        ranks.append(1 + better)
    counts = Counter(r for r in ranks if r is not None)
    return ["–" if r is None else f"{r}=" if counts[r] > 1 else str(r) for r in ranks]


def rank_spread(std) -> float:
    """The margin a run brings to :func:`shared_ranks`: its P1 seed std, or 2 mm with one seed."""
    return float(std) if _finite(std) else SINGLE_SEED_SPREAD_MM


def gap_percent(p1, plateau) -> float | None:
    """``(p1 - plateau) / plateau`` in %; ``None`` when either is missing."""
    if not (_finite(p1) and _finite(plateau)) or plateau <= 0:
        return None
    return 100.0 * (p1 - plateau) / plateau


def plateau_of(record: dict | None) -> dict:
    """The ``plateau`` block of one convergence record (``{}`` when absent)."""
    return dict((record or {}).get("plateau") or {})


def plateau_curve(record: dict) -> dict | None:
    """The recipe whose curve the plateau comes from (its ``recipe``), else the first with a curve."""
    recipes = [r for r in record.get("recipes") or [] if r.get("curve")]
    named = plateau_of(record).get("recipe")
    return next((r for r in recipes if r.get("name") == named), recipes[0] if recipes else None)
