"""A lone prompt's prefill split by rows over a few one-thread workers.

Why: a long prefill is compute-bound, so each worker can take a share of its rows and read
the weights by itself at no loss (decode is the opposite: every worker would stream all the
weights, which is why decode stays on one team). One OpenMP team splits every op and meets
in a barrier after each (hundreds per layer); on a machine shared with other processes a
descheduled team thread stalls each of them, so the governor (threads.py) shrinks the team
to the cores left, and a lone prefill then runs on one core. Workers of one thread each meet
once per layer instead, when all K/V rows of the layer are written (every query attends to
the keys before it; the fused q/k/v rows alternate between two buffers, so a worker already
in the next layer never overwrites rows another still reads). A worker that loses its core
for a while delays the others by that while, once a layer, not once per op.

Rows are split so that each worker gets about the same work: a row costs its projections
(the same for every row) plus its causal attention (growing with its position).
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

from astraea.engine.attention import causal_rows, write_kv
from astraea.engine.model import LlamaModel, linear, rms_norm

# Relative cost of attending over the whole prompt against a row's projections, for the
# split point: causal attention is ~15% of a 512-token prefill of SmolLM2 on this CPU.
ATTENTION_SHARE = 0.3


def split_rows(num_rows: int, parts: int, attention_share: float = ATTENTION_SHARE) -> list[int]:
    """Boundaries ``[0, b1, ..., num_rows]`` of ``parts`` contiguous row ranges of about equal
    cost, a row at position ``i`` costing ``1 + attention_share * i / num_rows``."""
    total = num_rows + attention_share * num_rows / 2
    bounds, acc = [0], 0.0
    for i in range(num_rows):
        acc += 1 + attention_share * i / num_rows
        if len(bounds) < parts and acc >= total * len(bounds) / parts:
            bounds.append(i + 1)
    while len(bounds) < parts:
        bounds.append(num_rows)
    bounds.append(num_rows)
    return bounds


class RowSplit:
    """``forward(model, ...)`` runs a one-chunk prefill with ``workers`` one-thread workers;
    returns the final hidden rows (before the last norm), [rows, hidden]."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, "astraea-prefill")

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def forward(
        self,
        model: LlamaModel,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        kv_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
        tril: torch.Tensor,
    ) -> torch.Tensor:
        cfg = model.config
        rows = int(input_ids.shape[0])
        heads, kv_heads, head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        width = (heads + 2 * kv_heads) * head_dim
        # Two alternating per-layer buffers for the fused q/k/v rows: all workers read every
        # K/V row of layer L, and a worker may run into layer L + 1 before the others leave L.
        qkv_bufs = [torch.empty(rows, width, dtype=model.dtype) for _ in range(2)]
        out = torch.empty(rows, cfg.hidden_size, dtype=model.dtype)
        bounds = split_rows(rows, self.workers)
        parts = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
        barrier = threading.Barrier(len(parts))
        cos_all, sin_all = model.rope_cos[positions], model.rope_sin[positions]

        @torch.inference_mode()
        def work(start: int, end: int) -> None:
            torch.set_num_threads(1)
            x = F.embedding(input_ids[start:end], model.embed)
            cos, sin = cos_all[start:end].unsqueeze(1), sin_all[start:end].unsqueeze(1)
            slots = slot_mapping[start:end]
            for i, layer in enumerate(model.layers):
                buf = qkv_bufs[i % 2]
                h = rms_norm(x, layer.input_norm, layer.eps)
                mine = buf[start:end]
                if layer.qkv_weight.is_mkldnn:  # prepacked: no out= form
                    mine.copy_(linear(h, layer.qkv_weight))
                else:
                    torch.mm(h, layer.qkv_weight.t(), out=mine)
                qkv = mine.view(end - start, heads + 2 * kv_heads, head_dim)
                qk = qkv[:, : heads + kv_heads]
                rotated = qk.roll(head_dim // 2, -1)
                qk.mul_(cos).addcmul_(rotated, sin)
                write_kv(kv_cache[i], qkv[:, heads:], slots)
                barrier.wait()  # every K/V row of this layer is in ``buf``
                full = buf.view(rows, heads + 2 * kv_heads, head_dim)
                q = full[:, :heads].transpose(0, 1).unsqueeze(0)
                ctx = full[:, heads:].transpose(0, 1).unsqueeze(0)
                attn = causal_rows(q, ctx, kv_heads, tril, start, end)
                x = layer.mlp_residual(x + linear(attn, layer.o_weight))
            out[start:end] = x

        def guarded(start: int, end: int) -> None:
            try:
                work(start, end)
            except BaseException:
                barrier.abort()  # the others would wait for this worker forever
                raise

        futures = [self._pool.submit(guarded, a, b) for a, b in parts[1:]]
        errors: list[BaseException] = []
        try:
            guarded(*parts[0])  # the calling thread takes the first share
        except BaseException as exc:
            errors.append(exc)
        errors += [e for f in futures if (e := f.exception()) is not None]
        if errors:
            first = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
            raise (first or errors)[0]
        return out
