"""Per-token cost of constrained decoding (structured outputs) on this CPU, llguidance vs
xgrammar, against the cost of a decode step of the default model (issue 14: under 15%).

1. The engine generates JSON answers for a few prompts under a JSON-schema grammar
   (llguidance, as the server does) and, for the same prompts, without one; the wall time
   per decode step of each run is recorded (batch 1, greedy).
2. The token sequences it produced are replayed through each library's matcher: per token,
   compute the bitmask, apply it to a row of logits as the sampler does (``-inf`` outside
   it) and accept the token. The median per-token time over all tokens is the overhead;
   divided by the unconstrained decode step it is the fraction the target bounds.
   ``llguidance`` is the mask alone (what xgrammar is compared with); ``llguidance +
   close`` is what the server runs: the mask plus the search for a completion that fits
   the budget (server/closing.py), which runs on every token of these answers since they
   all lie within its horizon of ``max_tokens`` (the worst case; earlier tokens cost the
   mask alone).

xgrammar pulls in triton and transformers as dependencies; it is measured when importable
(``pip install --no-deps --target DIR xgrammar apache-tvm-ffi`` and ``--xgrammar-path DIR``).

    python benchmarks/structured_overhead.py [--prompts 5] [--tokens 48] [--xgrammar-path DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "city": {"type": "string"},
        "hobbies": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age", "city", "hobbies"],
}
TEXTS = [
    "Alice, 34, lives in Paris and loves chess and running.",
    "Bob is a 51 year old baker from Lyon who enjoys fishing.",
    "Chen, 27, is a programmer in Shanghai; she plays the piano and climbs.",
    "Eva is 19 and studies in Berlin. Hobbies: painting, tennis.",
    "Grace from Nairobi is 38 and loves hiking and photography.",
    "Jack, 30, from Sydney, enjoys cricket and cooking.",
]


def decode(engine: Any, prompts: list[list[int]], tokens: int, grammar: Any) -> dict[str, Any]:
    """Generate one prompt at a time; wall seconds per decode step (after the first token)."""
    from astraea.engine.sampling import SamplingParams

    per_step, outputs = [], []
    for prompt in prompts:
        bounded = None if grammar is None else grammar.bounded(tokens)  # as the server does
        params = SamplingParams(max_tokens=tokens, grammar=bounded)
        request = engine.submit(f"b{len(outputs)}-{grammar is not None}", prompt, params, last=True)
        engine.step()  # prefill + first token
        start, steps = time.perf_counter(), 0
        while not request.finished:
            engine.step()
            steps += 1
        if steps:
            per_step.append((time.perf_counter() - start) / steps)
        outputs.append(list(request.token_ids))
    return {"step_s_median": statistics.median(per_step), "outputs": outputs}


def replay_llguidance(grammar: Any, sequences: list[list[int]], vocab: int) -> list[float]:
    import torch

    times = []
    for seq in sequences:
        matcher = grammar.matcher()
        for token in seq:
            row = torch.zeros(vocab)
            t0 = time.perf_counter()
            matcher.mask(row)
            matcher.accept(token)
            times.append(time.perf_counter() - t0)
    return times


def replay_xgrammar(tokenizer: Any, sequences: list[list[int]], vocab: int, eos: list[int]):
    import torch
    import xgrammar as xgr

    from astraea.engine.logits import mask_row

    encoded = [tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)]
    t0 = time.perf_counter()
    info = xgr.TokenizerInfo(encoded, xgr.VocabType.RAW, vocab_size=vocab, stop_token_ids=eos)
    compiler = xgr.GrammarCompiler(info)
    compiled = compiler.compile_json_schema(
        json.dumps(SCHEMA), separators=(", ", ": "), any_whitespace=False
    )
    setup = time.perf_counter() - t0
    times, refused = [], 0
    bitmask = xgr.allocate_token_bitmask(1, vocab)
    for seq in sequences:
        matcher = xgr.GrammarMatcher(compiled)
        for token in seq:
            row = torch.zeros(vocab)
            t = time.perf_counter()
            matcher.fill_next_token_bitmask(bitmask)
            mask_row(row, bitmask[0])
            ok = matcher.accept_token(token)
            times.append(time.perf_counter() - t)
            if not ok:  # the two libraries differ on a detail: replay the next answer
                refused += 1
                break
    return times, setup, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--xgrammar-path", default=None)
    args = parser.parse_args()
    if args.xgrammar_path:
        sys.path.append(args.xgrammar_path)
    import torch

    from astraea.engine.config import EngineConfig
    from astraea.engine.engine import Engine
    from astraea.server.structured import Grammars

    torch.set_num_threads(args.threads)
    engine = Engine(None, EngineConfig(dtype="float32", num_threads=args.threads))
    tok, vocab = engine.tokenizer, engine.runner.model.config.vocab_size
    t0 = time.perf_counter()
    grammars = Grammars(tok, vocab, engine.eos_token_ids)
    grammar = grammars.json_schema(SCHEMA, "bench")
    llg_setup = time.perf_counter() - t0
    prompts = [
        tok.apply_chat_template([{"role": "user", "content": f"Extract the person as JSON: {t}"}])
        for t in TEXTS[: args.prompts]
    ]
    free = decode(engine, prompts, args.tokens, None)
    constrained = decode(engine, prompts, args.tokens, grammar)
    step = free["step_s_median"]
    llg = replay_llguidance(grammar, constrained["outputs"], vocab)
    closing = replay_llguidance(grammar.bounded(args.tokens), constrained["outputs"], vocab)
    libraries: dict[str, Any] = {
        "llguidance": {
            "per_token_us_median": statistics.median(llg) * 1e6,
            "per_token_us_p90": statistics.quantiles(llg, n=10)[-1] * 1e6,
            "fraction_of_decode_step": statistics.median(llg) / step,
            "setup_s": llg_setup,
        },
        "llguidance + close": {
            "per_token_us_median": statistics.median(closing) * 1e6,
            "per_token_us_p90": statistics.quantiles(closing, n=10)[-1] * 1e6,
            "fraction_of_decode_step": statistics.median(closing) / step,
            "p90_fraction_of_decode_step": statistics.quantiles(closing, n=10)[-1] / step,
        },
    }
    try:
        xg, xg_setup, xg_refused = replay_xgrammar(
            tok, constrained["outputs"], vocab, sorted(engine.eos_token_ids)
        )
        libraries["xgrammar"] = {
            "per_token_us_median": statistics.median(xg) * 1e6,
            "per_token_us_p90": statistics.quantiles(xg, n=10)[-1] * 1e6,
            "fraction_of_decode_step": statistics.median(xg) / step,
            "setup_s": xg_setup,
            "tokens_replayed": len(xg),
            "answers_cut_short": xg_refused,
        }
    except ImportError as exc:
        libraries["xgrammar"] = {"skipped": f"not importable: {exc}"}
    result = {
        "model": "SmolLM2-135M-Instruct (bundled GGUF), float32, batch 1, greedy",
        "threads": args.threads,
        "schema": SCHEMA,
        "tokens_replayed": len(llg),
        "decode_step_ms_median": {
            "unconstrained": step * 1e3,
            "constrained (llguidance, end to end)": constrained["step_s_median"] * 1e3,
        },
        "end_to_end_overhead_fraction": constrained["step_s_median"] / step - 1,
        "libraries": libraries,
        "answers": [tok.decode(o) for o in constrained["outputs"]],
    }
    path = write_result("structured_overhead", result)
    for name, r in libraries.items():
        if "fraction_of_decode_step" in r:
            print(
                f"{name}: {r['per_token_us_median']:.0f} us/token = "
                f"{100 * r['fraction_of_decode_step']:.2f}% of a {step * 1e3:.1f} ms step"
            )
    print(path)


if __name__ == "__main__":
    main()
