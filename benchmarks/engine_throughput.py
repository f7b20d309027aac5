"""Decode throughput of our engine beside transformers and vLLM, in one run (issue 4).

SmolLM2-135M-Instruct, a batch of 32 different chat prompts (~54 tokens through the model's
chat template), greedy, 128 forced new tokens each (EOS ignored). The same token ids go to
(a) our ``Engine`` in process, (b) transformers ``generate()`` (left padding,
``min_new_tokens``) and (c) vLLM's offline ``LLM`` (eager) in a child process with the
``.venv-vllm`` interpreter (benchmarks/setup_vllm.sh). transformers and vLLM read the model
from a Hugging Face directory that ``astraea convert-gguf`` writes from the bundled GGUF (made
on first use, float32: the exact dequantized weights); every engine computes in ``--dtype``.

Only generation is timed (model loading and one short warm-up per engine are not). Repeats
are interleaved (ours, HF, vLLM, ours, ...) so that noise on the shared machine hits all
engines alike; the result is the median. Every engine gets ``--threads`` torch threads.
Greedy tokens are compared between engines (agreement of the first ``--agree-tokens``), never
failed on: ties flip between kernels, more so in bf16.

    python benchmarks/engine_throughput.py [--dtype float32,bfloat16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import write_result
from _vllm_offline import VLLMChild, vllm_missing

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = (
    "What is the capital of France, and why did that city become the center of the country?",
    "How do green plants turn sunlight, water and air into chemical energy they can store?",
    "Can you explain in simple words why the sky looks blue by day but red at sunset?",
    "What are three good daily habits that help a student stay focused while studying?",
    "Why do we have seasons on Earth, and why are they reversed in the two hemispheres?",
    "How does a refrigerator keep food cold inside when the room around it is warm?",
    "What is the difference between a virus and a bacterium, and do antibiotics work on both?",
    "Could you give me a short recipe for a simple tomato soup that takes thirty minutes?",
    "Why does ice float on top of water when most solids sink in their own liquid form?",
    "How do airplanes stay up in the air even though they are made of heavy metal?",
    "What should a beginner know before planting a small vegetable garden on a balcony?",
    "Explain how a bill becomes a law in a typical parliament, step by step, for a child.",
    "What causes thunder and lightning, and why do we see the flash before the sound?",
    "How can I write a polite email to my teacher asking for one more week for my essay?",
    "Why do cats purr, and does purring always mean that the cat is happy and relaxed?",
    "What are the main differences between renewable and non-renewable energy sources?",
    "How does the human heart pump blood around the body, and what do its chambers do?",
    "Give me some tips for saving money each month when I live alone in an expensive city.",
    "Why do leaves change color in autumn, and where do the red and yellow colors come from?",
    "How does a computer store numbers and letters using only zeros and ones in memory?",
    "What is the water cycle, and how does rain on the mountains reach the sea again?",
    "Can you suggest a fun indoor activity for a group of children on a rainy afternoon?",
    "Why is regular exercise important for our health, and how much do experts recommend?",
    "How do bees make honey from flowers, and why is their work important for our crops?",
    "What is the difference between weather and climate, and why do scientists study both?",
    "Explain why the moon seems to change its shape during the month although it is round.",
    "How should I prepare for a job interview at a small company if I feel very nervous?",
    "What makes a volcano erupt, and can scientists predict when the next eruption happens?",
    "Why do we need to sleep every night, and what happens to the brain while we sleep?",
    "How did sailors navigate across the oceans before satellites and modern compasses?",
    "What are some simple ways to reduce plastic waste at home without spending much money?",
    "Why does bread rise when it is baked, and what job does the yeast do in the dough?",
)
SUFFIX = " Please answer in a few sentences."  # brings the mean prompt to ~54 tokens

# (prompts, max_tokens) -> (seconds, generated ids per prompt)
Run = Callable[[list[list[int]], int], tuple[float, list[list[int]]]]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtype", default="float32", help="float32, bfloat16 or both (comma list)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=32, help=f"prompts (at most {len(QUESTIONS)})")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--warmup-tokens", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--policy", default="vllm-fcfs", help="our engine's scheduling policy")
    p.add_argument("--engines", default="ours,hf,vllm")
    p.add_argument("--model-dir", type=Path, default=ROOT / "out" / "smollm2-hf")
    p.add_argument("--vllm-python", type=Path, default=ROOT / ".venv-vllm" / "bin" / "python")
    p.add_argument("--require-vllm", action="store_true", help="fail if vLLM cannot run")
    p.add_argument(
        "--ours-workers", action="store_true", help="ours split over one worker per core"
    )
    p.add_argument("--agree-tokens", type=int, default=8)
    return p.parse_args()


def ensure_hf_dir(path: Path) -> Path:
    """The bundled GGUF as a float32 Hugging Face directory (converted once)."""
    if not (path / "config.json").is_file():
        from astraea.engine.convert import convert_gguf

        print(f"converting the bundled SmolLM2 to {path} ...", flush=True)
        convert_gguf(path, None, dtype="float32", force=True)
    return path


# ---- the engines in process: each returns (what keeps it alive, its run function) ----------
def start_ours(model_dir: Path, dtype: str, args: argparse.Namespace) -> tuple[Any, Run]:
    from astraea.engine import Engine, EngineConfig, SamplingParams

    # one torch team of up to args.threads, sized by the thread governor (as `astraea
    # serve` runs); --ours-workers splits each step over one single-threaded worker per core
    workers = args.threads if args.ours_workers else 1
    config = EngineConfig(dtype=dtype, num_threads=args.threads, num_workers=workers)
    engine = Engine(model_dir, config, policy=args.policy)

    def run(prompts: list[list[int]], max_tokens: int) -> tuple[float, list[list[int]]]:
        params = SamplingParams(max_tokens=max_tokens, min_tokens=max_tokens, ignore_eos=True)
        t0 = time.perf_counter()
        outs = engine.generate(prompts, params)
        return time.perf_counter() - t0, [o.token_ids for o in outs]

    return engine, run


def start_hf(model_dir: Path, dtype: str, args: argparse.Namespace) -> tuple[Any, Run]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    pad = model.generation_config.pad_token_id

    def run(prompts: list[list[int]], max_tokens: int) -> tuple[float, list[list[int]]]:
        width = max(map(len, prompts))
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # left padding
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=pad,
            )
        return time.perf_counter() - t0, out[:, width:].tolist()

    return model, run


STARTERS = {"ours": start_ours, "hf": start_hf}


# ---- measuring ---------------------------------------------------------------------------------
def agreement(a: list[list[int]], b: list[list[int]], k: int) -> dict[str, float]:
    """Share of prompts whose first ``k`` tokens agree, and the mean common prefix length."""
    prefixes = []
    for x, y in zip(a, b, strict=True):
        n = 0
        while n < min(len(x), len(y)) and x[n] == y[n]:
            n += 1
        prefixes.append(n)
    return {
        "first_k": k,
        "fraction": sum(n >= k for n in prefixes) / len(prefixes),
        "mean_common_prefix": statistics.fmean(prefixes),
    }


def start_engines(
    dtype: str, prompts: list[list[int]], args: argparse.Namespace
) -> tuple[dict[str, dict[str, Any]], dict[str, Run], list[Any]]:
    """Load and warm up each engine asked for: (stats per engine, run functions, holders)."""
    model_dir = ensure_hf_dir(args.model_dir)
    stats: dict[str, dict[str, Any]] = {}
    runs: dict[str, Run] = {}
    holders: list[Any] = []
    for name in [e.strip() for e in args.engines.split(",") if e.strip()]:
        if name == "vllm":
            try:
                if missing := vllm_missing(args.vllm_python):
                    raise RuntimeError(missing)
                child = VLLMChild(args.vllm_python, model_dir, dtype, prompts, args)
            except RuntimeError as exc:
                if args.require_vllm:
                    sys.exit(f"engine_throughput: {exc}")
                print(f"{exc}; measuring the others only", flush=True)
                continue
            holders.append(child)
            runs[name] = child.run
            stats[name] = {k: child.ready[k] for k in ("load_s", "warmup_s", "version")}
            continue
        if name not in STARTERS:
            sys.exit(f"engine_throughput: unknown engine {name!r} (ours, hf, vllm)")
        t0 = time.perf_counter()
        holder, run = STARTERS[name](model_dir, dtype, args)
        load_s = time.perf_counter() - t0
        warmup_s, _ = run(prompts, args.warmup_tokens)
        holders.append(holder)
        runs[name] = run
        stats[name] = {"load_s": load_s, "warmup_s": warmup_s}
    return stats, runs, holders


def bench_dtype(dtype: str, prompts: list[list[int]], args: argparse.Namespace) -> dict:
    """All engines at one dtype, repeats interleaved; medians, ratios, token agreement."""
    import torch

    torch.set_num_threads(args.threads)
    stats, runs, holders = start_engines(dtype, prompts, args)
    tokens: dict[str, list[list[int]]] = {}
    new_tokens = len(prompts) * args.max_tokens
    for repeat in range(args.repeats):
        for name, run in runs.items():  # interleaved: ours, hf, vllm, ours, ...
            elapsed, out = run(prompts, args.max_tokens)
            assert all(len(t) == args.max_tokens for t in out), f"{name}: lengths not forced"
            tokens.setdefault(name, out)
            stats[name].setdefault("elapsed_s", []).append(elapsed)
            print(f"  {dtype} repeat {repeat + 1}: {name:5} {new_tokens / elapsed:7.1f} tok/s")
    for holder in holders:
        if isinstance(holder, VLLMChild):
            holder.close()
    del holders, runs
    gc.collect()
    for s in stats.values():
        s["tok_per_s"] = [new_tokens / t for t in s["elapsed_s"]]
        s["tok_per_s_median"] = statistics.median(s["tok_per_s"])
    median = {n: s["tok_per_s_median"] for n, s in stats.items()}
    ratios = {
        f"ours/{o}": median["ours"] / median[o]
        for o in ("vllm", "hf")
        if {o, "ours"} <= set(median)
    }
    names = list(tokens)
    agree = {
        f"{a}~{b}": agreement(tokens[a], tokens[b], min(args.agree_tokens, args.max_tokens))
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    return {"engines": stats, "ratios": ratios, "agreement": agree}


def main() -> None:
    args = parse_args()
    if not 1 <= args.batch <= len(QUESTIONS):
        sys.exit(f"engine_throughput: --batch must be 1..{len(QUESTIONS)}")
    from astraea.engine import load_checkpoint

    tokenizer = load_checkpoint(ensure_hf_dir(args.model_dir)).tokenizer
    assert tokenizer is not None
    prompts = [
        list(tokenizer.apply_chat_template([{"role": "user", "content": q + SUFFIX}]))
        for q in QUESTIONS[: args.batch]
    ]
    results = {}
    for dtype in [d.strip() for d in args.dtype.split(",") if d.strip()]:
        results[dtype] = bench_dtype(dtype, prompts, args)
        r = results[dtype]
        line = ", ".join(f"{n} {s['tok_per_s_median']:.1f}" for n, s in r["engines"].items())
        ratio = ", ".join(f"{k} {v:.2f}" for k, v in r["ratios"].items())
        print(f"{dtype}: tok/s (median of {args.repeats}) {line}; {ratio}", flush=True)
        for pair, a in r["agreement"].items():
            print(
                f"  agreement {pair}: {a['fraction']:.0%} of prompts share the first "
                f"{a['first_k']} tokens, mean common prefix {a['mean_common_prefix']:.1f}"
            )
    path = write_result(
        "engine_throughput",
        {
            "model": "SmolLM2-135M-Instruct (bundled GGUF, converted to float32 HF)",
            "batch": len(prompts),
            "prompt_tokens_mean": statistics.fmean(map(len, prompts)),
            "max_tokens": args.max_tokens,
            "threads": args.threads,
            "ours_parallelism": f"{args.threads} forward workers x 1 thread"
            if args.ours_workers
            else f"one team of up to {args.threads} threads (thread governor)",
            "repeats": args.repeats,
            "policy": args.policy,
            "greedy": True,
            "runs": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
