"""autellix-plas as kungfu-team/autellix's PLASScheduler: arrival bins, quantum demotion,
program-level starvation promotion, proactive preemption at a full batch."""

import pytest

from astraea.core import Job, JobStatus
from tests.fakes import FakeExecutor, make_job
from tests.policies.helpers import bound, order, run_until_tool_or_end, scheduler, step
from tests.policies.helpers import kv_context as snapshot


def call(job_id: str, program_steps: float = 0.0, output: int = 0, ready: float = 0.0) -> Job:
    """A waiting call whose program's completed calls were served ``program_steps`` steps and
    which has generated ``output`` tokens itself."""
    job = Job(spec=make_job(job_id, [(4, 100), (4, 2)]))
    job.policy_state.update({"las_service": program_steps})
    job.num_output_tokens = output
    job.status, job.ready_since, job.waiting_since = JobStatus.WAITING, ready, ready
    return job


@pytest.mark.parametrize(
    ("service", "queue"),
    [(0.0, 0), (1.9, 0), (2.0, 1), (3.9, 1), (4.0, 2), (32.0, 5), (63.9, 5), (64.0, 6), (1e9, 6)],
)
def test_arrival_bins_are_the_public_thresholds(service, queue):
    assert bound("autellix-plas").arrival_queue(service) == queue


@pytest.mark.parametrize(
    ("program", "output", "queue"),
    # quanta 1, 2, 4, 8, ...: from queue 0, 1 step -> 1, 3 -> 2, 7 -> 3; from queue 2 (a
    # program served 5 steps), 4 steps -> 3, 12 -> 4; the last queue keeps everyone.
    [(0, 0, 0), (0, 1, 1), (0, 2, 1), (0, 3, 2), (0, 7, 3), (5, 3, 2), (5, 4, 3), (5, 12, 4),
     (100, 0, 6), (0, 10_000, 6)],
)  # fmt: skip
def test_a_call_demotes_one_queue_per_spent_quantum(program, output, queue):
    assert bound("autellix-plas").queue(call("a", program, output)) == queue


def test_order_is_queue_then_call_arrival():
    policy = bound("autellix-plas")
    old_heavy = call("old_heavy", program_steps=100, ready=0.0)  # queue 6
    old_heavy.policy_state["las_run"] = 1.0  # served 1 s, waited 2: not starving (< 8)
    young = call("young", ready=2.0)  # queue 0
    older = call("older", output=1, ready=1.0)  # one step spent: queue 1
    older.waiting_since = 1.5  # ran 0.5 s, waits since 1.5: not starving
    fresh = call("fresh", ready=1.5)  # queue 0
    ranked = sorted([old_heavy, young, older, fresh], key=lambda j: policy.priority(j, 2.0))
    assert [j.job_id for j in ranked] == ["fresh", "young", "older", "old_heavy"]


def test_starving_call_moves_to_queue_zero_and_its_quantum_restarts():
    policy = bound("autellix-plas", beta=8.0)
    job = call("a", program_steps=100, ready=0.0)  # queue 6
    job.policy_state.update({"las_run": 1.0, "las_wait": 2.0})  # program: 1 s served, 2 waited
    # (2 + W_c) / (1 + 0) >= 8 once the call has waited 6 s.
    assert policy.priority(job, 5.9)[0] == 6
    assert policy.priority(job, 6.0)[0] == 0
    # Admitted: it runs from queue 0 with queue 0's quantum, counted from the promotion.
    job.status, job.total_waiting_time = JobStatus.RUNNING, 6.0
    assert policy.queue(job) == 0
    job.num_output_tokens = 1
    assert policy.queue(job) == 1
    job.num_output_tokens = 3
    assert policy.queue(job) == 2


def test_a_finished_call_folds_its_steps_and_wait_into_the_program():
    sched, ex = scheduler("autellix-plas"), FakeExecutor(step_time=0.01)
    sched.add_job(make_job("a", [(4, 5), (4, 2), (4, 2)]), 0.0)
    job = sched.jobs["a"]
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    state = job.policy_state
    assert state["las_service"] == 5  # five sampled steps: queue 2 for the next call
    assert state["las_run"] == pytest.approx(now)  # it never waited
    sched.on_tool_result("a", now + 1.0)
    assert sched.policy.queue(job) == 2


def test_a_better_waiting_call_displaces_the_worst_running_one_when_the_batch_is_full():
    sched, ex = scheduler("autellix-plas", max_num_seqs=1), FakeExecutor()
    sched.add_job(make_job("long", [(4, 50)]), 0.0)
    now = 0.0
    for _ in range(10):
        _, _, now = step(sched, ex, now)  # 10 steps: queue 3
    sched.add_job(make_job("new", [(4, 2)], arrival=now), now)  # queue 0
    plan, _, now = step(sched, ex, now)
    assert plan.preempted == ["long"]
    assert [s.job_id for s in plan.seqs] == ["new"]  # admitted in the same step
    assert sched.jobs["long"].status == JobStatus.WAITING
    assert sched.jobs["long"].num_output_tokens == 10  # keeps its progress and its queue
    assert sched.policy.queue(sched.jobs["long"]) == 3


def test_no_displacement_while_the_batch_has_room_or_between_equal_queues():
    sched, ex = scheduler("autellix-plas", max_num_seqs=2), FakeExecutor()
    sched.add_job(make_job("long", [(4, 50)]), 0.0)
    now = 0.0
    for _ in range(10):
        _, _, now = step(sched, ex, now)
    sched.add_job(make_job("new", [(4, 2)], arrival=now), now)
    plan, _, now = step(sched, ex, now)
    assert plan.preempted == [] and {s.job_id for s in plan.seqs} == {"long", "new"}
    policy = bound("autellix-plas")
    running, waiting = call("r", output=1), call("w", output=2)  # both in queue 1
    assert policy.displace(waiting, [running], True, snapshot()) is None
    assert policy.displace(call("w0"), [running], False, snapshot()) is None  # batch not full


def test_memory_preemption_takes_the_largest_queue_then_the_latest_arrival():
    policy = bound("autellix-plas")
    a, b, c = call("a", output=7, ready=0.0), call("b", output=7, ready=1.0), call("c", ready=2.0)
    assert policy.preemption_victim([a, b, c], 3.0) is b


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        bound("autellix-plas", quanta=(1, 2))
    with pytest.raises(ValueError):
        bound("autellix-plas", thresholds=(4.0, 2.0, 8.0, 16.0, 32.0, 64.0))


def test_a_long_program_yields_to_a_new_one_in_the_queue():
    sched, ex = scheduler("autellix-plas", max_num_seqs=1), FakeExecutor()
    sched.add_job(make_job("long", [(4, 20), (4, 2)]), 0.0)
    _, now = run_until_tool_or_end(sched, ex, 0.0)  # 20 steps: its next call starts in queue 4
    sched.add_job(make_job("new", [(4, 2)], arrival=now + 0.1), now + 0.1)
    sched.on_tool_result("long", now + 0.2)
    assert order(sched, now + 0.2) == ["new", "long"]
