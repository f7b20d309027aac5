from astraea.core import Job
from tests.fakes import FakeExecutor, make_job
from tests.policies.helpers import order, run_until_tool_or_end, scheduler


def test_follow_up_call_goes_before_earlier_first_call():
    sched, ex = scheduler("vllm-priority", max_num_seqs=1), FakeExecutor()
    sched.add_job(make_job("old", [(4, 2), (4, 2)]), 0.0)
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    sched.add_job(make_job("young", [(4, 2)], arrival=now), now)
    sched.on_tool_result("old", now + 0.5)  # its call arrives after "young"'s
    assert order(sched, now + 0.5) == ["old", "young"]
    plan = sched.schedule(now + 0.5)
    assert [s.job_id for s in plan.seqs] == ["old"]


def test_fcfs_by_call_arrival_within_a_priority_class():
    sched = scheduler("vllm-priority", max_num_seqs=1)
    for i, t in enumerate([0.3, 0.1, 0.2]):
        sched.add_job(make_job(f"j{i}", [(4, 2)], arrival=t), t)
    assert order(sched, 1.0) == ["j1", "j2", "j0"]


def test_preemption_victim_is_the_largest_priority_then_latest_arrival():
    policy = scheduler("vllm-priority").policy
    first_old = Job(spec=make_job("a", [(4, 2)]))
    first_old.ready_since = 1.0
    first_new = Job(spec=make_job("b", [(4, 2)]))
    first_new.ready_since = 2.0
    follow_up = Job(spec=make_job("c", [(4, 2), (4, 2)]))
    follow_up.segment_index, follow_up.ready_since = 1, 3.0
    assert policy.preemption_victim([first_new, follow_up, first_old], 5.0) is first_new
    assert policy.preemption_victim([follow_up], 5.0) is follow_up
