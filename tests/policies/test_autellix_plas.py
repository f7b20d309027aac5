import pytest

from astraea.core import Job, JobStatus
from tests.fakes import FakeExecutor, make_job
from tests.policies.helpers import SERVICE, bound, order, run_until_tool_or_end, scheduler


def served(job_id: str, prefill: int, generated: int, ready: float = 0.0) -> Job:
    """A waiting job that has received ``prefill`` prefill and ``generated`` decode tokens."""
    job = Job(spec=make_job(job_id, [(4, 2), (4, 2)]))
    job.num_computed_total = prefill + generated
    job.num_generated_total = generated
    job.status, job.ready_since = JobStatus.WAITING, ready
    job.waiting_since = ready
    return job


def test_attained_service_from_tokens():
    policy = bound("autellix-plas")
    job = served("a", prefill=1000, generated=50)
    expected = 1000 * SERVICE.prefill_per_token + 50 * SERVICE.decode_per_token
    assert policy.attained(job) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("service", "queue"),
    [(0.0, 0), (0.99, 0), (1.0, 1), (1.99, 1), (2.0, 2), (4.0, 3), (64.0, 7), (1e9, 7)],
)
def test_queues_have_exponential_boundaries(service, queue):
    assert bound("autellix-plas").queue(service) == queue


def test_least_attained_program_first_and_fcfs_within_a_queue():
    policy = bound("autellix-plas")
    heavy = served("heavy", prefill=0, generated=300, ready=0.0)  # 3 s: queue 2
    light = served("light", prefill=0, generated=50, ready=1.0)  # 0.5 s: queue 0
    light2 = served("light2", prefill=0, generated=60, ready=0.5)  # 0.6 s: queue 0
    ranked = sorted([heavy, light, light2], key=lambda j: policy.priority(j, 1.0))
    assert [j.job_id for j in ranked] == ["light2", "light", "heavy"]


def test_starved_program_moves_to_the_top_queue():
    policy = bound("autellix-plas", beta=2.0)
    heavy = served("heavy", prefill=0, generated=300, ready=0.0)  # 3 s of service
    heavy.total_waiting_time = 5.0  # plus the current wait
    assert policy.priority(heavy, 0.9)[0] == 2  # waited 5.9 < 2 * 3
    assert policy.priority(heavy, 1.0)[0] == 0  # waited 6.0 >= 2 * 3: starved
    light = served("light", prefill=0, generated=50, ready=0.5)
    ranked = sorted([light, heavy], key=lambda j: policy.priority(j, 1.0))
    assert [j.job_id for j in ranked] == ["heavy", "light"]  # FCFS in the top queue


def test_a_long_program_yields_to_a_new_one_in_the_engine():
    sched, ex = scheduler("autellix-plas", {"base": 0.05}, max_num_seqs=1), FakeExecutor()
    sched.add_job(make_job("long", [(4, 20), (4, 2)]), 0.0)
    _, now = run_until_tool_or_end(sched, ex, 0.0)  # 20 decode tokens: 0.2 s of service
    sched.add_job(make_job("new", [(4, 2)], arrival=now + 0.1), now + 0.1)
    sched.on_tool_result("long", now + 0.2)
    assert order(sched, now + 0.2) == ["new", "long"]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        bound("autellix-plas", growth=1.0)
