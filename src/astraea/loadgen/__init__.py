"""``astraea bench``: replay agent jobs against any OpenAI-compatible server and measure
job completion time (JCT), time to first token and per-call latency.

Each job runs its calls in order over a growing chat context (the user prompt, the model's
answer, the tool's result, ...), sleeps for each tool's latency between calls, and forces
output lengths with ``max_tokens`` + ``min_tokens`` / ``ignore_eos`` where the server has
them (ours and vLLM do). Jobs arrive open-loop at their trace's arrival times.
"""

from astraea.loadgen.client import BenchOptions, CallRecord, JobRecord
from astraea.loadgen.runner import BenchReport, run_bench

__all__ = ["BenchOptions", "BenchReport", "CallRecord", "JobRecord", "run_bench"]
