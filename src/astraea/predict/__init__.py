"""Predictors: service time from the cost profile, output length (oracle or history),
tool latency per tool name learned online."""

from astraea.predict.output_length import HistoryOutputLength, OracleOutputLength
from astraea.predict.predictor import Predictor
from astraea.predict.service import ServiceTimeModel
from astraea.predict.tool_latency import ToolLatencyPredictor

__all__ = [
    "HistoryOutputLength",
    "OracleOutputLength",
    "Predictor",
    "ServiceTimeModel",
    "ToolLatencyPredictor",
]
