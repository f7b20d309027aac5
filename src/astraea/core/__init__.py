"""Scheduling core: job model, step plan/result, KV block accounting, the scheduler
mechanism and the policy interface. Pure Python: no torch, no asyncio (a test enforces it)."""

from astraea.core.config import SchedulerConfig
from astraea.core.counters import SchedulerCounters
from astraea.core.job import Job, JobSpec, JobStatus, KVLocation, Segment, ToolCall
from astraea.core.kv_cache import BlockCopy, CopyDirection, KVCacheManager
from astraea.core.lifecycle import TransitionError
from astraea.core.plan import ScheduledSeq, StepPlan, StepResult
from astraea.core.policy import KVAction, KVContext, Policy, PolicyEnv
from astraea.core.scheduler import Scheduler, StepOutcome

__all__ = [
    "BlockCopy",
    "CopyDirection",
    "Job",
    "JobSpec",
    "JobStatus",
    "KVAction",
    "KVCacheManager",
    "KVContext",
    "KVLocation",
    "Policy",
    "PolicyEnv",
    "ScheduledSeq",
    "Scheduler",
    "SchedulerConfig",
    "SchedulerCounters",
    "Segment",
    "StepOutcome",
    "StepPlan",
    "StepResult",
    "ToolCall",
    "TransitionError",
]
