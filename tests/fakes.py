"""Hand-built pieces for driving the scheduler without any model or cost profile."""

from __future__ import annotations

from astraea.core import JobSpec, Segment, StepPlan, StepResult, ToolCall


def make_job(
    job_id: str,
    calls: list[tuple[int, int]],
    tool_latency: float = 1.0,
    arrival: float = 0.0,
    category: str = "test",
) -> JobSpec:
    """A job from (input_tokens, output_tokens) per call; every call but the last uses a tool."""
    segments = tuple(
        Segment(inp, out, None if i == len(calls) - 1 else ToolCall("tool", tool_latency))
        for i, (inp, out) in enumerate(calls)
    )
    return JobSpec(job_id, arrival, category, segments)


class FakeExecutor:
    """Runs every plan in full in a fixed time per step; records what it was asked."""

    def __init__(self, step_time: float = 0.01) -> None:
        self.step_time = step_time
        self.plans: list[StepPlan] = []

    def execute(self, plan: StepPlan) -> StepResult:
        self.plans.append(plan)
        return StepResult(elapsed=self.step_time * plan.num_steps, num_steps=plan.num_steps)


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the ``astraea`` command in process: (exit code, stdout, stderr)."""
    from astraea.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
