"""The scheduler mechanism: one step loop for every executor and every policy.

``schedule(now)`` builds a plan (running sequences first, then admissions from the waiting
queue in the policy's order, under a token budget, a sequence cap and KV memory);
``update(plan, result, now)`` books what ran; tool calls stop a job and ask the policy what
to do with its KV. The mechanism never looks at a policy's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from astraea.core.config import SchedulerConfig
from astraea.core.counters import SchedulerCounters
from astraea.core.decode_stretch import extend_decode_steps
from astraea.core.idle_kv import IdleKV
from astraea.core.job import Job, JobSpec, JobStatus, KVLocation, ToolCall
from astraea.core.kv_cache import BlockCopy, KVCacheManager, blocks_for
from astraea.core.plan import ScheduledSeq, StepPlan, StepResult
from astraea.core.policy import KVContext, Policy
from astraea.core.waiting_queue import WaitingQueue


@dataclass(slots=True)
class StepOutcome:
    """Events produced by one ``update``: tool calls to time, jobs that finished."""

    tool_calls: list[tuple[Job, ToolCall]] = field(default_factory=list)
    finished: list[Job] = field(default_factory=list)


class Scheduler:
    def __init__(self, config: SchedulerConfig, policy: Policy) -> None:
        self.config = config
        self.policy = policy
        self.kv = KVCacheManager(
            config.num_device_blocks, config.num_host_blocks, config.block_size
        )
        self.jobs: dict[str, Job] = {}
        self.running: list[Job] = []
        self.waiting = WaitingQueue(policy)
        self.counters = SchedulerCounters()
        self._pending_swap_out: list[BlockCopy] = []
        self.idle = IdleKV(self.kv, policy, self.counters, config.max_prefetch_blocks_per_step)
        self._num_unfinished = 0
        self._memory_bound = False  # last admission round hit the KV memory limit

    # ---- job life cycle ----------------------------------------------------------------------
    def add_job(self, spec: JobSpec, now: float) -> Job:
        """A job arrives: its first segment becomes ready."""
        if spec.job_id in self.jobs:
            raise ValueError(f"job {spec.job_id!r} was already added")
        need = blocks_for(spec.total_tokens, self.config.block_size)
        if need > self.config.num_device_blocks:
            raise ValueError(
                f"job {spec.job_id!r} needs {spec.total_tokens} tokens of context, more than the "
                f"KV cache holds ({self.config.num_device_blocks * self.config.block_size})"
            )
        job = Job(spec=spec, num_context_tokens=spec.segments[0].input_tokens)
        self.jobs[spec.job_id] = job
        self._num_unfinished += 1
        self._store_state(job, self.policy.on_arrival(job, now))
        self._make_ready(job, now)
        return job

    def on_tool_result(self, job_id: str, now: float) -> None:
        """The job's tool returned: its next segment (with the tool's output) is ready."""
        job = self.jobs[job_id]
        if job.status != JobStatus.TOOL_WAIT:
            raise ValueError(f"job {job_id!r} is not waiting on a tool ({job.status.name})")
        job.total_tool_time += now - job.tool_started
        self._store_state(job, self.policy.on_tool_return(job, now))
        job.segment_index += 1
        job.num_output_tokens = 0
        segment = job.segment
        job.max_output_tokens = segment.output_tokens
        job.num_context_tokens += segment.input_tokens
        self._make_ready(job, now)

    def end_job(self, job_id: str, now: float) -> Job:
        """End a job now, whatever it is doing (an agent that stopped, a client that left,
        mid-call or in a tool wait): it leaves every queue, every block it holds on any tier
        is freed, and the policy forgets it. Call between steps, not inside one."""
        job = self.jobs[job_id]
        if job.status is JobStatus.FINISHED:
            raise ValueError(f"job {job_id!r} has already finished")
        if job.status is JobStatus.RUNNING:
            self.running.remove(job)
        elif job.status is JobStatus.WAITING:
            self.waiting.remove_many([job])
        self.idle.forget(job_id)
        self._pending_swap_out = [c for c in self._pending_swap_out if c.job_id != job_id]
        self.kv.free(job_id)
        job.status, job.finish_time = JobStatus.FINISHED, now
        job.kv_location, job.num_computed_tokens = KVLocation.NONE, 0
        self._num_unfinished -= 1
        self.policy.on_job_end(job)
        return job

    def _make_ready(self, job: Job, now: float) -> None:
        job.status = JobStatus.WAITING
        job.ready_since = job.waiting_since = now
        self.waiting.push(job, now)

    @property
    def num_unfinished(self) -> int:
        return self._num_unfinished

    @property
    def has_ready_work(self) -> bool:
        return bool(self.running) or len(self.waiting) > 0

    # ---- schedule ----------------------------------------------------------------------------
    def schedule(self, now: float) -> StepPlan:
        plan = StepPlan(swap_out=self._pending_swap_out)
        self._pending_swap_out = []
        idle = self.idle
        if self.policy.reviews_idle and idle.preserved:
            idle.review(self.kv_context(now), plan.swap_out)
        if self.policy.prefetches and idle.swapped:
            idle.prefetch(self.kv_context(now), plan.swap_in)
        budget = self._schedule_running(plan, now)
        # vLLM admits nothing in a step that had to preempt, unless nothing else would run.
        if not plan.preempted or not plan.seqs:
            self._admit_waiting(plan, budget, now)
            while not self.running and len(self.waiting) and self._reclaim(plan, now):
                self._admit_waiting(plan, budget, now)
        if self.config.max_steps_per_plan > 1:
            extend_decode_steps(plan, self.jobs, self.kv, self.config.max_steps_per_plan)
        return plan

    def _schedule_running(self, plan: StepPlan, now: float) -> int:
        budget = self.config.max_num_batched_tokens
        kv = self.kv
        bs = self.config.block_size
        running_status = JobStatus.RUNNING
        order = list(self.running)
        for index, job in enumerate(order):
            if job.status is not running_status:
                continue  # preempted earlier in this step
            n = job.num_context_tokens - job.num_computed_tokens
            if n > budget:
                n = budget if self.config.enable_chunked_prefill else 0
            if n <= 0:
                continue
            need = -(-(job.num_computed_tokens + n) // bs) - kv.num_blocks(job.job_id)
            if need > 0:
                while not kv.can_allocate(need) and self._reclaim(plan, now):
                    pass
                while not kv.can_allocate(need):
                    candidates = [j for j in order[index:] if j.status is running_status]
                    victim = self.policy.preemption_victim(candidates, now)
                    self._preempt(victim, plan, now)
                    if victim is job:
                        break
                if job.status is not running_status:
                    continue
                kv.allocate(job.job_id, need)
            self._add_seq(plan, job, n)
            budget -= n
        return budget

    def _admit_waiting(self, plan: StepPlan, budget: int, now: float) -> None:
        admitted: list[Job] = []
        max_seqs = self.config.max_num_seqs
        skips_left = self.config.max_admission_skips or len(self.waiting)
        self._memory_bound = False
        free = self.kv.num_free_device_blocks
        for job in self.waiting.ordered(now):
            if len(self.running) >= max_seqs or budget <= 0:
                break
            if free == 0 and job.kv_location is not KVLocation.DEVICE:
                n = 0  # needs at least one block and none is left: skip the bookkeeping
                self._memory_bound = True
            else:
                n = self._try_admit(job, budget, plan)
            if n:
                admitted.append(job)
                budget -= n
                job.total_waiting_time += now - job.waiting_since
                free = self.kv.num_free_device_blocks
            elif self.policy.head_of_line_blocking:
                break
            else:
                skips_left -= 1
                if not skips_left:
                    break
        self.waiting.remove_many(admitted)

    def _try_admit(self, job: Job, budget: int, plan: StepPlan) -> int:
        """Admit the job if its KV fits; returns the tokens it computes this step (0: no)."""
        kv, job_id, bs = self.kv, job.job_id, self.config.block_size
        location = job.kv_location
        context = job.num_context_tokens
        if location is KVLocation.CACHED:
            # At least the last token is computed anew, so the call can sample (vLLM's rule).
            reuse_blocks = min(kv.cached_tokens(job_id), context - 1) // bs
            base, held = reuse_blocks * bs, reuse_blocks
        elif location is KVLocation.HOST:
            base, held = kv.host_tokens(job_id), 0
        else:
            base, held = job.num_computed_tokens, kv.num_blocks(job_id)
        n = self._chunk(context - base, budget)
        if n == 0:
            return 0
        need = blocks_for(base + n, bs) - held
        exclude = job_id if location is KVLocation.CACHED else None
        if not kv.can_allocate(need, exclude_cached_of=exclude):
            self._memory_bound = True
            return 0
        if location is KVLocation.CACHED:
            kv.claim_cached(job_id)
            kv.trim(job_id, base)
        elif location is KVLocation.HOST:
            copy = kv.swap_in(job_id)
            plan.swap_in.append(copy)
            self.counters.swapped_in_blocks += len(copy.src)
        job.num_computed_tokens = base
        job.kv_location = KVLocation.DEVICE
        self.idle.forget(job_id)
        kv.ensure_tokens(job_id, base + n)
        job.status = JobStatus.RUNNING
        self.running.append(job)
        self._add_seq(plan, job, n)
        return n

    def _chunk(self, uncomputed: int, budget: int) -> int:
        if uncomputed <= budget:
            return uncomputed
        return budget if self.config.enable_chunked_prefill else 0

    def _add_seq(self, plan: StepPlan, job: Job, n: int) -> None:
        before = job.num_computed_tokens
        samples = before + n == job.num_context_tokens
        plan.seqs.append(ScheduledSeq(job.job_id, before, n, samples, self.kv.table(job.job_id)))
        if n == 1 and samples:
            plan.num_decode_seqs += 1
        else:
            plan.num_prefill_tokens += n
        plan.sum_kv_tokens += before + n

    # ---- update ------------------------------------------------------------------------------
    def update(self, plan: StepPlan, result: StepResult, now: float) -> StepOutcome:
        """Book the tokens the executor computed and end the segments that are done."""
        outcome = StepOutcome()
        steps = result.num_steps
        if steps > plan.num_steps or steps < 1:
            raise ValueError(f"executor ran {steps} steps of a {plan.num_steps}-step plan")
        ended: list[Job] = []
        jobs, stopped, running_status = self.jobs, result.stopped, JobStatus.RUNNING
        trim = steps < plan.num_steps
        computed = 0
        for job_id, before, n, samples, _ in plan.seqs:
            job = jobs.get(job_id)
            if job is None or job.status is not running_status:
                continue
            decode = n == 1 and samples
            tokens = steps if decode else n
            computed += tokens
            self._book_compute(job, before, tokens)
            if decode and trim:
                self.kv.trim(job_id, job.num_computed_tokens)
            if not samples:
                continue
            emitted = tokens if decode else 1
            job.num_output_tokens += emitted
            job.num_context_tokens += emitted
            job.num_generated_total += emitted
            if job.first_token_time is None:
                job.first_token_time = now
            if job.num_output_tokens >= job.max_output_tokens or job_id in stopped:
                ended.append(job)
        self.policy.on_step(computed)
        if ended:
            for job in ended:
                self._end_segment(job, now, outcome)
            self.running = [j for j in self.running if j.status == JobStatus.RUNNING]
        return outcome

    def _book_compute(self, job: Job, start: int, tokens: int) -> None:
        end = start + tokens
        high = job.kv_high_water
        if start < high:
            redone = min(end, high) - start
            job.num_recomputed_tokens += redone
            self.counters.recomputed_tokens += redone
        if end > high:
            job.kv_high_water = end
        job.num_computed_tokens = end
        job.num_computed_total += tokens

    def _end_segment(self, job: Job, now: float, outcome: StepOutcome) -> None:
        self._store_state(job, self.policy.on_segment_end(job, now))
        if job.is_last_segment:
            job.status = JobStatus.FINISHED
            job.finish_time = now
            job.num_computed_tokens = 0
            job.kv_location = KVLocation.NONE
            self.kv.free(job.job_id)
            self._num_unfinished -= 1
            outcome.finished.append(job)
            return
        tool = job.segment.tool
        assert tool is not None  # JobSpec guarantees it for every segment but the last
        job.status = JobStatus.TOOL_WAIT
        job.tool_started = now
        action = self.policy.on_tool_call(job, self.kv_context(now))
        self.idle.release(job, action, self._pending_swap_out)
        outcome.tool_calls.append((job, tool))

    # ---- KV release, preemption --------------------------------------------------------------
    def kv_context(self, now: float) -> KVContext:
        kv = self.kv
        return KVContext(
            now=now,
            block_size=self.config.block_size,
            device_blocks_total=self.config.num_device_blocks,
            device_blocks_owned=kv.num_owned_device_blocks,
            device_blocks_cached=kv.num_cached_blocks,
            host_blocks_free=kv.host.num_free,
            num_waiting=len(self.waiting),
            memory_bound=self._memory_bound,
        )

    def _preempt(self, job: Job, plan: StepPlan, now: float) -> None:
        self.running.remove(job)
        action = self.idle.eviction_action(job, self.kv_context(now))
        self.idle.release(job, action, plan.swap_out)
        job.num_preemptions += 1
        self.counters.preemptions += 1
        plan.preempted.append(job.job_id)
        job.status = JobStatus.WAITING
        job.waiting_since = now
        self.waiting.push(job, now)

    def _reclaim(self, plan: StepPlan, now: float) -> bool:
        return self.idle.reclaim_one(self.kv_context(now), plan.swap_out)

    def _store_state(self, job: Job, state: object) -> None:
        if state:
            job.policy_state.update(state)  # type: ignore[call-overload]

    # ---- invariants --------------------------------------------------------------------------
    def check_integrity(self) -> None:
        """Block pools consistent, and every job's state agrees with the KV manager."""
        self.kv.check_integrity()
        if len(self.running) > self.config.max_num_seqs:
            raise AssertionError("more running sequences than max_num_seqs")
        bs = self.config.block_size
        for job in self.jobs.values():
            held = self.kv.num_blocks(job.job_id)
            if job.status == JobStatus.RUNNING and job not in self.running:
                raise AssertionError(f"job {job.job_id} is RUNNING but not in the running list")
            if job.status == JobStatus.WAITING and job not in self.waiting:
                raise AssertionError(f"job {job.job_id} is WAITING but not queued")
            if job.kv_location is KVLocation.DEVICE:
                if held < blocks_for(job.num_computed_tokens, bs):
                    raise AssertionError(f"job {job.job_id} has fewer blocks than computed tokens")
            elif held:
                raise AssertionError(
                    f"job {job.job_id} owns blocks but its KV is {job.kv_location}"
                )
            if job.status == JobStatus.FINISHED and (held or self.kv.host_blocks(job.job_id)):
                raise AssertionError(f"finished job {job.job_id} still holds KV")
