"""Pure functions that read a load sweep: light-load value, knees, values between grid points.

Why over a sweep: average JCT is mostly tool time at light load and collapses once returning
calls start recomputing their contexts, so one load point says little. These functions turn
a (rate, avg JCT) curve into the numbers the targets use:

* light-load value: the average JCT at the lowest rate of the sweep;
* threshold rate for a factor f: the rate where avg JCT first reaches f x the light-load
  value, linearly interpolated between the two grid points around the crossing (of the
  ratio to the light-load value). The *grid* value is the last grid rate before it.
  A curve that never reaches f is censored: both values are the highest rate;
* sustainable rate = threshold rate at 1.25x; reference rate = vllm-fcfs's at 1.5x.

The first crossing counts ("stays within"): a noisy dip back below f later on is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise

SUSTAINABLE_FACTOR = 1.25
REFERENCE_FACTOR = 1.5
PAST_KNEE_FACTOR = 1.1


@dataclass(frozen=True, slots=True)
class Crossing:
    """Where a curve first reaches ``factor`` x its light-load value."""

    rate: float  # interpolated between the grid points around the crossing
    grid_rate: float  # the highest grid rate before the crossing
    crossed: bool  # False: never reached within the grid (censored at the highest rate)
    factor: float
    light_load: float

    def to_dict(self) -> dict[str, float | bool]:
        return asdict(self)


def _sorted_points(rates: Sequence[float], values: Sequence[float]) -> list[tuple[float, float]]:
    if len(rates) != len(values):
        raise ValueError(f"{len(rates)} rates but {len(values)} values")
    if not rates:
        raise ValueError("empty sweep")
    points = sorted(zip(rates, values, strict=True))
    for (a, _), (b, _) in pairwise(points):
        if a == b:
            raise ValueError(f"rate {a} appears twice")
    return points


def light_load(rates: Sequence[float], values: Sequence[float]) -> float:
    """The value at the lowest rate of the sweep."""
    return _sorted_points(rates, values)[0][1]


def interpolate(xs: Sequence[float], ys: Sequence[float], x: float) -> float | None:
    """Linear interpolation of y at x; None outside [min(xs), max(xs)]."""
    points = _sorted_points(xs, ys)
    if x < points[0][0] or x > points[-1][0]:
        return None
    for (x0, y0), (x1, y1) in pairwise(points):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[0][1]  # a single point, x equal to it


def threshold_rate(rates: Sequence[float], values: Sequence[float], factor: float) -> Crossing:
    """The rate where ``values`` first reach ``factor`` x the light-load value."""
    points = _sorted_points(rates, values)
    base = points[0][1]
    if base <= 0:
        raise ValueError(f"light-load value must be > 0, got {base}")
    ratios = [(r, v / base) for r, v in points]
    if ratios[0][1] > factor:  # only possible with factor < 1
        return Crossing(ratios[0][0], ratios[0][0], True, factor, base)
    for (r0, q0), (r1, q1) in pairwise(ratios):
        if q1 > factor:
            rate = r0 + (factor - q0) / (q1 - q0) * (r1 - r0)
            return Crossing(rate, r0, True, factor, base)
    top = ratios[-1][0]
    return Crossing(top, top, False, factor, base)


def sustainable_rate(
    rates: Sequence[float], avg_jct: Sequence[float], factor: float = SUSTAINABLE_FACTOR
) -> Crossing:
    """Highest rate at which avg JCT stays within ``factor`` x its light-load value."""
    return threshold_rate(rates, avg_jct, factor)


def reference_rate(
    rates: Sequence[float], avg_jct: Sequence[float], factor: float = REFERENCE_FACTOR
) -> float | None:
    """Rate where avg JCT reaches ``factor`` x light load (vllm-fcfs's); None if never."""
    crossing = threshold_rate(rates, avg_jct, factor)
    return crossing.rate if crossing.crossed else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def ratio_table(
    rates: Sequence[float],
    series: dict[str, Sequence[float | None]],
    baseline: str,
) -> dict[str, list[float | None]]:
    """Per series, value / baseline's value at each rate (all series on the same grid)."""
    if baseline not in series:
        raise ValueError(f"baseline {baseline!r} not among {sorted(series)}")
    base = series[baseline]
    for name, values in series.items():
        if len(values) != len(rates):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(rates)} rates")
    return {
        name: [ratio(v, b) for v, b in zip(values, base, strict=True)]
        for name, values in series.items()
    }


def gain(jct: float | None, baseline_jct: float | None) -> float | None:
    """Relative JCT reduction against a baseline: 1 - jct / baseline_jct."""
    r = ratio(jct, baseline_jct)
    return None if r is None else 1.0 - r


def gain_retained(online_gain: float | None, oracle_gain: float | None) -> float | None:
    """Share of the oracle-predictor gain an online predictor keeps; None if no oracle gain."""
    if online_gain is None or oracle_gain is None or oracle_gain <= 0:
        return None
    return online_gain / oracle_gain
