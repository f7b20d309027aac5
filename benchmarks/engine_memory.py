"""Memory over a 1,000-request agent run on SmolLM2-135M: RSS stays flat, no KV block leaks.

Agent jobs of 1-3 calls run through the real engine under the astraea policy with a small
device pool and a host tier, so the run preserves, swaps, discards and recomputes KV.
Between calls a job waits a random number of engine steps (its "tool"); one job in ten is
abandoned in its tool wait (``finish_job``). Up to ``--concurrency`` calls are in flight.
RSS is sampled (after ``gc.collect``) every 50 finished requests; the result reports its
growth over the second half of the run, the KV pool's fixed size, and the block accounting
at the end (every block free or in the evictable prefix cache, integrity checks pass).

    python benchmarks/engine_memory.py [--requests 1000] [--threads 1]
    python benchmarks/engine_memory.py --serve-start   # RSS of `astraea serve` after start
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import rss_mb, slope_per_1000, write_result

WORDS = [
    "agent",
    "tool",
    "result",
    "search",
    "weather",
    "file",
    "code",
    "query",
    "answer",
    "plan",
    "step",
    "data",
    "value",
]


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def run(args: argparse.Namespace) -> dict:
    from astraea.engine import Engine, EngineConfig, SamplingParams, load_checkpoint

    rng = random.Random(args.seed)
    checkpoint = load_checkpoint()
    config = EngineConfig(
        dtype="float32", num_gpu_blocks=args.gpu_blocks, num_cpu_blocks=args.cpu_blocks
    )
    engine = Engine(checkpoint, config, policy=args.policy)
    pool_bytes = engine.runner.pool.device_cache.nbytes
    params = SamplingParams(max_tokens=args.tokens, min_tokens=args.tokens)
    waiting: dict[str, int] = {}  # job in tool wait -> steps left
    calls_left: dict[str, int] = {}
    active: set[str] = set()
    submitted = finished = abandoned = next_job = 0
    samples: list[tuple[int, float]] = []

    def submit(job_id: str, prompt: str) -> None:
        nonlocal submitted
        engine.submit(job_id, prompt, params, last=calls_left[job_id] == 1)
        calls_left[job_id] -= 1
        active.add(job_id)
        submitted += 1

    while finished < args.requests:
        while len(active) < args.concurrency and submitted < args.requests:
            job = f"job-{next_job}"
            next_job += 1
            calls_left[job] = min(rng.randint(1, 3), args.requests - submitted)
            user = text(rng, rng.randint(8, 24))
            submit(job, engine.tokenizer.apply_chat_template([{"role": "user", "content": user}]))
        for req in engine.step():
            active.discard(req.job_id)
            finished += 1
            if calls_left[req.job_id] == 0:
                del calls_left[req.job_id]
            elif rng.random() < 0.1:  # the agent gives up while its tool runs
                engine.finish_job(req.job_id)
                abandoned += 1
                del calls_left[req.job_id]
            else:
                waiting[req.job_id] = rng.randint(0, 6)
            if finished % 50 == 0:
                gc.collect()
                samples.append((finished, rss_mb()))
        for job in list(waiting):
            waiting[job] -= 1
            if waiting[job] < 0 and submitted < args.requests:
                del waiting[job]
                submit(job, f"<tool>{text(rng, rng.randint(4, 12))}</tool>")
        if engine.stalled:
            raise RuntimeError("engine stalled")
    for job in list(waiting):  # tool results that would exceed the request budget
        engine.finish_job(job)
        abandoned += 1
    kv = engine.scheduler.kv
    engine.check_integrity()
    kv.check_integrity()
    second_half = [p for p in samples if p[0] > args.requests // 2]
    slope = slope_per_1000(second_half)
    leaked = kv.num_owned_device_blocks + (kv.host.num_used if kv.host else 0)
    return {
        "requests": finished,
        "jobs": next_job,
        "abandoned_in_tool_wait": abandoned,
        "rss_mb": samples,
        "rss_first_mb": samples[0][1],
        "rss_last_mb": samples[-1][1],
        "rss_growth_second_half_mb_per_1000_requests": slope,
        "kv_pool_bytes_start": pool_bytes,
        "kv_pool_bytes_end": engine.runner.pool.device_cache.nbytes,
        "jobs_left_in_scheduler": len(engine.scheduler.jobs),
        "blocks_owned_at_end": leaked,
        "blocks_in_prefix_cache_at_end": kv.num_cached_blocks,
        "counters": {
            "preemptions": engine.scheduler.counters.preemptions,
            "recomputed_tokens": engine.scheduler.counters.recomputed_tokens,
            "swapped_out_blocks": engine.scheduler.counters.swapped_out_blocks,
            "swapped_in_blocks": engine.scheduler.counters.swapped_in_blocks,
            "kv_actions": engine.scheduler.counters.kv_actions,
        },
        "engine": engine.stats(),
    }


def serve_rss(args: argparse.Namespace) -> dict:
    """``astraea serve`` (default model and pool) as its own process: RSS once /health
    answers, then after one chat completion of 32 tokens."""
    import subprocess
    import tempfile

    import httpx
    from _process import stop, wait_healthy

    port = args.port
    log = Path(tempfile.mkdtemp(prefix="astraea-rss-")) / "serve.log"
    script = Path(sys.executable).with_name("astraea")  # the console script beside python
    cmd = [str(script), "serve", "--port", str(port), "--policy", args.policy]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        startup = wait_healthy(proc, f"http://127.0.0.1:{port}/health", 300, log, 0.5)
        time.sleep(2.0)  # let start-up garbage settle
        after_start = _process_rss_mb(proc.pid)
        body = {
            "model": "SmolLM2-135M-Instruct",
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 32,
        }
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=300)
        answer.raise_for_status()
        after_request = _process_rss_mb(proc.pid)
    finally:
        stop(proc)
    return {
        "serve_command": " ".join(["astraea", *cmd[1:]]),
        "startup_s": startup,
        "rss_after_start_mb": after_start,
        "rss_after_one_request_mb": after_request,
        "target_mb": 1024,
        "passes": after_start <= 1024,
    }


def _process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--serve-start",
        action="store_true",
        help="only the RSS of `astraea serve` after start and after one request "
        "(results/engine_memory_serve.json)",
    )
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=8, help="forced output tokens per call")
    parser.add_argument("--gpu-blocks", type=int, default=96)
    parser.add_argument("--cpu-blocks", type=int, default=64)
    parser.add_argument("--policy", default="astraea")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.serve_start:
        result = serve_rss(args)
        print(
            f"astraea serve: RSS {result['rss_after_start_mb']:.0f} MB after start, "
            f"{result['rss_after_one_request_mb']:.0f} MB after one request: "
            f"{'PASS' if result['passes'] else 'FAIL'} (<= 1024 MB)"
        )
        write_result("engine_memory_serve", result)
        return

    import torch

    torch.set_num_threads(args.threads)
    result = run(args)
    flat = abs(result["rss_growth_second_half_mb_per_1000_requests"]) < 20
    ok = flat and result["blocks_owned_at_end"] == 0 and result["jobs_left_in_scheduler"] == 0
    print(
        f"{result['requests']} requests: RSS {result['rss_first_mb']:.0f} -> "
        f"{result['rss_last_mb']:.0f} MB, second-half slope "
        f"{result['rss_growth_second_half_mb_per_1000_requests']:+.1f} MB/1000 requests, "
        f"blocks owned at end {result['blocks_owned_at_end']}: {'PASS' if ok else 'FAIL'}"
    )
    write_result(
        "engine_memory",
        {
            "model": "SmolLM2-135M-Instruct (bundled GGUF), float32",
            "policy": args.policy,
            "settings": vars(args),
            "target": "flat RSS (|slope| < 20 MB per 1,000 requests over the second half), "
            "0 blocks owned and 0 jobs left at the end",
            "passes": ok,
            **result,
        },
    )


if __name__ == "__main__":
    main()
