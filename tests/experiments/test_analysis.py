"""Sweep analysis on hand-made curves: interpolation, knees, reference rate, edge cases."""

import math

import pytest

from astraea.experiments.analysis import (
    gain,
    gain_retained,
    interpolate,
    light_load,
    ratio,
    ratio_table,
    reference_rate,
    sustainable_rate,
    threshold_rate,
)

RATES = [0.5, 1.0, 2.0, 3.0, 4.0]
JCT = [100.0, 104.0, 120.0, 150.0, 300.0]  # ratios 1, 1.04, 1.2, 1.5, 3


def test_light_load_is_the_value_at_the_lowest_rate_whatever_the_order():
    assert light_load(RATES, JCT) == 100.0
    assert light_load(list(reversed(RATES)), list(reversed(JCT))) == 100.0


def test_interpolate_between_and_at_grid_points():
    assert interpolate(RATES, JCT, 2.5) == pytest.approx(135.0)
    assert interpolate(RATES, JCT, 3.0) == 150.0
    assert interpolate(RATES, JCT, 0.5) == 100.0
    assert interpolate(RATES, JCT, 4.0) == 300.0
    assert interpolate(RATES, JCT, 0.4) is None
    assert interpolate(RATES, JCT, 4.01) is None
    assert interpolate([1.0], [7.0], 1.0) == 7.0


def test_sustainable_rate_interpolates_the_ratio_between_the_grid_points_around_the_crossing():
    c = sustainable_rate(RATES, JCT)
    # 1.25 lies between ratio 1.2 at 2.0 and 1.5 at 3.0: 2 + (0.05 / 0.3) * 1
    assert c.rate == pytest.approx(2.0 + 0.05 / 0.3)
    assert c.grid_rate == 2.0
    assert c.crossed and c.light_load == 100.0 and c.factor == 1.25


def test_crossing_exactly_at_the_factor_is_still_sustainable():
    c = threshold_rate([1, 2, 3], [10.0, 12.5, 20.0], 1.25)
    assert c.grid_rate == 2 and c.rate == pytest.approx(2.0)


def test_never_crossing_gives_the_highest_rate_censored():
    c = sustainable_rate([1, 2, 3], [10.0, 11.0, 12.0])
    assert (c.rate, c.grid_rate, c.crossed) == (3, 3, False)


def test_crossing_before_the_second_point_interpolates_from_the_first():
    c = sustainable_rate([1, 2, 3], [10.0, 20.0, 40.0])
    assert c.grid_rate == 1
    assert c.rate == pytest.approx(1.25)  # ratio 1 -> 2 over [1, 2]; 1.25 a quarter of the way


def test_first_crossing_counts_even_if_the_curve_dips_back():
    c = sustainable_rate([1, 2, 3, 4], [10.0, 14.0, 11.0, 30.0])
    assert c.grid_rate == 1 and c.rate == pytest.approx(1 + 0.25 / 0.4)


def test_reference_rate_at_one_and_a_half_times_light_load():
    assert reference_rate(RATES, JCT) == pytest.approx(3.0)
    assert reference_rate(RATES, [100, 101, 102, 103, 140]) is None


def test_bad_sweeps_are_rejected():
    with pytest.raises(ValueError, match="empty"):
        light_load([], [])
    with pytest.raises(ValueError, match="twice"):
        sustainable_rate([1, 1, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="values"):
        interpolate([1, 2], [1.0], 1.5)
    with pytest.raises(ValueError, match="> 0"):
        sustainable_rate([1, 2], [0.0, 1.0])


def test_ratios_gains_and_tables():
    assert ratio(1.0, 2.0) == 0.5
    assert ratio(None, 2.0) is None and ratio(1.0, 0.0) is None
    assert gain(60.0, 100.0) == pytest.approx(0.4)
    assert gain_retained(0.32, 0.4) == pytest.approx(0.8)
    assert gain_retained(0.1, 0.0) is None and gain_retained(None, 0.4) is None
    table = ratio_table([1, 2], {"a": [2.0, 6.0], "base": [4.0, 3.0]}, "base")
    assert table == {"a": [0.5, 2.0], "base": [1.0, 1.0]}
    with pytest.raises(ValueError):
        ratio_table([1, 2], {"a": [1.0, 2.0]}, "base")
    assert math.isclose(table["a"][0], 0.5)
