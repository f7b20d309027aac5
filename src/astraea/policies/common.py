"""Pieces several peer policies share: the engine binding and InferCept's wasted-memory model.

Wasted memory-time (InferCept, Abhyankar et al., ICML 2024, sec. 4; restated in shared/
ASTRAEA.md sec. 2.3), in token-seconds, for a job that stops on a tool call with ``own``
computed context tokens while ``others`` tokens of other requests sit in accelerator memory:

* preserve: ``T_api * own`` (its memory idles for the whole call);
* discard:  ``T_recompute(own) * (own + others)`` (the recompute holds the job's own memory
  and stalls the batch; the own-context term is in InferCept's formula as its follow-up
  AugServe restates it, and is what keeps an almost empty engine from discarding);
* swap:     ``2 * T_swap(own) * others`` (out and back in over the host link, stalling the batch);
  with copy engines beside compute (``ServiceTimeModel.swap_stalls_batch`` False) nothing
  stalls, and the waste is the context's own blocks held while they travel:
  ``2 * T_swap(own) * own``.

The cheapest one wins; ties go to preserve. Swap is only an option while the host tier can
take the context.
"""

from __future__ import annotations

from astraea.core.policy import KVAction, KVContext, Policy, PolicyEnv
from astraea.predict.service import ServiceTimeModel


class ServicePolicy(Policy):
    """A policy that needs the engine's service-time model (``bind`` gives it)."""

    _service: ServiceTimeModel | None = None

    def bind(self, env: PolicyEnv) -> None:
        self._service = env.service

    @property
    def service(self) -> ServiceTimeModel:
        if self._service is None:
            raise RuntimeError(f"policy {self.name!r} is not bound to an engine (call bind())")
        return self._service


def other_tokens(own: int, kv: KVContext) -> int:
    """Tokens of accelerator KV owned by jobs other than the one deciding."""
    return max(0, kv.device_blocks_owned * kv.block_size - own)


def release_waste(
    service: ServiceTimeModel,
    own: int,
    others: int,
    host_free_tokens: int,
    discard: KVAction = KVAction.DISCARD,
    swap_margin: float = 1.0,
) -> tuple[KVAction, float]:
    """The cheaper way to give a context's memory back (swap, or ``discard``: DISCARD, or
    CACHE for a lazy discard through the prefix cache), with its wasted memory-time. A swap
    must cost less than ``swap_margin`` times the discard to be chosen."""
    waste = service.prefill_time(own) * (own + others)
    if own <= host_free_tokens:
        swap = 2.0 * service.swap_time(own) * (others if service.swap_stalls_batch else own)
        if swap < waste * swap_margin:
            return KVAction.SWAP, swap
    return discard, waste


def least_waste(
    service: ServiceTimeModel,
    own: int,
    kv: KVContext,
    tool_time: float,
    discard: KVAction = KVAction.DISCARD,
) -> KVAction:
    """InferCept's choice for a context of ``own`` tokens idle for ``tool_time`` more seconds."""
    action, waste = release_waste(
        service, own, other_tokens(own, kv), kv.host_blocks_free * kv.block_size, discard
    )
    return KVAction.PRESERVE if tool_time * own <= waste else action


def host_room(kv: KVContext, use_swap: bool = True) -> int:
    """Tokens the host tier can take now (0 when the policy does not swap)."""
    return kv.host_blocks_free * kv.block_size if use_swap else 0
