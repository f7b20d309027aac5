"""Fuzz and abuse a real ``astraea serve`` process (the bundled SmolLM2-135M by default): no
input may crash it, hang it or grow it, and it must end holding nothing.

Four measurements, in order, on one server subprocess (its stdout and stderr go to a log):

(a) schemathesis over every operation of the server's own /openapi.json: its coverage phase
    (boundary values, wrong types, undocumented methods), then hypothesis-generated bodies,
    positive and negative, until ``--requests`` were sent; every answer is checked against
    the document (status, content type, headers, schema) and counted; afterwards the log's
    tracebacks are counted. Most valid bodies are pointed at the served model (else nearly
    all are a 404) with their output lengths cut to ``--max-tokens-cap`` so the run stays
    minutes long; the rest go as generated. The fuzz loop is the fuzz test's own harness,
    ``tests/fuzzing.py``.
(b) the server's RSS (/proc/PID/status VmRSS) before, during (peak) and after a
    ``--body-mib`` MiB body sent with chunked transfer encoding: the answer must be 413
    and RSS stay within +64 MB.
(c) /health polled every ``--health-interval`` s while ``--prompt-repeats`` chat requests
    carrying ``--prompt-mib`` MiB are sent and handled (refused as too long for the context,
    after tokenizing or before): in one user message (the headline figure), spread over
    many messages, and inside a tool's JSON schema; every /health must answer within 1 s.
(d) /metrics once the server is quiet: 0 running calls and an empty admission queue
    (and, after the job TTL, 0 live jobs and 0 device KV blocks in use).

    python benchmarks/serve_fuzz.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the fuzz harness: tests.fuzzing

from _common import write_result
from _process import stop, wait_healthy

RSS_BUDGET_MB = 64.0
HEALTH_BUDGET_S = 1.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="GGUF or HF directory (default: bundled)")
    p.add_argument("--requests", type=int, default=1000, help="fuzz requests, at least")
    p.add_argument("--seed", type=int, default=0, help="hypothesis seed")
    p.add_argument("--max-tokens-cap", type=int, default=8)
    p.add_argument("--gpu-blocks", type=int, default=64, help="KV blocks (x16 tokens)")
    p.add_argument("--default-max-tokens", type=int, default=8)
    p.add_argument("--job-ttl", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1, help="server torch threads")
    p.add_argument("--request-timeout", type=float, default=60.0)
    p.add_argument("--body-mib", type=int, default=256)
    p.add_argument("--prompt-mib", type=float, default=2.0)
    p.add_argument("--prompt-repeats", type=int, default=3)
    p.add_argument("--health-interval", type=float, default=0.05)
    return p.parse_args()


# ---- the server ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``astraea serve`` in a subprocess on a free loopback port; output to ``log_path``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.command = [
            sys.executable, "-m", "astraea.cli", "serve", "--port", str(self.port),
            "--log-level", "warning", "--gpu-blocks", str(args.gpu_blocks),
            "--default-max-tokens", str(args.default_max_tokens),
            "--job-ttl", str(args.job_ttl), "--threads", str(args.threads),
        ]  # fmt: skip
        if args.model:
            self.command += ["--model", args.model]
        self.log_path = Path(tempfile.mkstemp(prefix="serve-fuzz-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    def __enter__(self) -> Server:
        with self.log_path.open("wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | {"HF_HUB_OFFLINE": "1"},
            )
        self.startup_seconds = wait_healthy(
            self.process, self.root + "/health", 300.0, self.log_path, poll=0.2
        )
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.process)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_mb(self) -> float:
        """The server's resident memory, MiB (VmRSS)."""
        assert self.process is not None
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def tracebacks(log: str) -> Counter[str]:
    """Tracebacks in the log, by their final line (the exception raised)."""
    found: Counter[str] = Counter()
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("Traceback (most recent call last)"):
            continue
        for after in lines[i + 1 :]:
            if after and not after[0].isspace() and not after.startswith("Traceback"):
                found[after[:200]] += 1
                break
    return found


