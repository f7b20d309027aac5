"""Scheduler + Python overhead per engine step, at batch 32 on SmolLM2-135M.

The engine's wall time per plan (``schedule -> forward passes -> sample -> update``) minus
the time inside model forward passes is what the scheduler, batch building, sampling and the
Python around them cost. Target (issue 4): under 10% of the step at batch 32. Workload: 32
chat prompts decoded to a forced 128 tokens, greedy, under each policy; medians of repeats.

    python benchmarks/engine_overhead.py [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

QUESTIONS = [
    "What is the capital of France?",
    "Explain photosynthesis in one paragraph.",
    "Write a haiku about the sea.",
    "How do I reverse a list in Python?",
    "What causes the seasons on Earth?",
    "Give me three tips for better sleep.",
    "Summarise the plot of Hamlet.",
    "What is a prime number?",
]


def chat_prompts(tokenizer, n: int) -> list[list[int]]:
    """``n`` short chat prompts (~40-60 tokens with the template's system turn)."""
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"{QUESTIONS[i % len(QUESTIONS)]} (case {i})"}]
        )
        for i in range(n)
    ]


def run_once(checkpoint, policy: str, prompts: list[list[int]], tokens: int) -> dict:
    from astraea.engine import Engine, EngineConfig, SamplingParams

    engine = Engine(checkpoint, EngineConfig(dtype="float32", num_gpu_blocks=512), policy=policy)
    params = SamplingParams(max_tokens=tokens, min_tokens=tokens)
    engine.generate(prompts[:2], SamplingParams(max_tokens=4, min_tokens=4))  # warm-up
    engine.busy_seconds = engine.runner.forward_seconds = 0.0
    engine.num_plans = engine.num_steps = 0
    engine.generate(prompts, params)
    stats = engine.stats()
    stats["ms_per_plan"] = 1e3 * stats["busy_seconds"] / max(stats["plans"], 1)
    stats["overhead_ms_per_plan"] = stats["ms_per_plan"] * stats["overhead_fraction"]
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--policies", default="astraea,vllm-fcfs")
    args = parser.parse_args()

    import torch

    from astraea.engine import load_checkpoint

    torch.set_num_threads(args.threads)
    checkpoint = load_checkpoint()
    prompts = chat_prompts(checkpoint.tokenizer, args.batch)
    results = {}
    for policy in args.policies.split(","):
        runs = [run_once(checkpoint, policy, prompts, args.tokens) for _ in range(args.repeats)]
        fractions = [r["overhead_fraction"] for r in runs]
        results[policy] = {
            "overhead_fraction_median": statistics.median(fractions),
            "overhead_ms_per_plan_median": statistics.median(
                r["overhead_ms_per_plan"] for r in runs
            ),
            "ms_per_plan_median": statistics.median(r["ms_per_plan"] for r in runs),
            "target_fraction": 0.10,
            "passes": statistics.median(fractions) < 0.10,
            "runs": runs,
        }
        print(
            f"{policy}: overhead {100 * statistics.median(fractions):.1f}% of "
            f"{results[policy]['ms_per_plan_median']:.0f} ms per plan"
        )
    write_result(
        "engine_overhead",
        {
            "model": "SmolLM2-135M-Instruct (bundled GGUF), float32",
            "workload": f"{args.batch} chat prompts x {args.tokens} forced tokens, greedy",
            "threads": args.threads,
            "mean_prompt_tokens": statistics.mean(len(p) for p in prompts),
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
