"""The vLLM plugin's tracker and the core scheduler make the same policy decisions.

The same agent jobs run through the core ``Scheduler`` (a fixed step time stands in for the
executor) and, in lockstep, through the plugin's ``JobTracker`` fed by a hand-built fake of
vLLM: each call arrives as a request carrying the whole context, is admitted, preempted and
finished when the core does so, and reports its counters as vLLM would (here: the core's).
Every policy hook must see the same job state and answer the same, and the waiting queue
must come out in the same order at every step.
"""

from __future__ import annotations

import heapq
from typing import Any

import pytest

from astraea.core import (
    JobSpec,
    JobStatus,
    KVAction,
    KVLocation,
    Policy,
    PolicyEnv,
    Scheduler,
    SchedulerConfig,
)
from astraea.core.admission import fit_first
from astraea.core.job import Job
from astraea.core.plan import StepResult
from astraea.core.policy import KVContext
from astraea.integrations.tracker import CallInfo, JobTracker, Pin
from astraea.policies import make_policy
from astraea.predict.service import ServiceTimeModel
from tests.fakes import make_job

SERVICE = ServiceTimeModel(0.025, 3e-4, 0.033, 1e-6, 1e-6, 256)
STEP = 1 / 16  # every time below is a multiple: exact in binary, so both sides see one clock


def recording(name: str) -> Policy:
    """The named policy, logging what every hook the tracker shares with the core saw."""
    base: Any = type(make_policy(name))

    class Recording(base):
        def __init__(self) -> None:
            super().__init__()
            self.log: list[tuple] = []
            self.contexts: dict[str, KVContext] = {}

        def _note(self, hook: str, job: Job, answer: object) -> None:
            state = (job.segment_index, job.status.name, job.num_context_tokens)
            tokens = (job.num_output_tokens, job.max_output_tokens, job.segment.tool)
            times = (job.ready_since, job.total_waiting_time, job.total_tool_time)
            answer = getattr(answer, "value", answer)
            self.log.append(
                (hook, job.job_id, state, tokens, times, dict(job.policy_state), answer)
            )

        def on_arrival(self, job, now):
            out = super().on_arrival(job, now)
            self._note("arrival", job, out)
            return out

        def on_tool_return(self, job, now):
            out = super().on_tool_return(job, now)
            self._note("tool_return", job, out)
            return out

        def on_segment_end(self, job, now):
            out = super().on_segment_end(job, now)
            self._note("segment_end", job, out)
            return out

        def on_tool_call(self, job, kv):
            self.contexts[job.job_id] = kv
            out = super().on_tool_call(job, kv)
            self._note("tool_call", job, out)
            return out

        def review_idle(self, job, kv):
            out = super().review_idle(job, kv)
            self._note("review_idle", job, out)
            return out

    policy = Recording()
    policy.bind(PolicyEnv(SERVICE))
    return policy


