"""Scheduling policies, one module each, registered by name (``make_policy``)."""

from astraea.policies import (  # noqa: F401  (registration)
    astraea,
    autellix_atlas,
    autellix_plas,
    continuum,
    fcfs_job,
    infercept,
    lamps,
    sglang_hrrn,
    srpt_oracle,
    vllm_fcfs,
    vllm_priority,
)
from astraea.policies.registry import make_policy, policy_names, register

__all__ = ["make_policy", "policy_names", "register"]
