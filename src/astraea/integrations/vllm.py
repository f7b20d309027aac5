"""Astraea's scheduler for vLLM: ``--scheduler-cls astraea.integrations.vllm.AstraeaScheduler``.

This module imports without vLLM: the classes are built on first access (module
``__getattr__``) from ``astraea.integrations.vllm_scheduler``, which needs vLLM 0.32.0
(``pip install 'astraea[vllm]'`` on CPU). ``AstraeaScheduler`` subclasses vLLM's synchronous
``Scheduler`` (vLLM-CPU forces async scheduling off); ``AstraeaAsyncScheduler`` subclasses
``AsyncScheduler`` for CUDA vLLM, where async scheduling is the default. docs/vllm.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

SCHEDULER_CLASSES = ("AstraeaScheduler", "AstraeaAsyncScheduler", "AstraeaSchedulerMixin")
SCHEDULER_CLS = "astraea.integrations.vllm.AstraeaScheduler"
ASYNC_SCHEDULER_CLS = "astraea.integrations.vllm.AstraeaAsyncScheduler"
MIDDLEWARE = "astraea.integrations.hints.AstraeaHintsMiddleware"
VLLM_VERSION = "0.32.0"


def __getattr__(name: str) -> Any:
    if name not in SCHEDULER_CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = import_module("astraea.integrations.vllm_scheduler")
    except ImportError as exc:
        raise ImportError(
            f"{name} needs vLLM {VLLM_VERSION} in this interpreter "
            f"(pip install 'astraea[vllm]', or benchmarks/setup_vllm.sh): {exc}"
        ) from exc
    return getattr(module, name)
