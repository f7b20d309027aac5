"""Decode attention that reads the paged KV in place: a small C kernel, built at first use.

Why: torch has no CPU kernel for one query over paged blocks, so the portable path
(``attention.paged_attention``) copies every context out of its blocks each layer and hands
it to SDPA's flash kernel, which is built for long queries. Over half of a batch-32 decode
step went there (docs/engine.md, "KV layout"). ``csrc/paged_decode.c`` reads each block
where it lies, once for the whole GQA group.

The kernel is plain C with no torch headers, so it builds in about a second with the
system's C compiler (``$CC``, else ``cc``) for this very CPU (``-march=native``: AVX2 + FMA
where present). The shared object is cached under ``$ASTRAEA_CACHE_DIR`` (default
``~/.cache/astraea``), keyed by the source, the flags, the compiler and the CPU. Without a
compiler, or with ``ASTRAEA_DECODE_KERNEL=torch``, decode uses the portable path; the two
agree to float32 rounding (tests/engine/test_paged_decode.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from importlib import resources
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# -fopenmp links libgomp.so.1 by its soname: in a process that imported torch that is
# torch's own runtime, so the kernel's threads are torch's team, not a second one.
FLAGS = ["-O3", "-march=native", "-std=c11", "-shared", "-fPIC", "-fopenmp"]
ENV_SWITCH = "ASTRAEA_DECODE_KERNEL"  # "torch": never use the kernel

_kernel: ctypes.CDLL | None = None
_tried = False
_enabled = os.environ.get(ENV_SWITCH, "auto").strip().lower() != "torch"
_limits = (0, 0, 0)
_load_lock = threading.Lock()  # forward workers may reach the first call together


def _cache_dir() -> Path:
    root = os.environ.get("ASTRAEA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "astraea"
    )
    return Path(root) / "kernels"


def _cpu_signature() -> str:
    """Model name and flags: a cache moved to another CPU must not load -march=native code."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return os.uname().machine
    keep = [ln for ln in lines if ln.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(keep)))


def build(source: str, compiler: str) -> Path:
    """The cached shared object for ``source``, compiling it if needed (atomic rename, so
    concurrent processes never load a half-written file)."""
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    key = hashlib.sha256("\0".join([source, *FLAGS, version, _cpu_signature()]).encode())
    target = _cache_dir() / f"paged_decode-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "paged_decode.c"
        src.write_text(source)
        out = Path(tmp) / target.name
        done = subprocess.run(
            [compiler, *FLAGS, "-o", str(out), str(src)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
        os.replace(out, target)
    return target


def _load() -> ctypes.CDLL | None:
    global _tried
    if _tried:  # set only once ``_kernel`` is final
        return _kernel
    with _load_lock:
        if not _tried:
            try:
                _build_and_bind()
            finally:
                _tried = True
    return _kernel


def _build_and_bind() -> None:
    global _kernel, _limits
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.warning("no C compiler found: decode attention uses the portable torch path")
        return
    source = resources.files("astraea.engine").joinpath("csrc/paged_decode.c").read_text()
    try:
        lib = ctypes.CDLL(str(build(source, compiler)))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log.warning("paged decode kernel not built (%s): using the portable torch path", exc)
        return
    fn = lib.astraea_paged_decode
    fn.restype = ctypes.c_int
    fn.argtypes = [
        *(ctypes.c_void_p, ctypes.c_long) * 2,  # q, its row stride; cache, its head stride
        ctypes.c_void_p,  # block tables
        ctypes.c_long,  # their row stride
        ctypes.c_void_p,  # lengths
        *[ctypes.c_int] * 6,  # begin, end, heads, kv_heads, head_dim, block_size
        ctypes.c_float,  # scale
        ctypes.c_void_p,  # out
    ]
    limits = [ctypes.c_int() for _ in range(3)]
    lib.astraea_paged_decode_limits(*(ctypes.byref(x) for x in limits))
    _limits = tuple(x.value for x in limits)
    _kernel = lib


def enable(flag: bool) -> None:
    """Use the kernel where it applies (True) or always the portable path (False)."""
    global _enabled
    _enabled = flag


def applies(q: torch.Tensor, layer_cache: torch.Tensor, block_size: int) -> bool:
    """Whether the kernel can run this layer: float32 CPU tensors within its limits."""
    if not _enabled or q.device.type != "cpu" or q.dtype != torch.float32:
        return False
    if layer_cache.dtype != torch.float32 or not layer_cache.is_contiguous():
        return False
    if _load() is None:
        return False
    max_group, max_dim, max_block = _limits
    heads, head_dim = q.shape[1], q.shape[2]
    kv_heads = layer_cache.shape[0] // 2
    return (
        q.stride(2) == 1
        and q.stride(1) == head_dim
        and heads % kv_heads == 0
        and heads // kv_heads <= max_group
        and head_dim <= max_dim
        and block_size <= max_block
    )


def decode(
    q: torch.Tensor,
    layer_cache: torch.Tensor,
    tables: torch.Tensor,
    lengths: torch.Tensor,
    block_size: int,
) -> torch.Tensor:
    """Attention output [n, heads * head_dim] of one query per sequence (``q``: [n, heads,
    head_dim], rows may be strided) over its ``lengths[i]`` cached tokens, found through
    ``tables`` ([n, max_blocks] int32 block ids), on torch's OpenMP team."""
    lib = _load()
    assert lib is not None, "call applies() first"
    n, heads, head_dim = q.shape
    kv_heads = layer_cache.shape[0] // 2
    out = q.new_empty(n, heads * head_dim)
    args = (
        q.data_ptr(),
        q.stride(0),
        layer_cache.data_ptr(),
        layer_cache.stride(0),
        tables.data_ptr(),
        tables.stride(0),
        lengths.data_ptr(),
    )
    tail = (heads, kv_heads, head_dim, block_size, head_dim**-0.5, out.data_ptr())
    _check(lib.astraea_paged_decode(*args, 0, n, *tail))
    return out


def _check(code: int) -> None:
    if code == -2:  # as index_select on the portable path: the step fails, nothing is read
        raise IndexError("paged decode kernel: a block id outside the KV cache")
    if code != 0:
        raise ValueError("paged decode kernel: shape beyond its limits")
