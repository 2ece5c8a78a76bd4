"""Where a method's learning curve levels off: the plateau of a convergence record.

A convergence record (``benchmarks/results/convergence/<run>-<input2d>.json``) holds one or more
recipes' curves of test-set P1/P2 (mm, action-mean) against training samples seen and
core-seconds, measured by ``benchmarks/convergence.py`` on the embedded data. These curves are
measurements of the method, not model selection: no pipeline run picks anything with them.

Plateau rule (:func:`plateau`): each curve is smoothed with a centred 3-point mean (single-seed
curves jitter by several mm per epoch); a recipe's plateau is the minimum of its smoothed curve,
and the record's plateau is the lowest over its recipes. The compute to reach it is the first
point whose smoothed P1 is within :data:`REACHED_WITHIN` of the plateau. The plateau counts as
converged when that recipe ran to its end with at least :data:`MIN_POINTS` points and its
smoothed curve fell by less than :data:`FLAT_DROP` of the plateau over its last fifth; otherwise
("not converged") it is only the best level measured so far, an upper bound on the method's
error.
"""

from __future__ import annotations

import numpy as np

#: A point within this share of the plateau P1 has "reached" it.
REACHED_WITHIN = 0.02
#: A curve whose smoothed P1 fell by less than this share over its last fifth is flat.
FLAT_DROP = 0.01
#: Fewer points than this (or a run cut short) never count as converged.
MIN_POINTS = 8

RULE = (f"centred 3-point mean of each curve; plateau = its minimum over all recipes; reached at the first point "
        f"within {REACHED_WITHIN:.0%} of it; converged when the curve fell by less than {FLAT_DROP:.0%} over "
        "its last fifth")


def smoothed(values) -> np.ndarray:
    """Centred 3-point running mean (the ends average the two points they have)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 3:
        return values.copy()
    padded = np.concatenate([[np.nan], values, [np.nan]])
    windows = np.stack([padded[:-2], padded[1:-1], padded[2:]])
    return np.nanmean(windows, axis=0)


def last_fifth_drop(values) -> float:
    """How much the smoothed curve fell (mm, positive = still falling) over its last fifth."""
    curve = smoothed(values)
    if len(curve) < 2:
        return float("nan")
    start = min(len(curve) - 2, int(np.floor(len(curve) * 4 / 5)))
    return float(curve[start] - curve[-1])


def plateau(recipes: list[dict]) -> dict | None:
    """The plateau of a record's ``recipes`` (each with a ``curve`` of points), or None if empty.

    Returns ``{"p1", "p2", "recipe", "samples_seen", "core_seconds", "converged", "rule"}``; p2 is
    the smoothed P2 at the point where the smoothed P1 is lowest.
    """
    best = None
    for recipe in recipes:
        curve = recipe.get("curve") or []
        if not curve:
            continue
        p1 = smoothed([point["p1"] for point in curve])
        lowest = int(np.argmin(p1))
        if best is None or p1[lowest] < best[0]:
            best = (float(p1[lowest]), recipe, p1, lowest)
    if best is None:
        return None
    value, recipe, p1, lowest = best
    curve = recipe["curve"]
    reached = int(np.flatnonzero(p1 <= value * (1 + REACHED_WITHIN))[0])
    p2 = smoothed([point["p2"] for point in curve])
    drop = last_fifth_drop([point["p1"] for point in curve])
    return {"p1": round(value, 2), "p2": round(float(p2[lowest]), 2), "recipe": recipe["name"],
            "samples_seen": int(curve[reached]["samples_seen"]), "core_seconds": float(curve[reached]["core_seconds"]),
            "converged": bool(recipe.get("finished", False) and len(curve) >= MIN_POINTS and np.isfinite(drop)
                              and drop < FLAT_DROP * value), "rule": RULE}
