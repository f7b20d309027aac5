"""Scheduling policies, one module each, registered by name (``make_policy``)."""

from astraea.policies import astraea, fcfs_job, vllm_fcfs  # noqa: F401  (registration)
from astraea.policies.registry import make_policy, policy_names, register

__all__ = ["make_policy", "policy_names", "register"]
