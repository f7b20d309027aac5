"""Prometheus metrics: the engine's state at scrape time, plus request and job histograms.

Two families: vLLM's (``vllm:*``, the names, meanings, buckets and ``model_name`` / ``engine``
labels of vLLM 0.32's ``vllm/v1/metrics/loggers.py`` and ``buckets.py``, so a vLLM Grafana
dashboard reads this server unchanged; docs/server.md maps each) and ours (``astraea_*``:
queue levels, tool waits, KV actions, jobs). Engine state is read on the engine thread
(``engine_snapshot``, asked for by the /metrics handler), never from the event loop while a
step runs; per-call timings are recorded on the engine thread by ``EngineWorker`` through
``call_started`` / ``tokens_sent`` / ``call_done``. Each app has its own registry, so several
servers (tests) can live in one process.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from astraea.core.job import JobStatus, KVLocation
from astraea.server.call_metrics import CallMetrics, vllm_engine_families

_KV_STATE = {
    KVLocation.DEVICE: "preserved",
    KVLocation.HOST: "swapped",
    KVLocation.CACHED: "cached",
    KVLocation.NONE: "discarded",
}
ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics")
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500)


def engine_snapshot(engine: Any) -> dict[str, Any]:
    """Queue lengths, KV blocks by tier, tool-waiting jobs by where their KV is, counters.
    Call it on the thread that owns the engine."""
    sched = engine.scheduler
    kv, counters = sched.kv, sched.counters
    levels = Tally(str(int(j.policy_state.get("level", 0))) for j in sched.waiting.jobs())
    waits = Tally(
        _KV_STATE[j.kv_location] for j in sched.jobs.values() if j.status is JobStatus.TOOL_WAIT
    )
    return {
        "waiting_by_level": dict(levels),
        "running": len(sched.running),
        "jobs": len(sched.jobs),
        "tool_wait": dict(waits),
        "device_blocks": sched.config.num_device_blocks,
        "device_free": kv.num_free_device_blocks,
        "device_cached": kv.num_cached_blocks,
        "host_blocks": kv.host.num_blocks,
        "host_free": kv.host.num_free,
        "kv_actions": dict(counters.kv_actions),
        "preemptions": counters.preemptions,
        "recomputed_tokens": counters.recomputed_tokens,
        "swapped_out_blocks": counters.swapped_out_blocks,
        "swapped_in_blocks": counters.swapped_in_blocks,
        "steps": engine.num_steps,
    }


class ServerMetrics:
    def __init__(self, model_name: str = "astraea", max_model_len: int = 8192) -> None:
        self.registry = CollectorRegistry()
        self.model_name = model_name
        self.snapshot: dict[str, Any] = {}
        self.queued = 0  # the admission queue, set by the app before a scrape
        r = self.registry
        self.requests = Counter(
            "astraea_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        self.jobs_ended = Counter(
            "astraea_jobs_ended",
            "Jobs ended: answered (a final answer), ttl (tool never came back), aborted "
            "(client left or the call failed), restarted (history rewritten)",
            ["reason"],
            registry=r,
        )
        self.continuations = Counter(
            "astraea_job_continuations",
            "Calls that continued a job on its kept context",
            registry=r,
        )
        self.jct = Histogram(
            "astraea_job_completion_seconds",
            "Job completion time: first call's arrival to the end of its last call, tool time "
            "included (answered jobs)",
            buckets=_SECONDS,
            registry=r,
        )
        self.calls = CallMetrics(r, model_name, max_model_len)
        self.ttft = self.calls.ttft  # observed by the app when a call's first token leaves
        # the engine thread's hooks (EngineWorker): timings of each call, by engine request
        self.call_started, self.tokens_sent = self.calls.call_started, self.calls.tokens_sent
        self.call_done, self.forget = self.calls.call_done, self.calls.forget
        r.register(_EngineCollector(self))

    def render(self, snapshot: dict[str, Any], queued: int) -> bytes:
        self.snapshot, self.queued = snapshot, queued
        return generate_latest(self.registry)


class _EngineCollector:
    """Exports the last snapshot (gauges, and the scheduler's counters as counters)."""

    def __init__(self, owner: ServerMetrics) -> None:
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        s = self.owner.snapshot
        if not s:
            return
        g = GaugeMetricFamily(
            "astraea_queue_length",
            "Calls waiting, by MLFQ level (level 0 for policies without levels)",
            labels=["level"],
        )
        for level, n in sorted(s["waiting_by_level"].items()) or [("0", 0)]:
            g.add_metric([level], n)
        yield g
        yield GaugeMetricFamily(
            "astraea_running_calls", "Calls in the running batch", value=s["running"]
        )
        yield GaugeMetricFamily(
            "astraea_admission_queue", "Calls accepted, no token yet", value=self.owner.queued
        )
        yield GaugeMetricFamily("astraea_live_jobs", "Jobs the scheduler holds", value=s["jobs"])
        g = GaugeMetricFamily(
            "astraea_kv_blocks", "KV blocks by tier and state", labels=["tier", "state"]
        )
        dev_used = s["device_blocks"] - s["device_free"]
        g.add_metric(["device", "used"], dev_used)
        g.add_metric(["device", "cached"], s["device_cached"])
        g.add_metric(["device", "free"], s["device_free"] - s["device_cached"])
        g.add_metric(["host", "used"], s["host_blocks"] - s["host_free"])
        g.add_metric(["host", "free"], s["host_free"])
        yield g
        g = GaugeMetricFamily(
            "astraea_tool_wait_jobs", "Jobs waiting on a tool, by where their KV is", labels=["kv"]
        )
        for state in _KV_STATE.values():
            g.add_metric([state], s["tool_wait"].get(state, 0))
        yield g
        c = CounterMetricFamily(
            "astraea_kv_actions", "KV decisions at tool calls and preemptions", labels=["action"]
        )
        for action, n in sorted(s["kv_actions"].items()):
            c.add_metric([action], n)
        yield c
        yield from vllm_engine_families(self.owner.model_name, s)
        for name, key, doc in (
            ("astraea_preemptions", "preemptions", "Running calls preempted"),
            ("astraea_recomputed_tokens", "recomputed_tokens", "Tokens computed again"),
            ("astraea_swapped_out_blocks", "swapped_out_blocks", "Blocks copied to the host"),
            ("astraea_swapped_in_blocks", "swapped_in_blocks", "Blocks copied back"),
            ("astraea_engine_steps", "steps", "Forward steps run"),
        ):
            yield CounterMetricFamily(name, doc, value=s[key])


class RequestCounter:
    """Counts every HTTP answer by route and status (pure ASGI: streams pass untouched)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in ROUTES else "other"

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(endpoint, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)
