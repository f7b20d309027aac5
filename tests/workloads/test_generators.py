"""Synthetic generators: statistics against their documented sources, determinism, arrivals."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections import defaultdict
from statistics import NormalDist

import pytest

from astraea.core.job import JobSpec
from astraea.workloads import (
    AUTELLIX_CLASSES,
    CONTEXT_CAP,
    CONTINUUM_CLASSES,
    INFERCEPT_TYPES,
    WORKLOADS,
    generate_autellix,
    generate_continuum,
    generate_infercept,
    generate_workload,
    poisson_arrivals,
    workload_names,
)
from astraea.workloads._dist import (
    lognormal_params,
    split_tokens,
    truncated_normal,
    truncated_normal_mean,
)
from astraea.workloads.continuum import MAX_CONTEXT

N = 2000


def _by_category(jobs: list[JobSpec]) -> dict[str, list[JobSpec]]:
    groups: dict[str, list[JobSpec]] = defaultdict(list)
    for job in jobs:
        groups[job.category].append(job)
    return groups


def _tool_times(jobs: list[JobSpec]) -> list[float]:
    return [s.tool.latency for j in jobs for s in j.segments if s.tool is not None]


def _close(actual: float, expected: float, rel: float) -> bool:
    return abs(actual - expected) <= rel * abs(expected)


@pytest.fixture(scope="module")
def infercept_jobs() -> dict[str, list[JobSpec]]:
    return _by_category(generate_infercept(N, 1.0, 7))


@pytest.fixture(scope="module")
def autellix_jobs() -> dict[str, list[JobSpec]]:
    return _by_category(generate_autellix(N, 1.0, 7))


@pytest.fixture(scope="module")
def continuum_jobs() -> dict[str, list[JobSpec]]:
    return _by_category(generate_continuum(N, 1.0, 7))


# --- arrivals ---------------------------------------------------------------------------


def test_poisson_rate_within_5_percent() -> None:
    rate = 3.0
    times = poisson_arrivals(20_000, rate, random.Random(1))
    assert times[0] > 0
    assert all(a < b for a, b in itertools.pairwise(times))
    assert _close(len(times) / times[-1], rate, 0.05)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert _close(statistics.pstdev(gaps), 1 / rate, 0.05)  # exponential: sd == mean


@pytest.mark.parametrize("rate", [0, -1.0, math.nan, math.inf, "2"])
def test_poisson_rejects_bad_rate(rate: object) -> None:
    with pytest.raises(ValueError, match="rate"):
        poisson_arrivals(3, rate, random.Random(0))  # type: ignore[arg-type]


def test_poisson_rejects_bad_count_and_allows_zero() -> None:
    assert poisson_arrivals(0, 1.0, random.Random(0)) == []
    with pytest.raises(ValueError, match="num_jobs"):
        poisson_arrivals(-1, 1.0, random.Random(0))


# --- determinism and shape, every workload ----------------------------------------------


@pytest.mark.parametrize("name", ["infercept", "autellix", "continuum"])
def test_deterministic_per_seed(name: str) -> None:
    a = generate_workload(name, 100, 2.0, seed=5)
    assert a == generate_workload(name, 100, 2.0, seed=5)
    assert a != generate_workload(name, 100, 2.0, seed=6)
    assert WORKLOADS[name](100, 2.0, random.Random(5)) == a
    assert WORKLOADS[name](100, 2.0, 5) == a


@pytest.mark.parametrize("name", ["infercept", "autellix", "continuum"])
def test_jobs_do_not_depend_on_rate(name: str) -> None:
    slow = generate_workload(name, 50, 1.0, seed=2)
    fast = generate_workload(name, 50, 4.0, seed=2)
    assert [j.segments for j in slow] == [j.segments for j in fast]
    assert [j.arrival / 4 for j in slow] == pytest.approx([j.arrival for j in fast])


@pytest.mark.parametrize("name", ["infercept", "autellix", "continuum"])
def test_ids_arrivals_and_tool_names(name: str) -> None:
    jobs = generate_workload(name, 200, 1.0, seed=1)
    assert [j.job_id for j in jobs] == [f"{name}-{i:06d}" for i in range(200)]
    assert all(a.arrival < b.arrival for a, b in itertools.pairwise(jobs))
    for job in jobs:
        assert {s.tool.name for s in job.segments if s.tool} <= {job.category}


def test_registry() -> None:
    assert workload_names() == [
        "autellix", "bfcl", "chat", "coding", "continuum", "infercept", "lats", "react",
        "toolbench",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="autellix, bfcl, chat, coding, continuum"):
        generate_workload("nope", 1, 1.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: generate_infercept(1, 1.0, 0, categories=["poetry"]),
        lambda: generate_autellix(1, 1.0, 0, categories=[]),
        lambda: generate_continuum(1, 1.0, 0, categories=["sharegpt"]),
    ],
)
def test_unknown_categories(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="valid"):
        call()


def test_rng_type_is_checked() -> None:
    with pytest.raises(TypeError):
        generate_infercept(1, 1.0, "seed")  # type: ignore[arg-type]


# --- InferCept ----------------------------------------------------------------------------


def test_infercept_statistics(infercept_jobs: dict[str, list[JobSpec]]) -> None:
    assert set(infercept_jobs) == set(INFERCEPT_TYPES)
    for name, kind in INFERCEPT_TYPES.items():
        jobs = infercept_jobs[name]
        assert 250 < len(jobs) < 420  # uniform mix
        calls = statistics.mean(len(j.segments) - 1 for j in jobs)
        assert _close(calls, kind.calls_mean, 0.10), (name, calls)
        tools = _tool_times(jobs)
        assert _close(statistics.mean(tools), kind.tool_mean, 0.10), name
        assert _close(statistics.pstdev(tools), kind.tool_sd, 0.20), name
        expected = truncated_normal_mean(
            kind.context_mean, kind.context_sd, 2 * (kind.calls_mean + 1), CONTEXT_CAP
        )
        context = statistics.mean(j.total_tokens for j in jobs)
        assert _close(context, expected, 0.10), (name, context, expected)
        first_share = statistics.mean(j.segments[0].input_tokens / j.total_tokens for j in jobs)
        assert 0.35 < first_share < 0.45, name


def test_infercept_respects_cap_and_segment_minimums(
    infercept_jobs: dict[str, list[JobSpec]],
) -> None:
    jobs = [j for group in infercept_jobs.values() for j in group]
    assert max(j.total_tokens for j in jobs) <= CONTEXT_CAP
    assert min(len(j.segments) for j in jobs) >= 2  # at least one tool call
    # ALFWorld's mean context (2185) exceeds the cap, so the cap holds them all below it.
    alfworld = [j.total_tokens for j in infercept_jobs["virtual_env"]]
    assert 1900 < statistics.mean(alfworld) <= CONTEXT_CAP


# --- Autellix -----------------------------------------------------------------------------


def test_autellix_statistics(autellix_jobs: dict[str, list[JobSpec]]) -> None:
    assert set(autellix_jobs) == {"sharegpt", "bfcl"}  # LATS is opt-in
    for name, jobs in autellix_jobs.items():
        cls = AUTELLIX_CLASSES[name]
        assert _close(statistics.mean(len(j.segments) for j in jobs), cls.calls_mean, 0.10)
        segments = [s for j in jobs for s in j.segments]
        assert _close(statistics.mean(s.input_tokens for s in segments), cls.prefill_mean, 0.10)
        assert _close(statistics.mean(s.output_tokens for s in segments), cls.decode_mean, 0.10)
        assert _close(statistics.mean(_tool_times(jobs)), cls.gap_mean, 0.10)


def test_autellix_lats_is_available() -> None:
    jobs = generate_autellix(30, 1.0, 3, categories=["lats"])
    assert {j.category for j in jobs} == {"lats"}
    assert statistics.mean(len(j.segments) for j in jobs) > 80


# --- Continuum ----------------------------------------------------------------------------


def test_continuum_statistics(continuum_jobs: dict[str, list[JobSpec]]) -> None:
    assert set(continuum_jobs) == set(CONTINUUM_CLASSES)
    for name, jobs in continuum_jobs.items():
        cls = CONTINUUM_CLASSES[name]
        assert _close(statistics.mean(len(j.segments) for j in jobs), cls.turns_mean, 0.10)
        assert _close(statistics.mean(_tool_times(jobs)), cls.tool_mean, 0.15), name
        context = statistics.mean(j.total_tokens for j in jobs)
        assert _close(context, cls.context_mean, 0.10), (name, context)
        assert max(j.total_tokens for j in jobs) <= MAX_CONTEXT
        outputs = statistics.mean(s.output_tokens for j in jobs for s in j.segments)
        assert _close(outputs, cls.output_mean, 0.15), name


def test_continuum_swebench_tool_tail(continuum_jobs: dict[str, list[JobSpec]]) -> None:
    """The heavy tail is there: median far below the mean, p99 matches the lognormal's."""
    cls = CONTINUUM_CLASSES["swebench"]
    tools = sorted(_tool_times(continuum_jobs["swebench"]))
    mu, sigma = lognormal_params(cls.tool_mean, cls.tool_sd)
    p99 = math.exp(mu + sigma * NormalDist().inv_cdf(0.99))
    assert _close(tools[int(0.99 * len(tools))], p99, 0.20)
    assert statistics.median(tools) < cls.tool_mean / 3


# --- helpers ------------------------------------------------------------------------------


def test_split_tokens_is_exact_and_positive() -> None:
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 40)
        total = rng.randint(n, 5000)
        parts = split_tokens(total, [rng.uniform(0.01, 3) for _ in range(n)])
        assert sum(parts) == total
        assert min(parts) >= 1
    with pytest.raises(ValueError):
        split_tokens(2, [1.0, 1.0, 1.0])


def test_truncated_normal_stays_in_bounds() -> None:
    rng = random.Random(0)
    draws = [truncated_normal(rng, 2185, 115, 60, 2048) for _ in range(2000)]
    assert min(draws) >= 60
    assert max(draws) <= 2048
    assert _close(statistics.mean(draws), truncated_normal_mean(2185, 115, 60, 2048), 0.01)
