"""The glue between vLLM 0.32.0's V1 scheduler and an astraea policy (imports vLLM).

Hooks, all on vLLM's own ``Scheduler`` (the interface is not public: pinned to 0.32.0):

* ``add_request``: a call arrives; the tracker starts a job or resumes one from its tool wait.
* ``schedule``: release pins the policy or a TTL gives up, re-sort ``self.waiting`` (FCFS
  deque) in the policy's order, with calls that cannot fit moved behind those that can by
  the core's admission rule (``core.admission.fit_first``), then let vLLM admit from the
  front; afterwards book admissions (with their prefix-cache hit) and preemptions, and drop
  the pin of a job whose next call now holds its blocks.
* ``_free_request``: a call ends; the policy decides the job's KV for its tool wait. Preserve
  pins the call's full (hashed) blocks by taking a reference (``BlockPool.touch``), which keeps
  them out of the free queue so nothing evicts them; release gives the reference back
  (``free_blocks``) and the blocks become ordinary LRU prefix cache.
* ``allocate_slots`` (wrapped): when a running call needs blocks, pinned ones go back first
  (in the policy's reclaim order) before vLLM would preempt anybody; an admission that does
  not fit marks memory as the bound, which the policy's idle review weighs next step.
* ``shutdown`` / ``reset_prefix_cache``: every pin is released first.

Swapping a tool-waiting context to host memory would go through vLLM's OffloadingConnector,
which refuses the CPU backend; a SWAP decision is therefore carried out as CACHE here.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from vllm.v1.core.sched.async_scheduler import AsyncScheduler
from vllm.v1.core.sched.request_queue import SchedulingPolicy
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.request import Request, RequestStatus

from astraea.core.admission import admission_need, fit_first
from astraea.core.policy import KVAction, PolicyEnv
from astraea.integrations.settings import PluginSettings
from astraea.integrations.trace import DecisionTrace
from astraea.integrations.tracker import JobTracker, call_info
from astraea.integrations.vllm_pins import PinningMixin
from astraea.policies import make_policy


class AstraeaSchedulerMixin(PinningMixin):
    """Astraea's ordering and KV pinning on top of a vLLM V1 scheduler class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        vllm: Any = self
        if vllm.policy != SchedulingPolicy.FCFS:
            raise ValueError(
                "the astraea scheduler orders the waiting queue itself: start vLLM with "
                "--scheduling-policy fcfs (the default)"
            )
        settings = PluginSettings.from_env()
        policy = make_policy(settings.policy, **settings.policy_params)
        service = settings.service_model(vllm.max_num_scheduled_tokens)
        policy.bind(PolicyEnv(service))
        self.astraea = JobTracker(policy, settings.pin_ttl, settings.job_ttl)
        self.astraea_settings = settings
        self.astraea_trace = DecisionTrace(settings.trace_path)
        self._memory_bound = False
        self._last_order: list[str] = []
        manager = vllm.kv_cache_manager
        allocate = manager.allocate_slots

        def allocate_slots(request: Request, *a: Any, **kw: Any) -> Any:
            blocks = allocate(request, *a, **kw)
            if blocks is None:
                blocks = self._on_memory_full(request, lambda: allocate(request, *a, **kw))
            return blocks

        manager.allocate_slots = allocate_slots
        self.astraea_trace.write(
            time.monotonic(),
            "start",
            policy=settings.policy,
            block_size=vllm.block_size,
            num_blocks=manager.block_pool.num_gpu_blocks - 1,
            pin_ttl=settings.pin_ttl,
        )

    # ---- vLLM hooks ------------------------------------------------------------------------
    def add_request(self, request: Request) -> None:
        vllm: Any = self
        known = request.request_id in vllm.requests
        super().add_request(request)  # type: ignore[misc]
        params = request.sampling_params
        if known or params is None:  # a streaming-input update, or a pooling request
            return
        call = call_info(
            request.request_id,
            params.extra_args,
            request.session_id,
            request.priority,
            request.num_prompt_tokens,
            request.max_tokens,
        )
        now = time.monotonic()
        tracked = self.astraea.arrive(call, now)
        self._trace(
            now,
            "arrive",
            tracked,
            request.request_id,
            call=tracked.call_index,
            prompt_tokens=call.prompt_tokens,
            max_tokens=call.max_tokens,
            last=call.last,
            pinned_blocks=len(tracked.pin.blocks) if tracked.pin else 0,
        )

    def schedule(self, *args: Any, **kwargs: Any) -> Any:
        vllm: Any = self
        now = time.monotonic()
        for tracked, reason in self.astraea.review(self._kv_context(now)):
            self._unpin(tracked, reason, now)
            if reason == "job_ttl":
                self._trace(now, "job_end", tracked, None, reason=reason)
        self._order_waiting(now)
        waiting = [r.request_id for r in itertools.chain(vllm.waiting, vllm.kv_holding_waiting)]
        self._memory_bound = False
        output = super().schedule(*args, **kwargs)  # type: ignore[misc]
        self._book_step(output, waiting, time.monotonic())
        return output

    def _free_request(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        if self.astraea.get(request.request_id) is not None:
            self._call_ended(request, time.monotonic())
        return super()._free_request(request, *args, **kwargs)  # type: ignore[misc]

    def reset_prefix_cache(self, *args: Any, **kwargs: Any) -> bool:
        now = time.monotonic()
        for tracked in self.astraea.pinned():
            self._unpin(tracked, "reset", now)
        return super().reset_prefix_cache(*args, **kwargs)  # type: ignore[misc]

    def shutdown(self) -> None:
        now = time.monotonic()
        for tracked in self.astraea.forget_all():
            self._unpin(tracked, "shutdown", now)
        self.astraea_trace.write(now, "shutdown", pinned_total=self.astraea.num_pinned_blocks)
        self.astraea_trace.close()
        super().shutdown()  # type: ignore[misc]

    # ---- ordering --------------------------------------------------------------------------
    def _order_waiting(self, now: float) -> None:
        vllm: Any = self
        queue = vllm.waiting
        if len(queue) < 2:
            return
        requests = list(queue)
        needs = []
        budget, bs = vllm.max_num_scheduled_tokens, vllm.block_size
        for r in requests:
            hit, held = self._cached_prefix(r)
            self.astraea.sync(r.request_id, r.num_tokens, hit, r.num_output_tokens)
            needs.append(admission_need(r.num_tokens, hit, held, budget, bs)[1])
        order = self.astraea.order([r.request_id for r in requests], now)
        free = vllm.kv_cache_manager.block_pool.get_num_free_blocks()
        hol = self.astraea.policy.head_of_line_blocking
        order = fit_first(order, needs, free, hol, self.astraea_settings.max_skips)
        ordered = [requests[i] for i in order]
        if ordered != requests:
            queue.clear()
            queue.extend(ordered)
        ids = [r.request_id for r in ordered]
        if ids != self._last_order:
            self._last_order = ids
            rows = []
            for r in ordered:
                tracked = self.astraea.get(r.request_id)
                rows.append(
                    {
                        "request": r.request_id,
                        "job": tracked.job.job_id if tracked else None,
                        "level": tracked.level if tracked else None,
                        "key": _jsonable(self.astraea.priority(r.request_id, now)),
                    }
                )
            self.astraea_trace.write(now, "order", queue=rows)

    def _cached_prefix(self, request: Request) -> tuple[int, int]:
        """Prefix-cache hit of a waiting call (tokens) and how many of its blocks are held
        by someone already (pinned, or shared with a running call), so cost no free block."""
        vllm: Any = self
        if request.num_computed_tokens > 0:
            return request.num_computed_tokens, 0
        try:
            groups, hit, _ = vllm.kv_cache_manager.coordinator.find_longest_cache_hit(
                request.block_hashes, request.num_tokens - 1
            )
        except (AttributeError, TypeError, ValueError, AssertionError):  # not a plain decoder
            return 0, 0
        held = sum(1 for b in (groups[0] if groups else ()) if b.ref_cnt > 0)
        return hit, held

    # ---- bookkeeping -----------------------------------------------------------------------
    def _book_step(self, output: Any, waiting: list[str], now: float) -> None:
        vllm: Any = self
        scheduled = output.num_scheduled_tokens
        for rid in waiting:
            r = vllm.requests.get(rid)
            if r is None or r.status != RequestStatus.RUNNING:
                continue
            tracked = self.astraea.admitted(rid, now)
            if tracked is None:
                continue
            hit = r.num_computed_tokens - scheduled.get(rid, 0)
            self._trace(now, "admit", tracked, rid, call=tracked.call_index, cached_tokens=hit)
            if tracked.pin is not None:
                self._unpin(tracked, "resumed", now, cached_tokens=hit)
        for rid in list(self.astraea.calls):
            r = vllm.requests.get(rid)
            if r is not None and r.status == RequestStatus.PREEMPTED:
                tracked = self.astraea.preempted(rid, now)
                if tracked is not None:
                    self._trace(now, "preempt", tracked, rid)

    def _call_ended(self, request: Request, now: float) -> None:
        rid = request.request_id
        self.astraea.sync(
            rid, request.num_tokens, request.num_computed_tokens, request.num_output_tokens
        )
        aborted = request.status == RequestStatus.FINISHED_ABORTED
        tracked, action = self.astraea.finished(rid, now, self._kv_context(now), aborted)
        if tracked is None:
            return
        self._trace(
            now,
            "finish",
            tracked,
            rid,
            call=tracked.call_index,
            output_tokens=request.num_output_tokens,
            aborted=aborted,
            action=action.value if action else None,
        )
        if action is None:
            self._unpin(tracked, "job_end", now)
            self._trace(now, "job_end", tracked, rid, reason="last_call")
        elif action is KVAction.PRESERVE:
            self._pin(tracked, request, now)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


class AstraeaScheduler(AstraeaSchedulerMixin, Scheduler):
    """For vLLM with synchronous scheduling (CPU, or ``--no-async-scheduling``)."""


class AstraeaAsyncScheduler(AstraeaSchedulerMixin, AsyncScheduler):
    """For CUDA vLLM with async scheduling (the default there); untested on CPU."""
