"""The per-call metrics vLLM exports, under vLLM 0.32's names, meanings, buckets and labels
(``vllm/v1/metrics/loggers.py``, ``buckets.py``), plus our tool-wait histogram.

Fed on the engine thread by ``EngineWorker`` (``call_started`` when a call enters the engine,
``tokens_sent`` each step its tokens go out, ``call_done`` when it ends, ``forget`` when its
job ends); TTFT is observed by the app when the first token reaches the client.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

# vLLM's time_to_first_token_seconds buckets (vllm/v1/metrics/buckets.py, 0.32), so its
# dashboards read ours the same: from 1 ms (a cached continuation) to 43 minutes
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)
TTFT_BUCKETS += (7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
# vLLM's INTER_TOKEN_LATENCY_BUCKETS (ITL and per-request TPOT) and REQUEST_LATENCY_BUCKETS
# (e2e and queue time), vllm/v1/metrics/buckets.py, 0.32
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0)
ITL_BUCKETS += (7.5, 10.0, 20.0, 40.0, 80.0)
REQUEST_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0)
REQUEST_BUCKETS += (50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
ENGINE = "0"  # vLLM's engine label: one engine per server
MAX_CLOCKS = 4096  # calls whose timings are kept (failed calls never reach call_done)


def token_buckets(max_model_len: int) -> list[float]:
    """vLLM's request_tokens buckets: 1, 2, 5, 10, 20, 50, ... up to ``max_model_len``."""
    out, scale = [], 1
    while True:
        for m in (1, 2, 5):
            if m * scale > max_model_len:
                return out
            out.append(float(m * scale))
        scale *= 10


@dataclass(slots=True)
class _Clock:
    """One call's timings (monotonic seconds) and the job's counters when it started."""

    accepted: float
    job: Any  # the scheduler's Job (kept: the job may retire before the call concludes)
    computed0: int
    waited0: float
    first: float | None = None
    last: float | None = None


class _Both:
    """``observe`` on several histograms (our TTFT and vLLM's, fed by the app)."""

    def __init__(self, *targets: Any) -> None:
        self.targets = targets

    def observe(self, value: float) -> None:
        for target in self.targets:
            target.observe(value)


