"""The predictor a policy consults: service time, remaining output, tool latency.

It combines the service-time model (from the cost profile) with an output-length
predictor (oracle or history) and the online tool-latency model, and learns from the
events the policy forwards (a call ended, a tool returned).
"""

from __future__ import annotations

from astraea.core.job import Job
from astraea.predict.output_length import (
    HistoryOutputLength,
    OracleOutputLength,
    OutputLengthPredictor,
)
from astraea.predict.service import ServiceTimeModel
from astraea.predict.tool_latency import ToolLatencyPredictor

OUTPUT_PREDICTORS = {"oracle": OracleOutputLength, "history": HistoryOutputLength}


class Predictor:
    def __init__(
        self,
        service: ServiceTimeModel,
        output: OutputLengthPredictor | str = "oracle",
        tools: ToolLatencyPredictor | None = None,
    ) -> None:
        if isinstance(output, str):
            try:
                output = OUTPUT_PREDICTORS[output]()
            except KeyError:
                names = ", ".join(sorted(OUTPUT_PREDICTORS))
                raise ValueError(
                    f"unknown output predictor {output!r}; use one of {names}"
                ) from None
        self.service = service
        self.output = output
        self.tools = tools or ToolLatencyPredictor()

    def segment_time(self, job: Job) -> float:
        """Predicted compute time left in the job's current call (prefill + decode)."""
        return self.service.segment_time(
            job.num_uncomputed_tokens, self.output.remaining_output(job), job.num_computed_tokens
        )

    def tool_latency(self, tool: str) -> float:
        return self.tools.mean(tool)

    def observe_segment_end(self, job: Job) -> None:
        self.output.observe(job)

    def forget(self, job: Job) -> None:
        """The job ended early: drop what the predictors keep per job."""
        self.output.forget(job.job_id)

    def observe_tool(self, tool: str, latency: float) -> None:
        self.tools.observe(tool, latency)