# ---- (a) the fuzz (its harness: tests/fuzzing.py) -------------------------------------------
def fuzz(server: Server, model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Coverage cases, then rounds of hypothesis examples (each round the requests still
    short, shared out over the operations) until ``--requests`` were sent: statuses,
    failures by kind with an example of each, RSS."""
    from tests.fuzzing import Fuzzer

    rss_start = server.rss_mb()
    fuzzer = Fuzzer(
        server.root, model, max_tokens_cap=args.max_tokens_cap, timeout=args.request_timeout
    )
    report = fuzzer.run(at_least=args.requests, seed=args.seed)
    failures: Counter[str] = Counter()  # by "kind | route (phase, mode)", any status
    failure_examples: dict[str, dict[str, Any]] = {}
    for (kind, label, status), n in report.failures.items():
        failures[f"{kind} | {label}"] += n
        failure_examples.setdefault(f"{kind} | {label}", report.examples[kind, label, status])
    return {
        "requests_sent": report.total,
        "seconds": round(report.seconds, 1),
        "by_route_and_status": report.by_route_and_status(),
        "failures_by_kind": report.by_kind(),
        "failures": dict(sorted(failures.items())),
        "failure_examples": failure_examples,
        "server_alive_after": server.alive,
        "rss_start_mb": round(rss_start, 1),
        "rss_after_mb": round(server.rss_mb(), 1),
        "target": f">= {args.requests} requests, no failure of any kind",
        "passes": report.total >= args.requests and not report.failures,
    }


# ---- (b) a huge chunked body -----------------------------------------------------------------
def big_body(server: Server, model: str, mib: int) -> dict[str, Any]:
    """POST ``mib`` MiB, chunked (a generator body), while sampling the server's RSS."""
    import httpx

    before = server.rss_mb()
    peak, stop = [before], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                peak[0] = max(peak[0], server.rss_mb())
            time.sleep(0.02)

    sent = [0]

    def body() -> Iterator[bytes]:
        yield b'{"model": "' + model.encode() + b'", "messages": [{"role": "user", "content": "'
        chunk = b"a" * (1 << 20)
        for _ in range(mib):
            sent[0] += len(chunk)
            yield chunk
        yield b'"}]}'

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    status: int | None = None
    error = answer = None
    try:
        with httpx.Client(timeout=120) as http:
            response = http.post(
                server.root + "/v1/chat/completions",
                content=body(),
                headers={"Content-Type": "application/json"},
            )
            status, answer = response.status_code, response.text[:300]
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    time.sleep(1.0)  # let the server settle before the "after" reading
    stop.set()
    sampler.join()
    after = server.rss_mb()
    grew = max(peak[0], after) - before
    return {
        "body_mib": mib,
        "sent_mib_before_answer": round(sent[0] / 2**20, 1),
        "status": status,
        "answer": answer,
        "client_error": error,
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(peak[0], 1),
        "rss_after_mb": round(after, 1),
        "rss_growth_mb": round(grew, 1),
        "target": f"413 and RSS within +{RSS_BUDGET_MB:.0f} MB",
        "passes": status == 413 and grew <= RSS_BUDGET_MB,
    }


# ---- (c) /health under a huge prompt ---------------------------------------------------------
def big_prompts(model: str, mib: float) -> dict[str, dict[str, Any]]:
    """Chat bodies carrying ``mib`` MiB: in one user message (the case to measure), across
    many messages, and inside a tool's JSON schema (which the template renders too)."""
    size = int(mib * 2**20)
    sentence = "The quick brown fox jumps over the lazy dog. "
    text = (sentence * (size // len(sentence) + 1))[:size]
    piece = 1024
    many = [
        {
            "role": "user" if i % 2 == 0 else "assistant",
            "content": text[i * piece : (i + 1) * piece],
        }
        for i in range(size // piece)
    ]
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "look a word up",
            "parameters": {"type": "object", "properties": {"q": {"description": text}}},
        },
    }
    hello = [{"role": "user", "content": "hello"}]
    base = {"model": model, "max_tokens": 4}
    return {
        "one_message": {**base, "messages": [{"role": "user", "content": text}]},
        "many_messages": {**base, "messages": [*many, *hello]},
        "tool_schema": {**base, "messages": hello, "tools": [tool]},
    }


class HealthPoller(threading.Thread):
    """GET /health every ``interval`` s until stopped: each answer's latency and status."""

    def __init__(self, root: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.done = threading.Event()

    def run(self) -> None:
        import httpx

        with httpx.Client(timeout=30) as http:
            while not self.done.is_set():
                t = time.monotonic()
                try:
                    self.statuses[str(http.get(self.root + "/health").status_code)] += 1
                except httpx.HTTPError as exc:
                    self.statuses[type(exc).__name__] += 1
                self.latencies.append(time.monotonic() - t)
                time.sleep(self.interval)


def health_under_big_prompt(
    server: Server, model: str, mib: float, repeats: int, interval: float
) -> dict[str, Any]:
    """For each big prompt: poll /health from one thread while this one sends the prompt
    ``repeats`` times; the latencies of the polls meanwhile."""
    import httpx

    variants: dict[str, Any] = {}
    for name, body in big_prompts(model, mib).items():
        poller = HealthPoller(server.root, interval)
        poller.start()
        time.sleep(0.3)
        calls = []
        with httpx.Client(timeout=300) as http:
            for _ in range(repeats):
                t = time.monotonic()
                try:
                    r = http.post(server.root + "/v1/chat/completions", json=body)
                    outcome: dict[str, Any] = {"status": r.status_code, "answer": r.text[:200]}
                except httpx.HTTPError as exc:
                    outcome = {"status": None, "error": f"{type(exc).__name__}: {exc}"}
                calls.append({**outcome, "seconds": round(time.monotonic() - t, 2)})
        time.sleep(0.3)
        poller.done.set()
        poller.join()
        latencies, statuses = poller.latencies, poller.statuses
        slow = sum(x > HEALTH_BUDGET_S for x in latencies)
        variants[name] = {
            "prompt_calls": calls,
            "health_polls": len(latencies),
            "health_statuses": dict(statuses),
            "health_max_s": round(max(latencies), 3),
            "health_median_s": round(statistics.median(latencies), 4),
            "health_over_1s": slow,
            "passes": slow == 0 and set(statuses) == {"200"},
        }
    main = variants["one_message"]
    return {
        "prompt_mib": mib,
        "health_max_s": main["health_max_s"],
        "health_median_s": main["health_median_s"],
        "variants": variants,
        "target": f"every /health within {HEALTH_BUDGET_S:.0f} s (every variant)",
        "passes": all(v["passes"] for v in variants.values()),
    }


# ---- (d) the state afterwards ----------------------------------------------------------------
def scrape(root: str) -> dict[str, float]:
    import httpx

    out: dict[str, float] = {}
    for line in httpx.get(root + "/metrics", timeout=30).text.splitlines():
        m = re.match(r"^(astraea_[a-z_]+)(\{[^}]*\})? ([-+0-9.eEinfNa]+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def quiet_state(server: Server, ttl: float) -> dict[str, Any]:
    """/metrics once nothing runs (at most 30 s), then after the job TTL has passed."""
    deadline = time.monotonic() + 30
    while True:
        m = scrape(server.root)
        quiet = m.get("astraea_running_calls") == 0 and m.get("astraea_admission_queue") == 0
        if quiet or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    deadline = time.monotonic() + ttl + 15
    while True:  # tool-waiting jobs the fuzz left are reclaimed at the TTL
        later = scrape(server.root)
        if later.get("astraea_live_jobs") == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    five_xx = {k: v for k, v in later.items() if "requests_total" in k and 'status="5' in k}
    used = next(
        (v for k, v in later.items() if "kv_blocks{" in k and 'tier="device"' in k and "used" in k),
        None,
    )
    return {
        "running_calls": m.get("astraea_running_calls"),
        "admission_queue": m.get("astraea_admission_queue"),
        "live_jobs_after_ttl": later.get("astraea_live_jobs"),
        "device_blocks_used_after_ttl": used,
        "requests_5xx_total": five_xx,
        "target": "0 running calls and 0 in the admission queue",
        "passes": quiet,
    }


def main() -> None:
    args = parse_args()
    import httpx

    started = time.monotonic()
    with Server(args) as server:
        model = httpx.get(server.root + "/v1/models", timeout=10).json()["data"][0]["id"]
        fuzz_result = fuzz(server, model, args)
        body = big_body(server, model, args.body_mib)
        health = health_under_big_prompt(
            server, model, args.prompt_mib, args.prompt_repeats, args.health_interval
        )
        state = quiet_state(server, args.job_ttl)
        alive = server.alive
    log = server.log_text()
    found = tracebacks(log)
    log_errors = [line[:300] for line in log.splitlines() if "ERROR" in line]
    passes = {
        "fuzz": fuzz_result["passes"],
        "no_tracebacks": not found,
        "big_body": body["passes"],
        "health": health["passes"],
        "quiet_state": state["passes"],
        "server_alive": alive,
    }
    worst = max(v["health_max_s"] for v in health["variants"].values())
    print(
        f"fuzz: {fuzz_result['requests_sent']} requests in {fuzz_result['seconds']:.0f} s, "
        f"failures {fuzz_result['failures_by_kind']}; "
        f"log tracebacks {sum(found.values())}; "
        f"{args.body_mib} MiB body -> {body['status']}, RSS +{body['rss_growth_mb']} MB; "
        f"/health max {health['health_max_s']} s (median {health['health_median_s']} s) "
        f"under a {args.prompt_mib} MiB prompt (worst variant {worst} s); "
        f"after: running {state['running_calls']}, "
        f"queue {state['admission_queue']}, jobs {state['live_jobs_after_ttl']}: "
        f"{'PASS' if all(passes.values()) else 'FAIL'} {passes}"
    )
    path = write_result(
        "serve_fuzz",
        {
            "model": f"{model} ({args.model or 'bundled GGUF'}), astraea policy",
            "settings": vars(args),
            "server_command": " ".join(server.command),
            "server_log": str(server.log_path),
            "server_startup_s": round(server.startup_seconds, 1),
            "wall_s": round(time.monotonic() - started, 1),
            "fuzz": fuzz_result,
            "log_tracebacks": sum(found.values()),
            "log_tracebacks_by_exception": dict(found),
            "log_error_lines": log_errors[:20],
            "big_chunked_body": body,
            "health_under_big_prompt": health,
            "after": state,
            "passes": passes,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
