"""Soak: agent traffic against our server for ``--minutes`` with clients that disconnect
mid-stream and agents that abandon their tool waits; it must end with zero leaked KV blocks,
no job left and flat memory.

Jobs arrive Poisson at ``--rate``; each runs 1-3 chat calls over a growing context (header
job identity). With probability ``--disconnect`` a call's client closes the stream after its
first tokens (the job is then gone); with probability ``--abandon`` a job never sends its
next call after a tool wait, so only the server's TTL (``--ttl`` seconds) reclaims its KV.
RSS of the process (server, engine and clients share it) is sampled every 15 s.

    python benchmarks/serve_soak.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import rss_mb, slope_per_1000, write_result

MODEL = "SmolLM2-135M-Instruct"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=0.5, help="jobs per second")
    p.add_argument("--disconnect", type=float, default=0.1)
    p.add_argument("--abandon", type=float, default=0.15)
    p.add_argument("--ttl", type=float, default=20.0)
    p.add_argument("--gpu-blocks", type=int, default=128)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


async def job(http, url: str, job_id: str, rng: random.Random, args, counts: dict) -> None:
    from astraea.loadgen.text import synthetic_text

    calls = rng.randint(1, 3)
    messages: list[dict[str, str]] = []
    for i in range(calls):
        prefix = "" if i == 0 else "Tool result: "
        size = rng.randint(30, 200) if i == 0 else rng.randint(10, 60)
        messages.append({"role": "user", "content": prefix + synthetic_text(size, f"{job_id}/{i}")})
        out = rng.randint(8, 48)
        body = {
            "model": MODEL, "messages": messages, "max_tokens": out, "min_tokens": out,
            "ignore_eos": True, "stream": True, "astraea_last": i == calls - 1,
        }  # fmt: skip
        drop = rng.random() < args.disconnect
        parts: list[str] = []
        try:
            async with http.stream(
                "POST", url, json=body, headers={"X-Astraea-Job-Id": job_id}, timeout=600
            ) as response:
                if response.status_code != 200:
                    counts[f"http_{response.status_code}"] += 1
                    return
                async for line in response.aiter_lines():
                    if line.startswith("data:") and '"content"' in line:
                        parts.append(line)
                        if drop and len(parts) >= 2:
                            counts["disconnected"] += 1
                            return  # leaving the block closes the connection mid-stream
        except Exception as exc:  # a broken call is counted, the soak goes on
            counts[f"error_{type(exc).__name__}"] += 1
            return
        counts["calls"] += 1
        messages.append({"role": "assistant", "content": f"answer {i}"})
        if i < calls - 1:
            if rng.random() < args.abandon:
                counts["abandoned"] += 1
                return
            await asyncio.sleep(rng.uniform(0.5, 4.0))
    counts["completed"] += 1


async def traffic(url: str, args, snapshot, samples: list, counts: dict) -> None:
    import httpx

    rng = random.Random(args.seed)
    start = time.monotonic()
    end = start + 60 * args.minutes
    tasks: set[asyncio.Task] = set()
    next_sample = start
    async with httpx.AsyncClient(timeout=600) as http:
        n = 0
        while time.monotonic() < end:
            if time.monotonic() >= next_sample:
                snap = await asyncio.to_thread(lambda: snapshot().result(30))
                samples.append((time.monotonic() - start, rss_mb(), snap["jobs"]))
                next_sample += 15
            task = asyncio.create_task(job(http, url, f"soak-{n}", rng, args, counts))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            await asyncio.sleep(rng.expovariate(args.rate))
        counts["jobs"] = n
        await asyncio.gather(*tasks)


def main() -> None:
    args = parse_args()
    from astraea.engine import Engine, EngineConfig, load_checkpoint
    from astraea.server import ServerConfig, create_app
    from astraea.server.background import BackgroundServer

    config = EngineConfig(
        dtype="float32",
        num_gpu_blocks=args.gpu_blocks,
        num_cpu_blocks=128,
        num_threads=1,
        num_workers=args.threads,
    )
    engine = Engine(
        load_checkpoint(),
        config,
        "astraea",
        scheduler_overrides={"max_num_seqs": 16, "max_num_batched_tokens": 512},
    )
    app = create_app(engine, ServerConfig(served_model_name=MODEL, job_ttl=args.ttl))
    counts: dict = __import__("collections").Counter()
    samples: list[tuple[float, float, int]] = []
    with BackgroundServer(app) as server:
        snapshot = app.state.service.worker.snapshot
        asyncio.run(traffic(server.url + "/chat/completions", args, snapshot, samples, counts))
        deadline = time.monotonic() + args.ttl + 30  # abandoned jobs wait out the TTL
        while True:
            final = snapshot().result(30)
            if final["jobs"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
    engine.check_integrity()
    half = [(t, rss) for t, rss, _ in samples if t >= 30 * args.minutes]
    slope = slope_per_1000(half) if len(half) >= 3 else None
    leaked = (
        final["device_blocks"] - final["device_free"] + final["host_blocks"] - final["host_free"]
    )
    ok = final["jobs"] == 0 and leaked == 0 and slope is not None and abs(slope) < 50
    print(
        f"{counts['jobs']} jobs, {counts['calls']} calls, {counts['disconnected']} disconnects, "
        f"{counts['abandoned']} abandoned; jobs left {final['jobs']}, leaked blocks {leaked}, "
        f"RSS {samples[0][1]:.0f} -> {samples[-1][1]:.0f} MB "
        f"(second half {slope if slope is None else round(slope, 1)} MB per 1000 s): "
        f"{'PASS' if ok else 'FAIL'}"
    )
    write_result(
        "serve_soak",
        {
            "model": f"{MODEL} (bundled GGUF), float32, astraea policy",
            "settings": vars(args),
            "counts": dict(counts),
            "final_state": final,
            "leaked_blocks": leaked,
            "rss_samples_s_mb_jobs": samples,
            "rss_slope_second_half_mb_per_1000s": slope,
            "target": "0 jobs and 0 blocks left after the TTL; |RSS slope| < 50 MB per 1000 s",
            "passes": ok,
        },
    )


if __name__ == "__main__":
    main()
