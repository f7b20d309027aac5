"""The engine loop: the simulator's ``schedule -> execute -> update`` on wall-clock time.

One ``Scheduler`` (the same mechanism and policies the simulator runs) plans each step, the
``ModelRunner`` computes it, the sampler picks tokens, and ``update`` books them. Jobs have
identity across calls: ``submit(job_id, ...)`` starts a job or continues one whose previous
call ended in a tool wait, so the next call reuses whatever KV the policy kept.

Served jobs are open-ended (``JobSpec.open_ended``): their next call is known only when it
is submitted. Every call not marked ``last`` ends in the tool ``tool_name`` (latency 0: the
real latency is measured by the scheduler between the call's end and the next submit; the
server names the tool once it has parsed the answer); a continuation is the job's next call
(``Scheduler.on_tool_result`` with it). ``finish_job`` ends a tool-waiting job and frees all
its KV; a call with ``last=True`` ends the job when it finishes. Policies that read future
calls (oracle SRPT) see only those submitted so far.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from astraea.core.job import Job, JobSpec, JobStatus, Segment, ToolCall
from astraea.core.kv_cache import blocks_for
from astraea.core.plan import StepResult
from astraea.core.policy import Policy, PolicyEnv
from astraea.core.scheduler import Scheduler
from astraea.engine.calls import EngineCalls
from astraea.engine.config import EngineConfig
from astraea.engine.isolation import CopyError, StepFailed, compute_isolated, sample_isolated
from astraea.engine.runner import ModelRunner, release_freed_memory
from astraea.engine.sampling import Request, SamplingParams
from astraea.engine.tokenizer import Tokenizer
from astraea.engine.weights import Checkpoint, load_checkpoint
from astraea.predict.service import ServiceTimeModel

# What policies predict with until `astraea profile` fits this engine: SmolLM2-135M, fp32,
# one thread on the shared 2-core development CPU, measured roughly under load (prefill
# 16/128/512 tokens: 0.16/0.52/2.6 s; decode batch 1/8: 81/178 ms; a host copy of a token's
# 46 KB of fp32 KV ~10 us). Only the ratios matter to the policies' orderings.
DEFAULT_SERVICE = ServiceTimeModel(
    step_overhead=0.06,
    prefill_per_token=4e-3,
    decode_per_token=0.08,
    kv_read_per_token=1e-6,
    swap_per_token=1e-5,
)


class Engine(EngineCalls):
    """Scheduler + model runner + sampling, driven on ``clock`` (seconds)."""

    def __init__(
        self,
        checkpoint_or_runner: Checkpoint | ModelRunner | str | Path | None = None,
        engine_config: EngineConfig | None = None,
        policy: str | Policy = "astraea",
        clock: Callable[[], float] = time.monotonic,
        *,
        tokenizer: Tokenizer | None = None,
        service: ServiceTimeModel | None = None,
        scheduler_overrides: dict[str, Any] | None = None,
        tool_name: str = "tool",
        check_integrity: bool = False,
        on_job_finished: Callable[[Job], None] | None = None,
        on_job_failed: Callable[[Job, BaseException], None] | None = None,
    ) -> None:
        if isinstance(checkpoint_or_runner, ModelRunner):
            runner = checkpoint_or_runner
            if engine_config is not None and engine_config != runner.config:
                raise ValueError("engine_config differs from the runner's config")
        else:
            checkpoint = checkpoint_or_runner
            if not isinstance(checkpoint, Checkpoint):
                checkpoint = load_checkpoint(checkpoint)
            runner = ModelRunner.from_checkpoint(checkpoint, engine_config or EngineConfig())
            tokenizer = tokenizer or checkpoint.tokenizer
            del checkpoint  # its plain weights, where the runner prepacked its own
            release_freed_memory()
        if isinstance(policy, str):
            from astraea.policies import make_policy  # the registry imports every policy

            policy = make_policy(policy)
        self.runner, self.config = runner, runner.config
        self.tokenizer, self.policy = tokenizer, policy
        sched_config = self.config.scheduler_config(**(scheduler_overrides or {}))
        service = service or dataclasses.replace(
            DEFAULT_SERVICE, chunk_tokens=sched_config.max_num_batched_tokens
        )
        policy.bind(PolicyEnv(service=service))
        self.scheduler = Scheduler(sched_config, policy)
        self.clock = clock
        self.tool = ToolCall(tool_name, 0.0)
        self.check_each_step = check_integrity
        self.on_job_finished = on_job_finished
        self.on_job_failed = on_job_failed  # a job ended because its call failed in a step
        eos = set(runner.model.config.eos_token_ids)
        self.eos_token_ids = frozenset(eos | set(tokenizer.eos_token_ids if tokenizer else ()))
        self._tokens: dict[str, list[int]] = {}  # job -> its whole context (ids)
        self._requests: dict[str, Request] = {}  # job -> its call in flight
        self._auto_ids = itertools.count()
        self.stalled = False  # the last step had ready work but could run nothing
        self.num_plans = self.num_steps = self.num_finished_jobs = 0
        self.busy_seconds = 0.0  # wall time of steps that ran a plan (schedule to update)

    # ---- calls -------------------------------------------------------------------------------
    def submit(
        self,
        job_id: str,
        prompt: str | Sequence[int],
        params: SamplingParams | None = None,
        *,
        last: bool = False,
    ) -> Request:
        """Start job ``job_id`` with ``prompt``, or continue it (``prompt`` is then the tool
        result appended to its context). ``last`` ends the job with this call."""
        params = params or SamplingParams()
        if isinstance(prompt, str) and self.tokenizer is None:
            raise ValueError("a text prompt needs a tokenizer; pass token ids")
        ids = self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)  # type: ignore[union-attr]
        if not ids:
            raise ValueError("a call needs at least one new token")
        if params.stop and self.tokenizer is None:
            raise ValueError("stop strings need a tokenizer")
        sched, job = self.scheduler, self.scheduler.jobs.get(job_id)
        if job is not None and job.status is not JobStatus.TOOL_WAIT:
            raise ValueError(f"job {job_id!r} has a call in progress ({job.status.name})")
        self._check_fits(len(self._tokens.get(job_id, ())) + len(ids) + params.max_tokens)
        # Everything that can fail on the call's own input happens before any state changes,
        # so a refused call leaves the engine exactly as it was.
        request = Request(job_id, params, last, params.generator())
        call = Segment(len(ids), params.max_tokens, None if last else self.tool)
        now = self.clock()
        if job is None:
            spec = JobSpec(job_id, max(now, 0.0), "engine", (call,), open_ended=not last)
            sched.add_job(spec, now)
            self._tokens[job_id] = ids
        else:
            self._tokens[job_id].extend(ids)
            sched.on_tool_result(job_id, now, call)
        self._requests[job_id] = request
        return request

    def _check_fits(self, total: int) -> None:
        limit = self.runner.model.config.max_position
        if total > limit:
            raise ValueError(f"context + max_tokens = {total} exceeds the model's {limit}")
        cfg = self.scheduler.config
        if blocks_for(total, cfg.block_size) > cfg.num_device_blocks:
            raise ValueError(f"context + max_tokens = {total} exceeds the KV pool")

    def finish_job(self, job_id: str) -> None:
        """End a job waiting for a tool: its KV (device, cached or host) is freed."""
        job = self.scheduler.jobs.get(job_id)
        if job is None:
            raise KeyError(f"unknown or finished job {job_id!r}")
        if job.status is not JobStatus.TOOL_WAIT:
            raise ValueError(f"job {job_id!r} has a call in progress ({job.status.name})")
        self._retire(self.scheduler.end_job(job_id, self.clock()))

    def abort(self, job_id: str) -> Request | None:
        """End a job now, even mid-call (a client that left): the call in flight is dropped
        (returned, unfinished) and all the job's KV is freed before the next step."""
        sched = self.scheduler
        if job_id not in sched.jobs:
            raise KeyError(f"unknown or finished job {job_id!r}")
        self._retire(sched.end_job(job_id, self.clock()))
        return self._requests.pop(job_id, None)

    def _retire(self, job: Job, error: BaseException | None = None) -> None:
        """Forget a finished job, so memory stays flat over any number of requests."""
        del self.scheduler.jobs[job.job_id]
        del self._tokens[job.job_id]
        self.num_finished_jobs += 1
        if error is not None and self.on_job_failed is not None:
            self.on_job_failed(job, error)
        elif self.on_job_finished is not None:
            self.on_job_finished(job)

    # ---- the loop ----------------------------------------------------------------------------
    def step(self) -> list[Request]:
        """One plan: schedule, run its steps, book them; returns the calls that ended. A call
        whose own sequence failed ends alone, with ``error`` set (``isolation.py``); a step
        that failed as a whole (its KV copies, or every sequence) raises ``StepFailed`` with
        the calls it ended."""
        sched = self.scheduler
        self.stalled = False
        if not sched.has_ready_work:
            return []
        wall_start = time.perf_counter()
        plan = sched.schedule(self.clock())
        if plan.is_empty:
            self.stalled = True
            return []
        started = self.clock()
        stopped: set[str] = set()
        failed: dict[str, BaseException] = {}
        steps, broken = 0, None
        try:
            while steps < plan.num_steps and not stopped and not failed:
                jobs, logits = compute_isolated(self.runner, plan, self._tokens, steps, failed)
                steps += 1
                if jobs:
                    self._sample(jobs, logits, stopped, failed)
        except CopyError as exc:  # every job the plan moved or ran lost its KV
            broken, steps = exc, max(steps, 1)
            touched = [s.job_id for s in plan.seqs] + [c.job_id for c in plan.copies]
            failed.update(dict.fromkeys(touched, exc))
        if broken is None and plan.seqs and all(s.job_id in failed for s in plan.seqs):
            broken = failed[plan.seqs[0].job_id]  # nothing survived: the step itself failed
        errors = [self._fail(job_id, exc) for job_id, exc in failed.items() if job_id in sched.jobs]
        now = self.clock()
        result = StepResult(now - started, steps, frozenset(stopped - failed.keys()))
        outcome = sched.update(plan, result, now)  # skips the ended jobs
        self.num_plans += 1
        self.num_steps += steps
        ended = [self._end_call(job) for job, _ in outcome.tool_calls]
        for job in outcome.finished:
            ended.append(self._end_call(job))
            self._retire(job)
        self.busy_seconds += time.perf_counter() - wall_start
        if self.check_each_step:
            self.check_integrity()
        failures = [r for r in errors if r is not None]
        if broken is not None:
            raise StepFailed(failures, broken)
        return ended + failures

    def _fail(self, job_id: str, error: BaseException) -> Request | None:
        """End a job whose call failed inside a step; its call (if one runs) carries the
        error and ends with ``finish_reason`` ``"error"``."""
        request = self._requests.pop(job_id, None)
        self._retire(self.scheduler.end_job(job_id, self.clock()), error)
        if request is not None:
            request.error, request.finish_reason = error, "error"
            request.finish("")
        return request

    def stats(self) -> dict[str, float]:
        """Counters since start: plans, steps, finished jobs, busy wall time, and the share
        of it spent outside model forward passes (scheduler, batching, sampling, Python)."""
        busy, forward = self.busy_seconds, self.runner.forward_seconds
        return {
            "plans": self.num_plans,
            "steps": self.num_steps,
            "finished_jobs": self.num_finished_jobs,
            "busy_seconds": busy,
            "forward_seconds": forward,
            "overhead_fraction": (busy - forward) / busy if busy > 0 else 0.0,
        }

    @torch.inference_mode()  # the logits are inference tensors; EOS bans write into them
    def _sample(
        self,
        jobs: list[str],
        logits: torch.Tensor,
        stopped: set[str],
        failed: dict[str, BaseException],
    ) -> None:
        requests = [self._requests[j] for j in jobs]
        decode = self.tokenizer.decode if self.tokenizer else None
        for req, token, stops in sample_isolated(
            requests, logits, self.eos_token_ids, decode, failed
        ):
            self._tokens[req.job_id].append(token)
            if stops:
                stopped.add(req.job_id)

    def _end_call(self, job: Job) -> Request:
        req = self._requests.pop(job.job_id)
        req.finish(self.tokenizer.decode(req.token_ids) if self.tokenizer else "")
        return req

    def check_integrity(self) -> None:
        """The scheduler's invariants, and every job's token list matches its context."""
        self.scheduler.check_integrity()
        for job_id, job in self.scheduler.jobs.items():
            if len(self._tokens[job_id]) != job.num_context_tokens:
                raise AssertionError(f"job {job_id}: token list and context length disagree")
