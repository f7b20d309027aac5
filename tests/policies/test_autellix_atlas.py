"""autellix-atlas as kungfu-team/autellix's ATLASScheduler: the critical-path max rule, which
on chains of calls equals PLAS's sum."""

from tests.fakes import FakeExecutor, make_job
from tests.policies.helpers import bound, run_until_tool_or_end, scheduler


def test_the_program_scalar_is_the_snapshot_plus_the_call_max_rule():
    policy = bound("autellix-atlas")
    sched, ex = scheduler("autellix-atlas"), FakeExecutor()
    sched.add_job(make_job("a", [(10, 3), (6, 4), (5, 2)]), 0.0)
    job = sched.jobs["a"]
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    assert job.policy_state["las_service"] == 3
    sched.on_tool_result("a", now + 1.0)
    assert job.policy_state["atlas_start"] == 3  # the snapshot at the call's arrival
    _, now = run_until_tool_or_end(sched, ex, now + 1.0)
    assert job.policy_state["las_service"] == 7
    # A scalar already past snapshot + service (a parallel thread's) is kept: the max.
    job.policy_state.update({"las_service": 50.0, "atlas_start": 3.0})
    assert policy.fold_service(job) == 50.0


def test_atlas_equals_plas_on_chains():
    for name in ("autellix-atlas", "autellix-plas"):
        sched, ex = scheduler(name), FakeExecutor()
        sched.add_job(make_job("a", [(10, 3), (6, 4), (5, 2)]), 0.0)
        _, now = run_until_tool_or_end(sched, ex, 0.0)
        sched.on_tool_result("a", now + 1.0)
        _, now = run_until_tool_or_end(sched, ex, now + 1.0)
        assert sched.jobs["a"].policy_state["las_service"] == 7, name