class CallMetrics:
    """vLLM's request counters and histograms (labels ``model_name``, ``engine``)."""

    def __init__(self, registry: CollectorRegistry, model_name: str, max_model_len: int) -> None:
        r, self.model_name = registry, model_name
        self._clocks: dict[Any, _Clock] = {}  # by engine request (engine thread only)
        self._tool_since: dict[str, float] = {}  # job id -> end of its last call
        self.tool_wait = Histogram(
            "astraea_tool_wait_seconds",
            "Time a job spent between the end of a call and its next call (tool or client)",
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        labels = ["model_name", "engine"]

        def vllm(kind: type, name: str, doc: str, **kw: Any) -> Any:
            return kind(name, doc, labels, registry=r, **kw).labels(model_name, ENGINE)

        ours = Histogram(
            "astraea_time_to_first_token_seconds",
            "Request arrival to first token",
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        theirs = vllm(
            Histogram,
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            buckets=TTFT_BUCKETS,
        )
        self.ttft = _Both(ours, theirs)  # observed by the app when a call's first token leaves
        self.prompt_tokens = vllm(
            Counter, "vllm:prompt_tokens", "Number of prefill tokens processed."
        )
        self.generation_tokens = vllm(
            Counter, "vllm:generation_tokens", "Number of generation tokens processed."
        )
        self.prefix_queries = vllm(
            Counter,
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
        )
        self.prefix_hits = vllm(
            Counter,
            "vllm:prefix_cache_hits",
            "Prefix cache hits, in terms of number of cached tokens.",
        )
        self.success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*labels, "finished_reason"],
            registry=r,
        )
        self.itl = vllm(
            Histogram,
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            buckets=ITL_BUCKETS,
        )
        self.tpot = vllm(
            Histogram,
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            buckets=ITL_BUCKETS,
        )
        self.e2e = vllm(
            Histogram,
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            buckets=REQUEST_BUCKETS,
        )
        self.queue_time = vllm(
            Histogram,
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            buckets=REQUEST_BUCKETS,
        )
        tokens = token_buckets(max_model_len)
        self.request_prompt = vllm(
            Histogram, "vllm:request_prompt_tokens", "Number of prefill tokens processed.",
            buckets=tokens,
        )  # fmt: skip
        self.request_generation = vllm(
            Histogram, "vllm:request_generation_tokens", "Number of generation tokens processed.",
            buckets=tokens,
        )  # fmt: skip

    # ---- per-call timings, on the engine thread ----------------------------------------------
    def call_started(self, request: Any, job: Any, accepted: float) -> None:
        """A call entered the engine (``job``: the scheduler's Job, after submission)."""
        now = time.monotonic()
        since = self._tool_since.pop(job.job_id, None)
        if since is not None:
            self.tool_wait.observe(max(0.0, accepted - since))
        if len(self._clocks) >= MAX_CLOCKS:
            del self._clocks[next(iter(self._clocks))]  # the oldest: a call that failed
        self._clocks[request] = _Clock(
            min(accepted, now), job, job.num_computed_total, job.total_waiting_time
        )

    def tokens_sent(self, request: Any) -> None:
        """New tokens of ``request`` were handed to its client (once per engine step)."""
        clock = self._clocks.get(request)
        if clock is None:
            return
        now = time.monotonic()
        if clock.last is not None:
            self.itl.observe(now - clock.last)
        else:
            clock.first = now
        clock.last = now

    def call_done(self, request: Any, output: Any, prompt_tokens: int) -> None:
        """The call ended with ``output``; ``prompt_tokens``: its whole context before it."""
        clock = self._clocks.pop(request, None)
        now = time.monotonic()
        generated = len(output.token_ids)
        self.prompt_tokens.inc(prompt_tokens)
        self.generation_tokens.inc(generated)
        self.request_prompt.observe(prompt_tokens)
        self.request_generation.observe(generated)
        self.success.labels(self.model_name, ENGINE, output.finish_reason).inc()
        self._tool_since[output.job_id] = now
        if clock is None:
            return
        self.e2e.observe(now - clock.accepted)
        self.queue_time.observe(max(0.0, clock.job.total_waiting_time - clock.waited0))
        if clock.first is not None and clock.last is not None and generated > 1:
            self.tpot.observe((clock.last - clock.first) / (generated - 1))
        # prefill work = compute during the call minus its decode steps (one per token after
        # the first); the rest of the prompt was found in the KV cache
        prefilled = clock.job.num_computed_total - clock.computed0 - max(0, generated - 1)
        self.prefix_queries.inc(prompt_tokens)
        self.prefix_hits.inc(min(prompt_tokens, max(0, prompt_tokens - prefilled)))

    def forget(self, job_id: str) -> None:
        """The job ended: no tool wait to time any more."""
        self._tool_since.pop(job_id, None)


def vllm_engine_families(model: str, s: dict[str, Any]) -> Iterator[Metric]:
    """vLLM's scheduler gauges and preemption counter, from the engine snapshot."""
    labels, values = ["model_name", "engine"], [model, ENGINE]
    blocks = s["device_blocks"]
    for name, doc, value in (
        ("vllm:num_requests_running", "Number of requests in model execution batches.",
         s["running"]),
        ("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
         sum(s["waiting_by_level"].values())),
        ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
         (blocks - s["device_free"]) / blocks if blocks else 0.0),
    ):  # fmt: skip
        g = GaugeMetricFamily(name, doc, labels=labels)
        g.add_metric(values, value)
        yield g
    c = CounterMetricFamily(
        "vllm:num_preemptions", "Cumulative number of preemption from the engine.", labels=labels
    )
    c.add_metric(values, s["preemptions"])
    yield c
