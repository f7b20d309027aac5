"""astraea: a state-aware scheduling engine for LLM-powered agents."""

__version__ = "0.1.0"
