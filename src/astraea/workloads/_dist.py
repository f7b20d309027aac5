"""Small, dependency-free random draws shared by the workload generators.

Everything takes an explicit ``random.Random`` so a generator is a pure function of its seed:
no global state, no numpy.
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist

_STD_NORMAL = NormalDist()


def as_rng(rng: random.Random | int) -> random.Random:
    """Accept a ready ``random.Random`` or an integer seed."""
    if isinstance(rng, random.Random):
        return rng
    if isinstance(rng, int) and not isinstance(rng, bool):
        return random.Random(rng)
    raise TypeError(f"rng must be a random.Random or an int seed, got {type(rng).__name__}")


def split_streams(rng: random.Random) -> tuple[random.Random, random.Random]:
    """Two independent streams (arrivals, job contents).

    Keeping them apart means the jobs of a seed are the same at every arrival rate, so a
    load sweep changes only the arrival times.
    """
    return random.Random(rng.getrandbits(64)), random.Random(rng.getrandbits(64))


def lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal whose mean and standard deviation are ``mean`` and ``sd``."""
    if not (mean > 0 and sd >= 0):
        raise ValueError(f"lognormal needs mean > 0 and sd >= 0, got {mean}, {sd}")
    sigma2 = math.log1p((sd / mean) ** 2)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


def lognormal(rng: random.Random, mean: float, sd: float) -> float:
    """A lognormal draw matched to ``mean`` and ``sd`` (sd == 0 gives ``mean``)."""
    if sd == 0:
        return mean
    mu, sigma = lognormal_params(mean, sd)
    return rng.lognormvariate(mu, sigma)


def lognormal_tokens(rng: random.Random, mean: float, sd: float) -> int:
    """A token count: a matched lognormal, rounded, at least 1."""
    return max(1, round(lognormal(rng, mean, sd)))


def rounded_normal(rng: random.Random, mean: float, sd: float, low: int = 1) -> int:
    """round(Normal(mean, sd)), clipped from below at ``low``."""
    return max(low, round(rng.gauss(mean, sd)))


def truncated_normal(rng: random.Random, mean: float, sd: float, low: float, high: float) -> float:
    """Normal(mean, sd) conditioned on ``low <= x <= high`` (inverse-CDF, one uniform draw)."""
    if low > high:
        raise ValueError(f"empty truncation interval [{low}, {high}]")
    if sd == 0:
        return min(max(mean, low), high)
    p_lo = _STD_NORMAL.cdf((low - mean) / sd)
    p_hi = _STD_NORMAL.cdf((high - mean) / sd)
    if p_hi - p_lo < 1e-12:  # both bounds deep in one tail: the nearer bound is the answer
        return low if mean < low else high
    p = p_lo + rng.random() * (p_hi - p_lo)
    p = min(max(p, 1e-15), 1 - 1e-15)
    return min(max(mean + sd * _STD_NORMAL.inv_cdf(p), low), high)


def truncated_normal_mean(mean: float, sd: float, low: float, high: float) -> float:
    """Expected value of ``truncated_normal`` (used by tests and docs)."""
    a, b = (low - mean) / sd, (high - mean) / sd
    mass = _STD_NORMAL.cdf(b) - _STD_NORMAL.cdf(a)
    return mean + sd * (_STD_NORMAL.pdf(a) - _STD_NORMAL.pdf(b)) / mass


def jitter_weights(rng: random.Random, n: int, jitter: float) -> list[float]:
    """``n`` weights uniform in [1 - jitter, 1 + jitter]."""
    return [rng.uniform(1 - jitter, 1 + jitter) for _ in range(n)]


def split_tokens(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into ``len(weights)`` integers >= 1 that sum to ``total``.

    Each part gets 1 token, then the rest is shared in proportion to the weights by the
    largest-remainder rule, so the sum is exact.
    """
    n = len(weights)
    if n == 0:
        raise ValueError("nothing to split into")
    if total < n:
        raise ValueError(f"cannot split {total} tokens into {n} parts of at least 1")
    spare = total - n
    weight_sum = sum(weights)
    shares = [spare * w / weight_sum for w in weights]
    parts = [1 + math.floor(s) for s in shares]
    left = total - sum(parts)
    by_remainder = sorted(range(n), key=lambda i: shares[i] - math.floor(shares[i]), reverse=True)
    for i in by_remainder[:left]:
        parts[i] += 1
    return parts
