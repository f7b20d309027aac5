"""The server tests' live tiny-model server, reused to drive the load generator."""

from tests.server.conftest import serve, tiny_model, tokenizer  # noqa: F401
