"""Shared pieces for the policy tests: a small engine, a service model, stepping helpers."""

from __future__ import annotations

from astraea.core import Job, JobStatus, KVContext, Scheduler, SchedulerConfig
from astraea.core.policy import Policy, PolicyEnv
from astraea.policies import make_policy
from astraea.predict import ServiceTimeModel
from tests.fakes import FakeExecutor, make_job

BLOCK = 4
# 1e-4 s per prefill token plus 10 ms a step; 10 ms a decode token; swap 1e-5 s per token.
SERVICE = ServiceTimeModel(
    step_overhead=0.01,
    prefill_per_token=1e-4,
    decode_per_token=0.01,
    kv_read_per_token=0.0,
    swap_per_token=1e-5,
    chunk_tokens=8192,
)


def config(**kw: int) -> SchedulerConfig:
    base = dict(
        num_device_blocks=64,
        num_host_blocks=64,
        block_size=BLOCK,
        max_num_batched_tokens=64,
        max_num_seqs=8,
    )
    base.update(kw)
    return SchedulerConfig(**base)


def bound(name: str, **params: object) -> Policy:
    policy = make_policy(name, **params)
    policy.bind(PolicyEnv(SERVICE))
    return policy


def scheduler(name: str, params: dict | None = None, **kw: int) -> Scheduler:
    return Scheduler(config(**kw), bound(name, **(params or {})))


def step(sched: Scheduler, ex: FakeExecutor, now: float):
    plan = sched.schedule(now)
    result = ex.execute(plan)
    now += result.elapsed
    out = sched.update(plan, result, now)
    sched.check_integrity()
    return plan, out, now


def run_until_tool_or_end(sched: Scheduler, ex: FakeExecutor, now: float, limit: int = 1000):
    for _ in range(limit):
        _, out, now = step(sched, ex, now)
        if out.tool_calls or out.finished:
            return out, now
    raise AssertionError("no segment ended")


def order(sched: Scheduler, now: float) -> list[str]:
    return [j.job_id for j in sched.waiting.ordered(now)]


def kv_context(
    now: float = 0.0,
    total: int = 1000,
    owned: int = 0,
    host_free: int = 1000,
    memory_bound: bool = True,
) -> KVContext:
    """A memory snapshot in blocks of ``BLOCK`` tokens (by default calls wait for memory)."""
    return KVContext(now, BLOCK, total, owned, host_free, memory_bound)


def idle_job(
    job_id: str = "j",
    computed: int = 1000,
    tool_latency: float = 5.0,
    tool_started: float = 0.0,
    calls: list[tuple[int, int]] | None = None,
) -> Job:
    """A job stopped on its first tool call with ``computed`` tokens of KV."""
    job = Job(spec=make_job(job_id, calls or [(computed, 1), (4, 2)], tool_latency))
    job.status = JobStatus.TOOL_WAIT
    job.num_context_tokens = job.num_computed_tokens = job.kv_high_water = computed
    job.tool_started = tool_started
    return job
