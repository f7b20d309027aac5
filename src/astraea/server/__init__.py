"""The OpenAI-compatible server over the engine (docs/server.md); optional extra ``server``."""

from astraea.server.app import create_app
from astraea.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
