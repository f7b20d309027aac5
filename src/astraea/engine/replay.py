"""Replay a trace of agent jobs on the real ``Engine`` in wall-clock time.

Why: the simulator's job completion times are only as good as its cost model and its
loop; replaying the same jobs on the engine, with real arrivals and real tool waits, is
the measurement the simulator is checked against (benchmarks/sim_fidelity.py).

Each job's first call is submitted at its arrival time (prompt: random token ids of the
segment's ``input_tokens``); its output length is forced (``ignore_eos``, ``max_tokens``
= ``output_tokens``). When a call ends in a tool, the driver waits the tool's latency
(the engine keeps serving other jobs meanwhile), then submits the tool result
(``input_tokens`` of the next segment) as the next call; the last call has ``last=True``.
Events are looked at between engine steps, as in the simulator's loop.
"""

from __future__ import annotations

import heapq
import itertools
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.engine.engine import Engine
from astraea.engine.sampling import SamplingParams
from astraea.workloads.arrivals import poisson_arrivals

_DUE_SLACK = 1e-9  # s: an event this close is due (clock arithmetic rounds)


@dataclass(slots=True)
class ReplayedJob:
    job_id: str
    arrival: float  # s after the replay's start, from the trace
    finish: float = 0.0  # when its last call ended
    output_tokens: list[int] = field(default_factory=list)  # tokens generated per call

    @property
    def jct(self) -> float:
        return self.finish - self.arrival


@dataclass(slots=True)
class ReplayResult:
    jobs: list[ReplayedJob]
    makespan: float  # first arrival to last finish, s
    num_plans: int
    wall_seconds: float

    @property
    def avg_jct(self) -> float:
        return statistics.fmean(j.jct for j in self.jobs)


def replay(
    engine: Engine,
    specs: Sequence[JobSpec],
    *,
    seed: int = 0,
    sleep: Callable[[float], None] = time.sleep,
    on_job_finished: Callable[[ReplayedJob], None] | None = None,
) -> ReplayResult:
    """Run ``specs`` on ``engine`` (an idle one) on its own clock; arrivals are relative
    to the call's start. Returns each job's JCT measured on that clock."""
    if not specs:
        raise ValueError("nothing to replay: the trace has no jobs")
    rng = random.Random(seed)
    vocab = engine.runner.model.config.vocab_size
    clock, t0 = engine.clock, engine.clock()
    order = itertools.count()
    events: list[tuple[float, int, str, int]] = []  # (time, tiebreak, job, segment index)
    jobs = {s.job_id: ReplayedJob(s.job_id, s.arrival) for s in specs}
    by_id = {s.job_id: s for s in specs}
    for s in specs:
        heapq.heappush(events, (s.arrival, next(order), s.job_id, 0))
    in_flight: dict[str, int] = {}  # job -> index of its call in flight
    plans_before, unfinished = engine.num_plans, len(specs)
    while unfinished:
        now = clock() - t0 + _DUE_SLACK
        while events and events[0][0] <= now:
            _, _, job_id, index = heapq.heappop(events)
            segment, last = by_id[job_id].segments[index], index == len(by_id[job_id].segments) - 1
            ids = [rng.randrange(vocab) for _ in range(segment.input_tokens)]
            params = SamplingParams(max_tokens=segment.output_tokens, ignore_eos=True)
            engine.submit(job_id, ids, params, last=last)
            in_flight[job_id] = index
        ended = engine.step() if engine.scheduler.has_ready_work else []
        for request in ended:
            index = in_flight.pop(request.job_id)
            job = jobs[request.job_id]
            job.output_tokens.append(len(request.token_ids))
            segment = by_id[request.job_id].segments[index]
            if segment.tool is None:
                job.finish = clock() - t0
                unfinished -= 1
                if on_job_finished is not None:
                    on_job_finished(job)
            else:
                ready = clock() - t0 + segment.tool.latency
                heapq.heappush(events, (ready, next(order), request.job_id, index + 1))
        if not unfinished or (engine.scheduler.has_ready_work and not engine.stalled):
            continue
        if not events:
            raise RuntimeError(f"replay stuck: {len(in_flight)} calls wait but none can run")
        sleep(max(0.0, events[0][0] - (clock() - t0)))
    start = min(j.arrival for j in jobs.values())
    makespan = max(j.finish for j in jobs.values()) - start
    plans = engine.num_plans - plans_before
    return ReplayResult(list(jobs.values()), makespan, plans, clock() - t0)


def agent_trace(
    num_jobs: int = 14,
    rate: float = 0.5,
    seed: int = 0,
    *,
    calls: tuple[int, int] = (2, 3),
    prompt_tokens: tuple[int, int] = (50, 400),
    tool_result_tokens: tuple[int, int] = (16, 96),
    output_tokens: tuple[int, int] = (16, 64),
    tool_latency: tuple[float, float] = (0.5, 3.0),
    tool_name: str = "tool",
) -> list[JobSpec]:
    """A small agent workload sized for a real engine on a CPU: uniform call counts, prompt,
    tool-result and output lengths and tool latencies over the given (inclusive) ranges,
    Poisson arrivals at ``rate`` jobs/s. Deterministic for a seed."""
    rng = random.Random(seed)
    arrivals = poisson_arrivals(num_jobs, rate, rng)
    specs = []
    for i, arrival in enumerate(arrivals):
        n = rng.randint(*calls)
        segments = []
        for k in range(n):
            inputs = rng.randint(*(prompt_tokens if k == 0 else tool_result_tokens))
            tool = None if k == n - 1 else ToolCall(tool_name, rng.uniform(*tool_latency))
            segments.append(Segment(inputs, rng.randint(*output_tokens), tool))
        specs.append(JobSpec(f"agent-{i:03d}", arrival, "agent", tuple(segments)))
    return specs
