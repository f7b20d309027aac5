"""The discrete-event simulator: determinism, exact multi-step fast-forward, integrity under
random workloads and memory sizes, and queueing theory on a single server."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astraea.core import JobSpec, KVAction, Policy, Segment, ToolCall
from astraea.policies import make_policy
from astraea.sim.profiles import CostProfile, get_profile
from astraea.sim.run import simulate
from astraea.sim.simulator import Simulator, config_for_profile
from astraea.workloads.registry import generate_workload


def flat_profile(step: float = 0.01, capacity: int = 4096, host: int = 4096) -> CostProfile:
    """Every iteration takes ``step`` seconds whatever it holds (a plain server)."""
    return CostProfile(
        name="flat",
        model="test",
        accelerator="test",
        tensor_parallel=1,
        a=step,
        b=1e-12,
        c=0.0,
        e=0.0,
        kv_bytes_per_token=1024,
        kv_capacity_tokens=capacity,
        host_kv_capacity_tokens=host,
        host_link_bytes_per_s=1e9,
        source="unit test",
    )


def test_same_seed_same_results_different_seed_different():
    profile = get_profile("llama2-7b-a100")
    runs = [
        simulate(
            generate_workload("infercept", 150, 3.0, seed), "vllm-fcfs", profile, slowdown=False
        )
        for seed in (7, 7, 8)
    ]
    first, again, other = ([(m.job_id, m.jct) for m in r.jobs] for r in runs)
    assert first == again
    assert first != other


@pytest.mark.parametrize("policy", ["vllm-fcfs", "fcfs-job"])
def test_multi_step_decode_is_exactly_the_one_step_loop(policy):
    profile = get_profile("llama2-7b-a100")
    specs = generate_workload("infercept", 120, 4.0, seed=5)
    one = simulate(
        specs, policy, profile, config_overrides={"max_steps_per_plan": 1}, slowdown=False
    )
    many = simulate(
        specs, policy, profile, config_overrides={"max_steps_per_plan": 256}, slowdown=False
    )
    assert many.result.num_plans < one.result.num_plans / 2
    assert many.result.num_steps == one.result.num_steps
    for a, b in zip(one.jobs, many.jobs, strict=True):
        assert a.job_id == b.job_id
        assert b.jct == pytest.approx(a.jct, rel=1e-9, abs=1e-9)


class RandomKV(Policy):
    """A policy that makes arbitrary (seeded) KV decisions, to stress the mechanism."""

    name = "random-kv"
    head_of_line_blocking = False

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def on_tool_call(self, job, kv):
        return self.rng.choice(list(KVAction))

    def on_preempt(self, job, kv):
        return self.rng.choice([KVAction.CACHE, KVAction.SWAP, KVAction.DISCARD])


segments = st.lists(
    st.tuples(st.integers(1, 40), st.integers(1, 30), st.floats(0.0, 0.3)), min_size=1, max_size=4
)


@settings(max_examples=60, deadline=None)
@given(
    jobs=st.lists(st.tuples(st.floats(0.0, 2.0), segments), min_size=1, max_size=12),
    blocks=st.integers(12, 40),
    host=st.integers(0, 20),
    budget=st.integers(8, 64),
    max_seqs=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_random_runs_keep_integrity_and_finish_every_job(
    jobs, blocks, host, budget, max_seqs, seed
):
    specs = []
    for i, (arrival, segs) in enumerate(jobs):
        tail = len(segs) - 1
        specs.append(
            JobSpec(
                f"j{i}",
                arrival,
                "t",
                tuple(
                    Segment(inp, out, None if k == tail else ToolCall("tool", lat))
                    for k, (inp, out, lat) in enumerate(segs)
                ),
            )
        )
    # Every job must fit on the device alone (the scheduler refuses it otherwise).
    block_size = 4
    blocks = max(blocks, max(-(-s.total_tokens // block_size) for s in specs))
    profile = flat_profile(capacity=blocks * block_size, host=host * block_size)
    config = config_for_profile(
        profile,
        block_size=block_size,
        max_num_batched_tokens=budget,
        max_num_seqs=max_seqs,
        max_steps_per_plan=8,
    )
    result = Simulator(specs, RandomKV(seed), profile, config, check_integrity=True).run()
    by_id = {j.job_id: j for j in result.jobs}
    for spec in specs:
        job = by_id[spec.job_id]
        assert job.finish_time is not None and job.finish_time >= spec.arrival
        assert job.num_generated_total == sum(s.output_tokens for s in spec.segments)


@pytest.mark.parametrize("service", ["deterministic", "geometric"])
def test_single_server_matches_queueing_theory(service):
    """One sequence at a time, constant step time: an M/D/1 (or M/G/1) queue. The mean wait
    must be within 10% of Pollaczek-Khinchine: Wq = lambda E[S^2] / (2 (1 - rho))."""
    step, rate, n = 0.01, 7.0, 20000
    rng = random.Random(11)
    arrivals, t = [], 0.0
    lengths = []
    for _ in range(n):
        t += rng.expovariate(rate)
        arrivals.append(t)
        lengths.append(10 if service == "deterministic" else 1 + int(rng.expovariate(1 / 9.5)))
    specs = [
        JobSpec(f"j{i}", a, "q", (Segment(1, k),))
        for i, (a, k) in enumerate(zip(arrivals, lengths, strict=True))
    ]
    profile = flat_profile(step)
    config = config_for_profile(profile, max_num_seqs=1, max_steps_per_plan=1000)
    result = Simulator(specs, make_policy("vllm-fcfs"), profile, config).run()
    services = [k * step for k in lengths]
    mean_s = sum(services) / n
    rho = rate * mean_s
    theory = rate * (sum(s * s for s in services) / n) / (2 * (1 - rho))
    waits = [
        j.jct - k * step
        for j, k in zip(sorted(result.jobs, key=lambda j: j.arrival), lengths, strict=True)
    ]
    simulated = sum(waits) / n
    assert 0.5 < rho < 0.85
    assert simulated == pytest.approx(theory, rel=0.10)
