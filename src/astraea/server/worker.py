"""The engine loop: the only thread that touches the ``Engine``.

The engine is synchronous and CPU-bound, so one thread runs its step loop: the worker's own
(``start``), or the caller's (``drive`` then ``run``: the main thread in ``astraea serve``
and the in-process benchmarks, server/foreground.py says why). The event loop talks to it
through a thread-safe inbox (submit, cancel, snapshot, stop) and gets tokens back through
each call's ``CallHandle``. Between steps the loop also ends jobs whose tool never came back
(the table's time-to-live). A client that leaves aborts its call at the next step boundary
and its KV is freed then, not when it would have finished.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from astraea.core.job import Job, JobStatus
from astraea.engine.engine import Engine
from astraea.engine.isolation import StepFailed
from astraea.server.calls import Active, Call, Done
from astraea.server.errors import APIError
from astraea.server.jobs import JobTable, label_tool
from astraea.server.metrics import ServerMetrics, engine_snapshot

log = logging.getLogger("astraea.server")
UNHEALTHY_AFTER = 3  # failed steps in a row that make /health answer 503
_LOG_EVERY = 10.0  # seconds between log lines while steps keep failing


def _engine_error() -> APIError:
    return APIError(500, "the engine failed on this call", code="engine_error")


def _refusal(exc: Exception) -> APIError:
    """The answer to a call the engine refused at submission: its own checks (ValueError,
    KeyError: a 400 with their message), or a bug (a 500 that does not leak internals)."""
    if isinstance(exc, ValueError | KeyError):
        code = "context_length_exceeded" if "exceeds" in str(exc) else "invalid_value"
        return APIError(400, str(exc).strip("'\""), code=code)
    log.error("submitting a call failed", exc_info=exc)
    return APIError(500, "the engine could not take this call", code="engine_error")


class EngineWorker:
    def __init__(
        self,
        engine: Engine,
        table: JobTable,
        metrics: ServerMetrics,
        *,
        poll: float = 0.05,
    ) -> None:
        self.engine, self.table, self.metrics, self.poll = engine, table, metrics, poll
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._active: dict[str, Active] = {}
        self._end_reason = "answered"  # why the job being retired ends (for metrics)
        self._thread = threading.Thread(target=self._run, name="astraea-engine", daemon=True)
        self._driven = False  # a caller runs the loop on its own thread (``drive``)
        self._running = False
        self.failed_steps = 0  # engine steps failed in a row (0 after any good step)
        self._last_log = self._last_call_log = -_LOG_EVERY  # rate limits of the error log
        engine.on_job_finished = self._job_finished
        engine.on_job_failed = self._job_failed

    # ---- event loop side -------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker's own thread, unless a caller drives the loop (``drive``)."""
        if not self._driven:
            self._running = True  # alive from now on, not from the thread's first line
            self._thread.start()

    def drive(self) -> None:
        """The calling thread will run the loop (``run``), so ``start`` leaves it alone;
        call it before the server starts."""
        if self._thread.is_alive():
            raise RuntimeError("the engine thread runs already")
        self._driven = True

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Run the loop on the calling thread until ``stop`` (or ``until()`` is true, looked
        at between steps and every ``poll`` seconds while idle)."""
        if not self._driven:
            raise RuntimeError("call drive() before the server starts, then run()")
        self._run(until)

    def stop(self, timeout: float = 10.0) -> None:
        self._inbox.put(("stop", None))
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._running

    @property
    def healthy(self) -> bool:
        """The thread runs and its engine can step (fewer than ``UNHEALTHY_AFTER`` steps in
        a row have failed)."""
        return self.alive and self.failed_steps < UNHEALTHY_AFTER

    def submit(self, call: Call) -> None:
        self._inbox.put(("submit", call))

    def cancel(self, call: Call) -> None:
        """The client left (call this on the event loop): its place in the admission queue
        is given up now, the engine drops the call at the next step boundary."""
        call.handle.dequeue()
        self._inbox.put(("cancel", call))

    def snapshot(self) -> concurrent.futures.Future[dict[str, Any]]:
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        self._inbox.put(("snapshot", future))
        return future

    # ---- the loop --------------------------------------------------------------------------
    def _run(self, until: Callable[[], bool] | None = None) -> None:
        self._running = True
        try:
            self._loop(until)
        finally:
            self._running = False

    def _loop(self, until: Callable[[], bool] | None) -> None:
        engine, next_sweep = self.engine, 0.0
        while until is None or not until():
            idle = not engine.scheduler.has_ready_work or engine.stalled
            if not self._drain(block=idle):
                break
            if time.monotonic() >= next_sweep:
                try:
                    self._sweep()
                except Exception:
                    log.exception("engine thread: the TTL sweep failed")
                next_sweep = time.monotonic() + self.poll
            if not engine.scheduler.has_ready_work:
                continue
            try:
                ended = engine.step()
            except StepFailed as exc:  # the step as a whole: its calls were ended
                self._step_failed(exc.cause)
                self._deliver(exc.requests, logged=True)
                continue
            except Exception as exc:  # a bug, not a client's doing: fail the calls, keep serving
                self._step_failed(exc)
                self._fail_all(_engine_error())
                continue
            self.failed_steps = 0
            self._deliver(ended)
        self._fail_all(APIError(503, "the server is shutting down", code="shutting_down"))

    def _step_failed(self, exc: BaseException) -> None:
        """Count a failed step; log the first of a run with its traceback, then one line at
        most every ``_LOG_EVERY`` seconds (a broken engine must not flood the log)."""
        self.failed_steps += 1
        now = time.monotonic()
        if self.failed_steps == 1:
            log.error("engine step failed", exc_info=exc)
        elif now - self._last_log >= _LOG_EVERY:
            log.error("engine step failed again (%d in a row): %r", self.failed_steps, exc)
        else:
            return
        self._last_log = now

    def _drain(self, block: bool) -> bool:
        """Handle every command waiting; False once told to stop."""
        try:
            item = self._inbox.get(timeout=self.poll) if block else self._inbox.get_nowait()
        except queue.Empty:
            return True
        while True:
            kind, value = item
            if kind == "stop":
                return False
            try:
                self._command(kind, value)
            except Exception:  # a bug: log it, but one command never stops the thread
                log.exception("engine thread: %s failed", kind)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return True

    def _command(self, kind: str, value: Any) -> None:
        if kind == "submit":
            self._start(value)
        elif kind == "cancel":
            self._cancel(value)
        elif kind == "snapshot":
            try:
                value.set_result(engine_snapshot(self.engine))
            except Exception as exc:
                value.set_exception(exc)
                raise

    def _start(self, call: Call) -> None:
        engine, job_id = self.engine, call.job_id
        job = engine.scheduler.jobs.get(job_id)
        prompt = call.prompt
        try:
            if job is not None and (call.restart or call.base_context is None):
                self._end(job, "restarted")
                job = None
            if call.base_context is not None and job is None:
                assert call.full_prompt is not None
                prompt, call.base_context = call.full_prompt(), None  # the job is gone
            request = engine.submit(job_id, prompt, call.params, last=call.last)
            label_tool(engine.scheduler, job_id, call.tool_guess, call.tool_latency)
        except Exception as exc:  # refused alone: nothing of it stays in the engine
            job = engine.scheduler.jobs.get(job_id)
            if job is not None:
                self._end(job, "aborted")
            self.table.drop(job_id)
            call.handle.fail(_refusal(exc))
            return
        if call.base_context is not None:
            self.metrics.continuations.inc()
        self._active[job_id] = Active(call, request, prompt)
        self.metrics.call_started(request, engine.scheduler.jobs[job_id], call.handle.accepted)

    def _cancel(self, call: Call) -> None:
        """The client left: drop the call in flight, or end the job it left waiting."""
        active = self._active.get(call.job_id)
        if active is not None and active.call is call:
            del self._active[call.job_id]
            self._end_reason = "aborted"
            self.engine.abort(call.job_id)
            self._end_reason = "answered"
            self.table.drop(call.job_id)
        elif call.finished and self.table.is_idle(call.job_id):
            job = self.engine.scheduler.jobs.get(call.job_id)
            if job is not None:
                self._end(job, "aborted")
            self.table.drop(call.job_id)

    def _sweep(self) -> None:
        for job_id in self.table.expired():
            job = self.engine.scheduler.jobs.get(job_id)
            if job is not None and job.status is JobStatus.TOOL_WAIT:
                self._end(job, "ttl")

    def _end(self, job: Job, reason: str) -> None:
        """End a job the engine holds: abort its call if one runs, else free its KV."""
        self._end_reason = reason
        try:
            if job.status is JobStatus.TOOL_WAIT:
                self.engine.finish_job(job.job_id)
            else:
                self.engine.abort(job.job_id)
        finally:
            self._end_reason = "answered"

    def _job_failed(self, job: Job, error: BaseException) -> None:
        self.metrics.jobs_ended.labels("failed").inc()
        self.metrics.forget(job.job_id)

    def _job_finished(self, job: Job) -> None:
        reason = self._end_reason
        self.metrics.jobs_ended.labels(reason).inc()
        self.metrics.forget(job.job_id)
        if reason == "answered" and job.jct is not None:
            self.metrics.jct.observe(job.jct)

    # ---- results ---------------------------------------------------------------------------
    def _deliver(self, ended: list[Any], logged: bool = False) -> None:
        for active in self._active.values():
            ids = active.request.token_ids
            if len(ids) > active.sent:
                self.metrics.tokens_sent(active.request)
                active.call.handle.tokens(ids[active.sent :], active.request.logprobs)
                active.sent = len(ids)
        for request in ended:
            active = self._active.get(request.job_id)
            if active is None or active.request is not request:
                continue
            del self._active[request.job_id]
            if request.error is not None:  # its own sequence failed; the engine ended it
                now = time.monotonic()
                if not logged and now - self._last_call_log >= _LOG_EVERY:
                    self._last_call_log = now
                    log.error("call of job %r failed", request.job_id, exc_info=request.error)
                self.table.drop(request.job_id)
                active.call.handle.fail(_engine_error())
                continue
            self._conclude(active, request.output)

    def _conclude(self, active: Active, output: Any) -> None:
        call, engine = active.call, self.engine
        job = engine.scheduler.jobs.get(call.job_id)
        if getattr(active.request.matcher, "closed", False):  # its budget ended it
            output = dataclasses.replace(output, finish_reason="length")
        try:
            verdict = call.conclude(output)
        except Exception:
            log.exception("concluding a call failed")
            if job is not None:
                self._end(job, "aborted")
            self.table.drop(call.job_id)
            call.handle.fail(APIError(500, "could not build the answer", code="server_error"))
            return
        base = call.base_context or []
        context = base + active.submitted + output.token_ids
        self.metrics.call_done(active.request, output, len(base) + len(active.submitted))
        if job is None or verdict.ends_job:
            if job is not None:
                self._end(job, "answered")
            self.table.drop(call.job_id)
        else:
            label_tool(self.engine.scheduler, call.job_id, verdict.tool, verdict.tool_latency)
            self.table.release(
                call.job_id, context, verdict.chat_key, verdict.chat_len, verdict.text
            )
        call.finished = True
        call.handle.done(Done(output, verdict, len(base) + len(active.submitted), len(base)))

    def _fail_all(self, error: APIError) -> None:
        """Fail every call in flight and end every job that is not waiting on a tool, so no
        half-run job is left for the next step to trip on."""
        for job_id, active in list(self._active.items()):
            del self._active[job_id]
            self.table.drop(job_id)
            active.call.handle.fail(error)
        sched = self.engine.scheduler
        for job in [j for j in sched.jobs.values() if j.status is not JobStatus.TOOL_WAIT]:
            try:
                self._end(job, "aborted")
            except Exception:
                log.exception("could not end job %s", job.job_id)
