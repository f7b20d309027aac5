"""The in-place decode kernel: the same attention as the portable gather + SDPA path."""

import shutil

import pytest

torch = pytest.importorskip("torch")

from astraea.core.plan import ScheduledSeq  # noqa: E402
from astraea.engine import paged_decode  # noqa: E402
from astraea.engine.attention import paged_attention  # noqa: E402
from astraea.engine.batch import build_batch  # noqa: E402

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")


def _case(lengths, heads, kv_heads, head_dim, block_size, seed=0):
    """A layer cache with random contents, decode rows for ``lengths`` on shuffled blocks."""
    gen = torch.Generator().manual_seed(seed)
    need = sum(-(-n // block_size) for n in lengths)
    num_blocks = need + 3
    cache = torch.randn(2 * kv_heads, num_blocks * block_size, head_dim, generator=gen)
    order = torch.randperm(num_blocks, generator=gen).tolist()
    seqs, tokens = [], {}
    for i, n in enumerate(lengths):
        blocks = [order.pop() for _ in range(-(-n // block_size))]
        seqs.append(ScheduledSeq(f"j{i}", n - 1, 1, True, blocks))
        tokens[f"j{i}"] = [0] * n
    batch = build_batch(seqs, tokens, block_size)
    qkv = torch.randn(len(lengths), heads + 2 * kv_heads, head_dim, generator=gen)
    return qkv[:, :heads], qkv[:, heads:], cache, batch.meta


def _both(q, kv, cache, meta):
    paged_decode.enable(False)
    try:
        portable = paged_attention(q, kv, cache, meta)
    finally:
        paged_decode.enable(True)
    assert paged_decode.applies(q, cache, meta.block_size)
    return portable, paged_attention(q, kv, cache, meta)


@needs_cc
@pytest.mark.parametrize(
    ("heads", "kv_heads", "head_dim"),
    [(9, 3, 64), (4, 4, 64), (8, 2, 48), (6, 3, 20)],  # AVX2 at 64 and 48, plain C at 20
)
def test_kernel_equals_the_gather_path_for_ragged_contexts(heads, kv_heads, head_dim):
    lengths = [1, 15, 16, 17, 33, 130, 2]
    q, kv, cache, meta = _case(lengths, heads, kv_heads, head_dim, block_size=16)
    portable, kernel = _both(q, kv, cache, meta)
    assert kernel.shape == portable.shape == (len(lengths), heads * head_dim)
    torch.testing.assert_close(kernel, portable, atol=2e-6, rtol=1e-5)


@needs_cc
def test_kernel_on_an_openmp_team_matches_one_thread():
    q, _, cache, meta = _case([300, 250, 40, 40, 17, 500], 9, 3, 64, block_size=16, seed=1)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = paged_decode.decode(q, cache, meta.decode_tables, meta.decode_lengths, 16)
        torch.set_num_threads(3)
        three = paged_decode.decode(q, cache, meta.decode_tables, meta.decode_lengths, 16)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, three)


@needs_cc
def test_large_scores_do_not_overflow_the_softmax():
    q, kv, cache, meta = _case([40, 9], 4, 2, 64, block_size=16, seed=2)
    q = q * 40.0  # scores of several hundred: only a running max keeps exp finite
    portable, kernel = _both(q, kv, cache, meta)
    assert torch.isfinite(kernel).all()
    torch.testing.assert_close(kernel, portable, atol=1e-5, rtol=1e-4)


@needs_cc
def test_kernel_does_not_apply_to_bf16_or_when_disabled():
    q, _, cache, _ = _case([20], 4, 2, 64, block_size=16)
    assert not paged_decode.applies(q.bfloat16(), cache.bfloat16(), 16)
    assert not paged_decode.applies(q, cache, 128)  # block beyond the kernel's scratch
    paged_decode.enable(False)
    try:
        assert not paged_decode.applies(q, cache, 16)
    finally:
        paged_decode.enable(True)


@needs_cc
def test_build_is_cached_by_source(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTRAEA_CACHE_DIR", str(tmp_path))
    source = "int f(void) { return 1; }\n"
    first = paged_decode.build(source, "cc")
    assert first.exists() and first.parent == tmp_path / "kernels"
    mtime = first.stat().st_mtime_ns
    assert paged_decode.build(source, "cc") == first and first.stat().st_mtime_ns == mtime
    assert paged_decode.build(source.replace("1", "2"), "cc") != first
    with pytest.raises(RuntimeError):
        paged_decode.build("this is not C", "cc")
    assert sorted(p.suffix for p in (tmp_path / "kernels").iterdir()) == [".so", ".so"]


@needs_cc
def test_a_block_id_outside_the_cache_fails_the_call_without_reading_it():
    q, _, cache, meta = _case([40, 9], 4, 2, 64, block_size=16, seed=3)
    assert paged_decode.applies(q, cache, 16)
    tables = meta.decode_tables.clone()
    tables[1, 0] = cache.shape[1] // 16  # one past the last block
    with pytest.raises(IndexError, match="outside the KV cache"):
        paged_decode.decode(q, cache, tables, meta.decode_lengths, 16)
    tables[1, 0] = -1
    with pytest.raises(IndexError):
        paged_decode.decode(q, cache, tables, meta.decode_lengths, 16)
