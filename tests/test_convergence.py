"""The plateau of a learning curve: smoothing, the reached point and the convergence flag."""

import pytest

from lifting import convergence


def curve(p1_values, p2_offset=-20.0):
    return [{"epoch": i + 1, "samples_seen": 1000 * (i + 1), "core_seconds": 10.0 * (i + 1), "p1": p1,
             "p2": p1 + p2_offset} for i, p1 in enumerate(p1_values)]


def test_smoothing_is_a_centred_three_point_mean():
    assert convergence.smoothed([3.0, 6.0, 9.0, 3.0]).tolist() == pytest.approx([4.5, 6.0, 6.0, 6.0])


def test_plateau_of_a_flat_tail_is_converged_and_reached_where_it_gets_within_two_percent():
    values = [200.0, 120.0, 90.0, 81.0, 80.0, 80.0, 80.0, 80.0, 80.0, 80.0]
    found = convergence.plateau([{"name": "paper", "finished": True, "curve": curve(values)}])
    assert found["p1"] == pytest.approx(80.0) and found["p2"] == pytest.approx(60.0)
    # Smoothed: ..., (90+81+80)/3 = 83.67 (> 81.6), (81+80+80)/3 = 80.33 (<= 81.6) at index 4.
    assert found["samples_seen"] == 5000 and found["core_seconds"] == 50.0
    assert found["converged"] is True and found["recipe"] == "paper"
    # The same curve from a run cut short, or too short a curve, is never called converged.
    assert convergence.plateau([{"name": "paper", "finished": False, "curve": curve(values)}])["converged"] is False
    assert convergence.plateau([{"name": "paper", "finished": True, "curve": curve(values[-5:])}])["converged"] is False


def test_a_curve_still_falling_at_its_end_is_not_converged_and_the_best_recipe_wins():
    falling = {"name": "paper", "curve": curve([150.0, 130.0, 115.0, 105.0, 100.0, 96.0, 92.0, 88.0, 84.0, 80.0])}
    better = {"name": "budget", "curve": curve([120.0, 90.0, 75.0, 74.0, 74.0])}
    assert convergence.last_fifth_drop([p["p1"] for p in falling["curve"]]) == pytest.approx((88 + 84 + 80) / 3 - 82.0)
    assert convergence.plateau([falling])["converged"] is False
    found = convergence.plateau([falling, better])
    assert found["recipe"] == "budget" and found["p1"] == pytest.approx(74.0)
    assert convergence.plateau([]) is None
