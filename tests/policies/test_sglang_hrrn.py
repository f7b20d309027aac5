from tests.fakes import FakeExecutor, make_job
from tests.policies.helpers import order, run_until_tool_or_end, scheduler, step


def test_shorter_prompt_first_at_equal_wait():
    sched = scheduler("sglang-hrrn", max_num_seqs=1)
    sched.add_job(make_job("long", [(40, 2)]), 0.0)
    sched.add_job(make_job("short", [(8, 2)]), 0.0)
    sched.policy.on_step(80)  # both waited 80 tokens: ratios 3 and 11
    assert order(sched, 0.0) == ["short", "long"]


def test_ratio_grows_with_the_token_clock_so_a_long_prompt_overtakes_newcomers():
    sched = scheduler("sglang-hrrn", max_num_seqs=1)
    policy = sched.policy
    sched.add_job(make_job("long", [(40, 2)]), 0.0)
    assert policy.ratio(sched.jobs["long"]) == 1.0
    policy.on_step(400)  # the engine computed 400 tokens for others
    assert policy.ratio(sched.jobs["long"]) == 11.0
    sched.add_job(make_job("short", [(8, 2)], arrival=1.0), 1.0)
    policy.on_step(8)
    # long: 1 + 408/40 = 11.2 > short: 1 + 8/8 = 2
    assert order(sched, 1.0) == ["long", "short"]


def test_engine_steps_drive_the_clock_and_a_tool_return_restarts_the_wait():
    sched, ex = scheduler("sglang-hrrn"), FakeExecutor()
    sched.add_job(make_job("a", [(10, 3), (6, 2)]), 0.0)
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    clock = sched.policy.clock
    assert clock == 10 + 2  # prefill 10 (first token sampled) + 2 decode steps
    sched.add_job(make_job("b", [(4, 40)]), now)
    for _ in range(5):
        _, _, now = step(sched, ex, now)
    sched.on_tool_result("a", now)
    assert sched.jobs["a"].policy_state["hrrn_ready_clock"] == sched.policy.clock > clock
    assert sched.policy.ratio(sched.jobs["a"]) == 1.0
