import pytest

from astraea.core import JobStatus
from tests.fakes import FakeExecutor, make_job
from tests.policies.helpers import SERVICE, run_until_tool_or_end, scheduler, step


def runtime(prefill: int, generated: int) -> float:
    return prefill * SERVICE.prefill_per_token + generated * SERVICE.decode_per_token


def test_priority_is_parent_priority_plus_parent_runtime_along_the_chain():
    sched, ex = scheduler("autellix-atlas"), FakeExecutor()
    sched.add_job(make_job("a", [(10, 3), (6, 4), (5, 2)]), 0.0)
    job = sched.jobs["a"]
    assert sched.policy.attained(job) == 0.0  # a root call
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    # 12 tokens computed (a 10-token prefill, 2 decode steps), 3 generated: each generated
    # token is charged a decode step, the rest of the computed tokens prefill.
    first = runtime(12 - 3, 3)
    assert job.policy_state["atlas_priority"] == pytest.approx(first)
    sched.on_tool_result("a", now + 1.0)
    _, now = run_until_tool_or_end(sched, ex, now + 1.0)
    # Call 2 computes the last output token and its 6 inputs, then 3 decode steps: 10 tokens.
    second = runtime(10 - 4, 4)
    assert job.policy_state["atlas_priority"] == pytest.approx(first + second)


def test_priority_is_fixed_while_the_call_runs_unlike_plas():
    for name, grows in [("autellix-atlas", False), ("autellix-plas", True)]:
        sched, ex = scheduler(name), FakeExecutor()
        sched.add_job(make_job("a", [(10, 30)]), 0.0)
        job, now = sched.jobs["a"], 0.0
        before = sched.policy.attained(job)
        for _ in range(5):
            _, _, now = step(sched, ex, now)
        assert job.status == JobStatus.RUNNING
        assert (sched.policy.attained(job) > before) is grows, name
