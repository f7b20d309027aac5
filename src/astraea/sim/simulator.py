"""Discrete-event simulation of one engine replica serving agent jobs.

Events (job arrivals, tool returns) sit in a heap keyed ``(time, seq)``, so equal times keep
insertion order and a run is deterministic. Between events the loop is the real step loop:
``schedule -> execute -> update`` with the simulated executor as the clock.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from astraea.core.config import SchedulerConfig
from astraea.core.counters import SchedulerCounters
from astraea.core.job import Job, JobSpec, JobStatus
from astraea.core.policy import Policy, PolicyEnv
from astraea.core.scheduler import Scheduler
from astraea.predict.service import ServiceTimeModel
from astraea.sim.executor import SimulatedExecutor
from astraea.sim.profiles import CostProfile

_ARRIVAL, _TOOL_RETURN = 0, 1


def config_for_profile(profile: CostProfile, **overrides: object) -> SchedulerConfig:
    """Scheduler limits for a profile: KV pool sizes from its capacities, simulator-friendly
    multi-step decoding, anything else overridable."""
    block_size = int(overrides.pop("block_size", 16))  # type: ignore[call-overload]
    base = SchedulerConfig(
        num_device_blocks=profile.kv_capacity_tokens // block_size,
        num_host_blocks=profile.host_kv_capacity_tokens // block_size,
        block_size=block_size,
        max_steps_per_plan=256,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@dataclass(slots=True)
class SimulationResult:
    jobs: list[Job]
    policy: str
    profile: str
    makespan: float  # first arrival to last finish, seconds
    counters: SchedulerCounters
    kv_timeline: list[tuple[float, float, float]]  # (time, owned fraction, cached fraction)
    kv_time_avg_owned: float  # time-weighted mean fraction of blocks owned
    num_plans: int
    num_steps: int
    wall_seconds: float
    device_blocks: int
    block_size: int
    extra: dict[str, int] = field(default_factory=dict)


class Simulator:
    def __init__(
        self,
        jobs: Sequence[JobSpec],
        policy: Policy,
        profile: CostProfile,
        config: SchedulerConfig | None = None,
        *,
        check_integrity: bool = False,
        kv_sample_interval: float = 1.0,
        on_job_finished: Callable[[Job], None] | None = None,
    ) -> None:
        if not jobs:
            raise ValueError("nothing to simulate: the workload has no jobs")
        self.specs = sorted(jobs, key=lambda j: j.arrival)
        self.policy = policy
        self.profile = profile
        self.config = config or config_for_profile(profile)
        self.check_integrity = check_integrity
        self.kv_sample_interval = kv_sample_interval
        self.on_job_finished = on_job_finished

    def run(self) -> SimulationResult:
        started = time.perf_counter()
        service = ServiceTimeModel.from_profile(self.profile, self.config.max_num_batched_tokens)
        service = replace(service, swap_stalls_batch=not self.config.overlap_copies)
        self.policy.bind(PolicyEnv(service=service))
        scheduler = Scheduler(self.config, self.policy)
        executor = SimulatedExecutor(
            self.profile, self.config.block_size, overlap=self.config.overlap_copies
        )
        seq = itertools.count()
        events: list[tuple[float, int, int, object]] = [
            (spec.arrival, next(seq), _ARRIVAL, spec) for spec in self.specs
        ]
        heapq.heapify(events)
        total_blocks = self.config.num_device_blocks
        timeline: list[tuple[float, float, float]] = []
        owned_area = 0.0
        next_sample = -math.inf
        now = self.specs[0].arrival
        num_plans = num_steps = 0
        while events or scheduler.has_ready_work:
            while events and events[0][0] <= now:
                _, _, kind, payload = heapq.heappop(events)
                if kind == _ARRIVAL:
                    scheduler.add_job(payload, now)  # type: ignore[arg-type]
                else:
                    scheduler.on_tool_result(payload, now)  # type: ignore[arg-type]
            plan = scheduler.schedule(now) if scheduler.has_ready_work else None
            if plan is None or plan.is_empty:
                copy_done = executor.next_copy_done()
                if not events and copy_done == math.inf:
                    raise RuntimeError(
                        f"simulation stuck at t={now:.3f}s: {len(scheduler.waiting)} jobs wait "
                        "but nothing can run"
                    )
                later = max(now, min(events[0][0] if events else math.inf, copy_done))
                owned_area += scheduler.kv.num_owned_device_blocks * (later - now)
                now = later
                scheduler.on_copies_done(executor.collect_copies(now))
                continue
            horizon = events[0][0] if events else math.inf
            result = executor.execute(plan, now, horizon)
            owned = scheduler.kv.num_owned_device_blocks
            owned_area += owned * result.elapsed
            if now >= next_sample:
                cached = scheduler.kv.num_cached_blocks
                timeline.append((now, owned / total_blocks, cached / total_blocks))
                next_sample = now + self.kv_sample_interval
            now += result.elapsed
            num_plans += 1
            num_steps += result.num_steps
            outcome = scheduler.update(plan, result, now)
            for job, tool in outcome.tool_calls:
                heapq.heappush(events, (now + tool.latency, next(seq), _TOOL_RETURN, job.job_id))
            if self.on_job_finished is not None:
                for job in outcome.finished:
                    self.on_job_finished(job)
            if self.check_integrity:
                scheduler.check_integrity()
        unfinished = [j.job_id for j in scheduler.jobs.values() if j.status != JobStatus.FINISHED]
        if unfinished:
            raise RuntimeError(f"{len(unfinished)} jobs never finished, e.g. {unfinished[:3]}")
        scheduler.check_integrity()
        start = self.specs[0].arrival
        makespan = now - start
        return SimulationResult(
            jobs=list(scheduler.jobs.values()),
            policy=self.policy.name,
            profile=self.profile.name,
            makespan=makespan,
            counters=scheduler.counters,
            kv_timeline=timeline,
            kv_time_avg_owned=owned_area / (makespan * total_blocks) if makespan > 0 else 0.0,
            num_plans=num_plans,
            num_steps=num_steps,
            wall_seconds=time.perf_counter() - started,
            device_blocks=total_blocks,
            block_size=self.config.block_size,
            extra={"evicted_cache_blocks": scheduler.kv.num_evicted_blocks},
        )
