"""The agent-kind generators (coding, bfcl, react, toolbench, lats, chat): shape statistics
against their documented sources, determinism, JobSpec validity, tools, and the split."""

from __future__ import annotations

import itertools
import re
import statistics
from pathlib import Path

import pytest

from astraea.core.job import JobSpec
from astraea.workloads import (
    EVALUATION_MIXES,
    TUNING_MIXES,
    WORKLOADS,
    generate_workload,
    shape,
)
from astraea.workloads.coding import MAX_CONTEXT as CODING_MAX_CONTEXT
from astraea.workloads.coding import TURNS_MAX
from astraea.workloads.lats import CALLS_MAX as LATS_CALLS_MAX
from astraea.workloads.react import MAX_STEPS
from astraea.workloads.shapes import table

NEW = ["coding", "bfcl", "react", "toolbench", "lats", "chat"]
TOOLS = {
    "coding": {"shell", "run_tests"},
    "bfcl": {"exec", "api_sim"},
    "react": {"search", "lookup"},
    "toolbench": {"rapidapi", "backtrack"},
    "lats": {"tree_env", "tree_value"},
    "chat": {"user"},
}
CATEGORIES = {
    "coding": {"coding"},
    "bfcl": {"bfcl_single", "bfcl_multi"},
    "react": {"react"},
    "toolbench": {"toolbench"},
    "lats": {"lats"},
    "chat": {"chat"},
}
# (low, high) of the mean over 1,000 jobs (seed 0): calls/job, final context tokens/job,
# tool time per call (s). Each range brackets the value the module docstring derives from
# its source (in brackets) with room for sampling noise.
BOUNDS = {
    "coding": ((57, 66), (23_000, 29_000), (0.7, 1.2)),  # [~62 turns, ~27k, 0.925 s]
    "bfcl": ((3.4, 4.1), (800, 1_100), (0.05, 0.2)),  # [3.75 calls]
    "react": ((3.95, 4.35), (2_050, 2_400), (0.9, 1.4)),  # [4.15 calls]
    "toolbench": ((4.5, 4.95), (3_200, 3_900), (0.8, 1.3)),  # [4.71 calls]
    "lats": ((140, 165), (15_000, 20_000), (0.1, 0.2)),  # [~153 calls after the clip]
    "chat": ((3.3, 3.75), (1_600, 2_050), (25, 32)),  # [3.51 turns, 28.6 s]
}


@pytest.fixture(scope="module")
def jobs() -> dict[str, list[JobSpec]]:
    return {name: generate_workload(name, 1000, 1.0, seed=0) for name in WORKLOADS}


@pytest.mark.parametrize("name", NEW)
def test_shape_within_documented_bounds(name: str, jobs: dict[str, list[JobSpec]]) -> None:
    s = shape(jobs[name])
    (c_lo, c_hi), (t_lo, t_hi), (tool_lo, tool_hi) = BOUNDS[name]
    assert c_lo <= s.calls_per_job <= c_hi
    assert t_lo <= s.tokens_per_job <= t_hi
    assert tool_lo <= s.tool_time <= tool_hi
    assert s.tokens_per_job == pytest.approx(s.input_tokens_per_job + s.output_tokens_per_job)


@pytest.mark.parametrize("name", NEW)
def test_jobspecs_valid_and_tools_named(name: str, jobs: dict[str, list[JobSpec]]) -> None:
    for job in jobs[name]:
        assert job.category in CATEGORIES[name]
        assert job.segments[-1].tool is None
        assert all(s.tool is not None for s in job.segments[:-1])
        assert {s.tool.name for s in job.segments if s.tool} <= TOOLS[name]
        assert all(s.input_tokens >= 1 and s.output_tokens >= 1 for s in job.segments)


@pytest.mark.parametrize("name", NEW)
def test_deterministic_per_seed_and_rate_only_moves_arrivals(name: str) -> None:
    a = generate_workload(name, 30, 2.0, seed=5)
    assert a == generate_workload(name, 30, 2.0, seed=5)
    assert a != generate_workload(name, 30, 2.0, seed=6)
    assert WORKLOADS[name](30, 2.0, 5) == a
    fast = generate_workload(name, 30, 8.0, seed=5)
    assert [j.segments for j in fast] == [j.segments for j in a]
    assert [j.arrival / 4 for j in a] == pytest.approx([j.arrival for j in fast])
    assert [j.job_id for j in a] == [f"{name}-{i:06d}" for i in range(30)]
    assert all(x.arrival < y.arrival for x, y in itertools.pairwise(a))


def test_structure_of_each_kind(jobs: dict[str, list[JobSpec]]) -> None:
    coding = jobs["coding"]
    assert max(len(j.segments) for j in coding) <= TURNS_MAX
    assert max(j.total_tokens for j in coding) <= CODING_MAX_CONTEXT
    tests = [
        s.tool.latency for j in coding for s in j.segments if s.tool and s.tool.name == "run_tests"
    ]
    shell = [
        s.tool.latency for j in coding for s in j.segments if s.tool and s.tool.name == "shell"
    ]
    assert 0.07 < len(tests) / (len(tests) + len(shell)) < 0.13  # 10% test runs
    assert statistics.median(tests) > 5 * statistics.median(shell)  # the heavy tail is tests

    react = jobs["react"]
    assert all(2 <= len(j.segments) <= MAX_STEPS for j in react)

    bfcl = jobs["bfcl"]
    single = [j for j in bfcl if j.category == "bfcl_single"]
    assert 0.17 < 1 - len(single) / len(bfcl) < 0.23  # BFCL V3's multi-turn share
    assert all(len(j.segments) == 2 for j in single)

    lats = jobs["lats"]
    assert max(len(j.segments) for j in lats) <= LATS_CALLS_MAX
    api = [sum(s.tool.name != "backtrack" for s in j.segments if s.tool) for j in jobs["toolbench"]]
    backtracks = [
        sum(s.tool.name == "backtrack" for s in j.segments if s.tool) for j in jobs["toolbench"]
    ]
    assert 3.55 < statistics.fmean(a + b for a, b in zip(api, backtracks, strict=True)) < 3.87

    chat = jobs["chat"]
    assert sum(len(j.segments) == 1 for j in chat) > 0.2 * len(chat)  # many one-shot chats


def test_split_covers_every_workload_once() -> None:
    assert set(TUNING_MIXES).isdisjoint(EVALUATION_MIXES)
    assert set(TUNING_MIXES) | set(EVALUATION_MIXES) == set(WORKLOADS)
    assert {"infercept", "autellix", "continuum"} <= set(TUNING_MIXES)
    assert len(EVALUATION_MIXES) >= 4


def test_docs_table_is_the_computed_one(jobs: dict[str, list[JobSpec]]) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "workloads.md").read_text()
    block = re.search(r"<!-- shapes:begin -->\n(.*?)\n<!-- shapes:end -->", doc, re.S)
    assert block, "docs/workloads.md lost its shapes table markers"
    assert block.group(1).strip() == table(1000, 0, jobs).strip()
