"""The scheduler mechanism: one step loop for every executor and every policy.

``schedule(now)`` builds a plan (running sequences first, then admissions from the waiting
queue in the policy's order, ``admission.py``); ``update(plan, result, now)`` books what ran;
tool calls stop a job and ask the policy what to do with its KV (``idle_kv.py``). Every change
of a job's state goes through ``lifecycle.py``. The mechanism never looks at a policy's name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from astraea.core import lifecycle
from astraea.core.admission import Admission
from astraea.core.config import SchedulerConfig
from astraea.core.counters import SchedulerCounters
from astraea.core.decode_stretch import extend_decode_steps
from astraea.core.idle_kv import IdleKV
from astraea.core.job import Job, JobSpec, JobStatus, KVLocation, Segment, ToolCall
from astraea.core.kv_cache import BlockCopy, KVCacheManager, blocks_for
from astraea.core.plan import StepPlan, StepResult
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
            config.num_device_blocks,
            config.num_host_blocks,
            config.block_size,
            deferred_copies=config.overlap_copies,
        )
        self.jobs: dict[str, Job] = {}
        self.running: list[Job] = []
        self.waiting = WaitingQueue(policy)
        self.counters = SchedulerCounters()
        self._pending_copies: list[BlockCopy] = []  # swap-outs of calls that just ended
        self.idle = IdleKV(self.kv, policy, self.counters, config.max_prefetch_blocks_per_step)
        self.admission = Admission(
            config, self.kv, self.idle, self.counters, policy.head_of_line_blocking
        )
        self._num_unfinished = 0

    # ---- jobs arrive, come back from tools, end ----------------------------------------------
    def add_job(self, spec: JobSpec, now: float) -> Job:
        """A job arrives: its first call becomes ready."""
        if spec.job_id in self.jobs:
            raise ValueError(f"job {spec.job_id!r} was already added")
        need = blocks_for(spec.total_tokens, self.config.block_size)
        if need > self.config.num_device_blocks:
            raise ValueError(
                f"job {spec.job_id!r} needs {spec.total_tokens} tokens of context, more than the "
                f"KV cache holds ({self.config.num_device_blocks * self.config.block_size})"
            )
        job = lifecycle.arrive(spec, now)
        self.jobs[spec.job_id] = job
        self._num_unfinished += 1
        self._store_state(job, self.policy.on_arrival(job, now))
        self.waiting.push(job, now)
        return job

    def on_tool_result(self, job_id: str, now: float, next_call: Segment | None = None) -> None:
        """The job's tool returned: its next call (with the tool's output as input) is ready.
        ``next_call`` is that call when the job did not know it before (open-ended jobs)."""
        job = self.jobs[job_id]
        lifecycle.check_resume(job, next_call)  # refuse before anything is booked
        lifecycle.tool_returns(job, now)
        self._store_state(job, self.policy.on_tool_return(job, now))
        lifecycle.resume(job, now, next_call)
        self.waiting.push(job, now)

    def name_tool(self, job_id: str, tool: ToolCall) -> None:
        """The tool the job's current (or just ended) call called, once it is known (a served
        call's answer is parsed after it ends): policies learn tool times by name."""
        job = self.jobs[job_id]
        if job.segment.tool is None:
            raise ValueError(f"job {job_id!r}'s call ends the job: it calls no tool")
        if job.segment.tool != tool:
            lifecycle.revise_call(job, dataclasses.replace(job.segment, tool=tool))

    def end_job(self, job_id: str, now: float) -> Job:
        """End a job now, whatever it is doing (an agent that stopped, a client that left,
        mid-call or in a tool wait): it leaves every queue, every block it holds on any tier
        is freed, and the policy forgets it. Call between steps, not inside one."""
        job = self.jobs[job_id]
        if job.status is JobStatus.RUNNING:
            self.running.remove(job)
        elif job.status is JobStatus.WAITING:
            self.waiting.remove_many([job])
        lifecycle.end_early(job, now)
        self.idle.forget(job_id)
        kept = [c for c in self._pending_copies if c.job_id != job_id]
        if self.kv.deferred_copies:  # its swap-outs will never run: their blocks free now
            for copy in self._pending_copies:
                if copy.job_id == job_id:
                    self.kv.copy_done(copy.order)
        self._pending_copies = kept
        self.kv.free(job_id)
        self._num_unfinished -= 1
        self.policy.on_job_end(job)
        return job

    def on_copies_done(self, orders: tuple[int, ...]) -> None:
        """The executor finished these copies (``overlap_copies``): their source blocks are
        free, and jobs whose KV landed may compute."""
        for order in orders:
            self.kv.copy_done(order)

    @property
    def num_unfinished(self) -> int:
        return self._num_unfinished

    @property
    def has_ready_work(self) -> bool:
        return bool(self.running) or len(self.waiting) > 0

    # ---- schedule ----------------------------------------------------------------------------
    def schedule(self, now: float) -> StepPlan:
        plan = StepPlan(copies=self._pending_copies)
        self._pending_copies = []
        idle = self.idle
        if self.policy.reviews_idle and idle.preserved:
            idle.review(self.kv_context(now), plan.copies)
        if self.policy.prefetches and idle.swapped:
            idle.prefetch(self.kv_context(now), plan.copies)
        displacing = self.policy.max_displacements > 0 and len(self.waiting) > 0
        displaced = self._displace(plan, now) if displacing else 0
        budget = self._schedule_running(plan, now)
        # vLLM admits nothing in a step that had to preempt for memory, unless nothing else
        # would run (a call displaced for a better waiting one leaves room for it).
        if len(plan.preempted) == displaced or not plan.seqs:
            admit = self.admission.run
            admit(self.waiting, self.running, plan, budget, now)
            while not self.running and len(self.waiting) and self._reclaim(plan, now):
                admit(self.waiting, self.running, plan, budget, now)
        # A displacing policy decides every step while calls wait: no multi-step stretch then.
        if self.config.max_steps_per_plan > 1 and not displacing:
            extend_decode_steps(plan, self.jobs, self.kv, self.config.max_steps_per_plan)
        return plan

    def _displace(self, plan: StepPlan, now: float) -> int:
        """Preempt running calls the policy gives up for a better waiting call (at most
        ``max_displacements``), while the batch is full or memory held the last round back."""
        batch_full = len(self.running) >= self.config.max_num_seqs
        if not (batch_full or self.admission.memory_bound):
            return 0
        count = 0
        while count < self.policy.max_displacements and self.running and len(self.waiting):
            best = next(iter(self.waiting.ordered(now)))
            victim = self.policy.displace(best, self.running, batch_full, self.kv_context(now))
            if victim is None:
                break
            self._preempt(victim, plan, now)
            count += 1
        return count

    def _schedule_running(self, plan: StepPlan, now: float) -> int:
        budget = self.config.max_num_batched_tokens
        kv = self.kv
        table_of = kv.table
        bs = self.config.block_size
        chunked = self.config.enable_chunked_prefill
        running_status = JobStatus.RUNNING
        order = list(self.running)
        add = plan.add_seq
        arriving = self.kv.arriving
        for index, job in enumerate(order):
            if job.status is not running_status:
                continue  # preempted earlier in this step
            if arriving and job.job_id in arriving:
                continue  # admitted, but its KV is still on its way back from the host
            computed = job.num_computed_tokens
            n = job.num_context_tokens - computed
            if n > budget:
                n = budget if chunked else 0
            if n <= 0:
                continue
            table = table_of(job.job_id)
            need = blocks_for(computed + n, bs) - len(table)
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
                table = table_of(job.job_id)
            add(job, n, table)
            budget -= n
        return budget

    # ---- update ------------------------------------------------------------------------------
    def update(self, plan: StepPlan, result: StepResult, now: float) -> StepOutcome:
        """Book the tokens the executor computed and end the calls that are done."""
        outcome = StepOutcome()
        steps = result.num_steps
        if steps > plan.num_steps or steps < 1:
            raise ValueError(f"executor ran {steps} steps of a {plan.num_steps}-step plan")
        if result.copies_done:
            self.on_copies_done(result.copies_done)
        ended: list[Job] = []
        jobs, stopped, running_status = self.jobs, result.stopped, JobStatus.RUNNING
        trim = steps < plan.num_steps
        computed = 0
        counters = self.counters
        book_compute, book_output = lifecycle.book_compute, lifecycle.book_output
        for job_id, before, n, samples, _ in plan.seqs:
            job = jobs.get(job_id)
            if job is None or job.status is not running_status:
                continue
            decode = n == 1 and samples
            tokens = steps if decode else n
            computed += tokens
            counters.recomputed_tokens += book_compute(job, before, tokens)
            if decode and trim:
                self.kv.trim(job_id, job.num_computed_tokens)
            if not samples:
                continue
            book_output(job, tokens if decode else 1, now)
            if job.num_output_tokens >= job.max_output_tokens or job_id in stopped:
                ended.append(job)
        self.policy.on_step(computed)
        if ended:
            for job in ended:
                self._end_call(job, now, outcome)
            self.running = [j for j in self.running if j.status == JobStatus.RUNNING]
        return outcome

    def _end_call(self, job: Job, now: float, outcome: StepOutcome) -> None:
        self._store_state(job, self.policy.on_segment_end(job, now))
        tool = job.segment.tool
        if tool is None:
            lifecycle.finish(job, now)
            self.kv.free(job.job_id)
            self._num_unfinished -= 1
            outcome.finished.append(job)
            return
        lifecycle.stop_on_tool(job, now)
        action = self.policy.on_tool_call(job, self.kv_context(now))
        self.idle.release(job, action, self._pending_copies)
        outcome.tool_calls.append((job, tool))

    # ---- KV release, preemption --------------------------------------------------------------
    def kv_context(self, now: float) -> KVContext:
        kv = self.kv
        return KVContext(
            now=now,
            block_size=self.config.block_size,
            device_blocks_total=self.config.num_device_blocks,
            device_blocks_owned=kv.num_owned_device_blocks,
            host_blocks_free=kv.host.num_free,
            memory_bound=self.admission.memory_bound,
        )

    def _preempt(self, job: Job, plan: StepPlan, now: float) -> None:
        self.running.remove(job)
        action = self.idle.eviction_action(job, self.kv_context(now))
        self.idle.release(job, action, plan.copies)
        lifecycle.preempt(job, now)
        self.counters.preemptions += 1
        plan.preempted.append(job.job_id)
        self.waiting.push(job, now)

    def _reclaim(self, plan: StepPlan, now: float) -> bool:
        return self.idle.reclaim_one(self.kv_context(now), plan.copies)

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
