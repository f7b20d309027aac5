"""The OpenAPI document, with the request bodies the handlers really validate.

Handlers read and validate their bodies themselves (``guards.read_body``: a size limit while
reading, strict pydantic off the event loop), so FastAPI cannot see them; this module puts
the pydantic models' JSON schemas back into the document, with every status a route answers
and OpenAI's error shape, so clients, code generators and fuzzers (schemathesis) see the API
the server enforces.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from astraea.server.protocol import ChatCompletionRequest, CompletionRequest

_REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_CHOICES = {"type": "array", "items": {"type": "object", "required": ["index", "finish_reason"]}}
COMPLETION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices", "usage", "astraea_job_id"],
    "properties": {
        "id": {"type": "string"},
        "object": {"enum": ["chat.completion", "text_completion"]},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": _CHOICES,
        "usage": {"type": "object", "required": ["prompt_tokens", "completion_tokens"]},
        "astraea_job_id": {"type": "string"},
    },
}
CHUNK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"enum": ["chat.completion.chunk", "text_completion"]},
        "choices": {"type": "array"},
    },
}
# one server-sent event: its data is a chunk or an error as JSON text, or the closing "[DONE]"
_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "anyOf": [
                {"const": "[DONE]"},
                {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {
                        "anyOf": [{"$ref": "#/components/schemas/Chunk"}, ERROR_SCHEMA]
                    },
                },
            ]
        }
    },
}
# what each POST route can answer besides 200 (and why)
_POST_ERRORS = {
    "400": "invalid body or a value the model cannot serve",
    "401": "missing or wrong API key (when the server has one)",
    "403": "an Origin or Host the server does not allow (browser and DNS-rebinding protection)",
    "404": "unknown model",
    "409": "the named job has a call in flight",
    "413": "body over the server's limit",
    "415": "body not sent as application/json",
    "429": "admission queue full (Retry-After says when to retry)",
    "503": "the engine cannot serve (shutting down or unhealthy)",
}
_GET_ERRORS = {k: _POST_ERRORS[k] for k in ("401", "403", "404", "503")}


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that documents bodies and answers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["Completion"] = COMPLETION_SCHEMA
    schemas["Chunk"] = CHUNK_SCHEMA
    bodies: dict[str, type[BaseModel]] = {
        "/v1/chat/completions": ChatCompletionRequest,
        "/v1/completions": CompletionRequest,
    }
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            model = bodies.get(path) if method == "post" else None
            if model is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _schema(model, schemas)}},
                }
                op["responses"] = _responses(_POST_ERRORS, completion=True)
            elif path == "/metrics":
                op["responses"] = {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "403": {"description": _POST_ERRORS["403"], "content": _ERROR},
                    "503": {"description": "the engine thread did not answer", "content": _ERROR},
                }
            elif path == "/health":
                op["responses"] = {
                    "200": {"description": "the engine steps", "content": _OK},
                    "403": {"description": _POST_ERRORS["403"], "content": _ERROR},
                    "503": {"description": "the engine cannot step", "content": _ERROR},
                }
            elif path.startswith("/v1/"):
                ok = op.get("responses", {}).get("200", {"description": "OK"})
                op["responses"] = {"200": ok, **_responses(_GET_ERRORS)}
    return doc


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": _REF.format(model=model.__name__)}


_ERROR = {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}
_OK = {"application/json": {"schema": {"type": "object", "required": ["status"]}}}


def _responses(errors: dict[str, str], completion: bool = False) -> dict[str, Any]:
    error = _ERROR
    out: dict[str, Any] = {}
    if completion:
        out["200"] = {
            "description": "the answer, whole (JSON) or streamed (server-sent events)",
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model="Completion")}},
                "text/event-stream": {"schema": _EVENT},
            },
        }
    for status, why in errors.items():
        out[status] = {"description": why, "content": error}
    return out