def workload() -> list[JobSpec]:
    """Short and long calls, fast and slow tools, arrivals close enough to queue."""
    shapes = [
        [(300, 40), (60, 20), (30, 10)],
        [(40, 8), (20, 8)],
        [(700, 60), (100, 30)],
        [(20, 4)],
        [(200, 16), (50, 16), (50, 16), (20, 8)],
        [(500, 24)],
        [(80, 12), (40, 40)],
    ]
    return [
        make_job(f"j{i}", calls, tool_latency=STEP * (3 + 6 * (i % 3)), arrival=STEP * i // 2)
        for i, calls in enumerate(shapes)
    ]


def call_of(job: Job) -> CallInfo:
    """The request a client would send for the job's current call: the whole context."""
    seg = job.segment
    return CallInfo(
        f"{job.job_id}#{job.segment_index}",
        job.job_id,
        job.num_context_tokens,
        seg.output_tokens,
        seg.tool is None,
        seg.tool.name if seg.tool else "tool",
        seg.tool.latency if seg.tool else None,
    )


def mirror(tracker: JobTracker, job: Job) -> str:
    """The fake vLLM reports a request's counters (vLLM's would match the core's here)."""
    rid = f"{job.job_id}#{job.segment_index}"
    tracker.sync(rid, job.num_context_tokens, job.num_computed_tokens, job.num_output_tokens)
    return rid


def run_lockstep(policy: str, num_blocks: int) -> tuple[Policy, Policy, int]:
    core_policy, shadow_policy = recording(policy), recording(policy)
    config = SchedulerConfig(num_device_blocks=num_blocks, max_num_batched_tokens=256)
    sched = Scheduler(config, core_policy)
    tracker = JobTracker(shadow_policy, pin_ttl=1e9, job_ttl=1e9)
    events: list[tuple[float, int, str, Any]] = []
    for i, spec in enumerate(workload()):
        heapq.heappush(events, (spec.arrival, i, "arrive", spec))
    now, seq, steps_compared = 0.0, 1000, 0
    while events or sched.has_ready_work:
        if not sched.has_ready_work:
            now = max(now, events[0][0])
        while events and events[0][0] <= now:
            _, _, kind, item = heapq.heappop(events)
            if kind == "arrive":
                job = sched.add_job(item, now)
            else:
                sched.on_tool_result(item, now)
                job = sched.jobs[item]
            tracker.arrive(call_of(job), now)
        # The glue reviews pins before vLLM schedules; the core reviews at the top of
        # schedule(), on the same memory snapshot.
        for tracked, _ in tracker.review(sched.kv_context(now)):
            tracked.pin = None
            tracker.released(tracked)
        waiting = sched.waiting.jobs()
        rids = [mirror(tracker, j) for j in waiting]
        core_order = [j.job_id for j in sched.waiting.ordered(now)]
        shadow_order = [waiting[i].job_id for i in tracker.order(rids, now)]
        assert shadow_order == core_order, f"order differs at t={now:.2f}"
        steps_compared += 1
        was_waiting = {j.job_id for j in waiting}
        plan = sched.schedule(now)
        for tracked in tracker.pinned():  # the core reclaimed it: vLLM's pin goes too
            job = sched.jobs[tracked.job.job_id]
            if job.kv_location is not KVLocation.DEVICE and job.status is not JobStatus.RUNNING:
                tracked.pin = None
                tracker.released(tracked)
        for job_id in plan.preempted:
            tracker.preempted(f"{job_id}#{sched.jobs[job_id].segment_index}", now)
        for s in plan.seqs:
            if s.job_id in was_waiting:
                job = sched.jobs[s.job_id]
                tracked = tracker.admitted(mirror(tracker, job), now)
                if tracked is not None and tracked.pin is not None:
                    tracked.pin = None  # the next call holds the blocks now (glue: "resumed")
                    tracker.released(tracked)
        now += STEP
        outcome = sched.update(plan, StepResult(STEP), now)
        for job, tool in outcome.tool_calls:
            rid = mirror(tracker, job)
            context = core_policy.contexts[job.job_id]  # type: ignore[attr-defined]
            tracked, action = tracker.finished(rid, now, context)
            if action is KVAction.PRESERVE and tracked is not None:
                tracked.pin = Pin([job.job_id], now, job.num_context_tokens)  # the glue pins
            seq += 1
            heapq.heappush(events, (now + tool.latency, seq, "return", job.job_id))
        for job in outcome.finished:
            rid = mirror(tracker, job)
            assert tracker.finished(rid, now, sched.kv_context(now))[1] is None
        sched.check_integrity()
    assert all(j.status is JobStatus.FINISHED for j in sched.jobs.values())
    return core_policy, shadow_policy, steps_compared


def by_job(log: list[tuple]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for entry in log:
        out.setdefault(entry[1], []).append(entry)
    return out


@pytest.mark.parametrize("policy", ["astraea", "vllm-fcfs", "infercept", "continuum", "lamps"])
@pytest.mark.parametrize("num_blocks", [400, 70])  # ample memory, and enough pressure to preempt
def test_tracker_and_core_scheduler_decide_alike(policy: str, num_blocks: int) -> None:
    core, shadow, steps = run_lockstep(policy, num_blocks)
    assert steps > 20
    core_log, shadow_log = by_job(core.log), by_job(shadow.log)  # type: ignore[attr-defined]
    assert set(core_log) == {s.job_id for s in workload()}
    for job_id, entries in core_log.items():
        assert shadow_log[job_id] == entries, job_id
    hooks = {entry[0] for entry in core.log}  # type: ignore[attr-defined]
    assert hooks - {"review_idle"} == {"arrival", "tool_return", "segment_end", "tool_call"}
    assert ("review_idle" in hooks) == core.reviews_idle


def test_the_plugin_admits_in_the_order_the_core_admission_round_takes() -> None:
    """fit_first over the block needs the core computed gives the core's admission order."""
    sched = Scheduler(
        SchedulerConfig(num_device_blocks=40, max_num_batched_tokens=4096), make_policy("astraea")
    )
    sched.policy.bind(PolicyEnv(SERVICE))
    sizes = [500, 60, 200, 600, 30, 100]  # 16-token blocks: 32, 4, 13, 38, 2, 7
    for i, tokens in enumerate(sizes):
        sched.add_job(make_job(f"w{i}", [(tokens, 4)], arrival=0.0), 0.0)
    order = [j.job_id for j in sched.waiting.ordered(0.0)]
    needs = [-(-sched.jobs[j].num_context_tokens // 16) for j in order]
    expected = fit_first(list(range(len(order))), needs, 40, False, 0)
    plan = sched.schedule(0.0)
    admitted = [s.job_id for s in plan.seqs]
    assert admitted == [order[i] for i in expected[: len(admitted)]]
    assert len(admitted) < len(order)  # memory ran out: some were passed over
