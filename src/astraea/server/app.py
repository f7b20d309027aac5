"""The FastAPI app: OpenAI's routes over one ``Engine`` driven by the engine thread.

Bodies are read and validated here (pydantic, strict) rather than by FastAPI's own body
binding, so every failure, malformed JSON included, answers in OpenAI's error shape with
the status OpenAI uses (400, not FastAPI's 422).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException

from astraea.engine.engine import Engine
from astraea.server import openapi
from astraea.server.browser import BrowserGuard
from astraea.server.calls import Call, Done
from astraea.server.config import ServerConfig
from astraea.server.errors import APIError, CrashGuard
from astraea.server.guards import admit, authorize, job_header, read_body
from astraea.server.logprobs import chat_logprobs, completion_logprobs
from astraea.server.metrics import RequestCounter
from astraea.server.protocol import (
    JOB_HEADER,
    ChatCompletionRequest,
    CompletionRequest,
    model_card,
    now_s,
)
from astraea.server.responses import (
    EventStream,
    TextStream,
    done_usage,
    finish_reason,
    new_id,
    stream_events,
    tool_calls_out,
    wait_done,
)
from astraea.server.service import Service

log = logging.getLogger("astraea.server")


def create_app(engine: Engine, config: ServerConfig | None = None) -> FastAPI:
    """The app; its lifespan starts and stops the engine thread."""
    service = Service(engine, config or ServerConfig())
    created = now_s()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.worker.start()
        try:
            yield
        finally:
            service.worker.stop()

    app = FastAPI(title="astraea", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    openapi.install(app)
    cfg = service.config
    if cfg.allowed_origins:  # CORS answers for the pages allowed to call us
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", JOB_HEADER],
            expose_headers=[JOB_HEADER],
        )
    app.add_middleware(
        BrowserGuard, allowed_origins=cfg.allowed_origins, allowed_hosts=cfg.allowed_hosts
    )
    app.add_middleware(CrashGuard)
    app.add_middleware(RequestCounter, metrics=service.metrics)  # outermost: counts all

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})  # 405's Allow
        return APIError(exc.status_code, str(exc.detail), code=None, headers=headers).response()

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return APIError(400, str(exc.errors()[0].get("msg", exc)), code="invalid_value").response()

    # ---- routes --------------------------------------------------------------------------------
    @app.get("/health")
    async def health() -> JSONResponse:
        worker = service.worker
        if not worker.alive:
            raise APIError(503, "the engine thread is not running", code="engine_down")
        if not worker.healthy:
            raise APIError(
                503,
                f"the engine cannot step: its last {worker.failed_steps} steps failed",
                code="engine_unhealthy",
            )
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics() -> Response:
        try:
            snapshot = await asyncio.wait_for(service.snapshot(), timeout=10.0)
        except TimeoutError:
            raise APIError(503, "the engine thread did not answer", code="engine_down") from None
        body = service.metrics.render(snapshot, service.admission.count)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        authorize(service, request)
        card = model_card(service.config.served_model_name, service.max_context, created)
        return JSONResponse({"object": "list", "data": [card]})

    @app.get("/v1/models/{name}")
    async def model(name: str, request: Request) -> JSONResponse:
        authorize(service, request)
        service.check_model(name)
        return JSONResponse(model_card(name, service.max_context, created))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        req = await read_body(service, request, ChatCompletionRequest)
        call, claim = await service.chat_call(req, job_header(request, req.astraea_job_id))
        admit(service, call, claim)

        async def answer() -> Response:
            head = {
                "id": new_id("chatcmpl"),
                "created": now_s(),
                "model": req.model,
                "astraea_job_id": call.job_id,
            }
            headers = {JOB_HEADER: call.job_id}
            if req.stream:
                chunk_head = {**head, "object": "chat.completion.chunk"}
                include_usage = bool(req.stream_options and req.stream_options.include_usage)

                def chunk(
                    text: str = "",
                    delta: dict | None = None,
                    reason: str | None = None,
                    logprobs: list | None = None,
                ) -> dict[str, Any]:
                    choice: dict[str, Any] = {
                        "index": 0,
                        "delta": delta if delta is not None else {"content": text},
                        "finish_reason": reason,
                    }
                    if logprobs is not None:
                        choice["logprobs"] = chat_logprobs(service.tokenizer, logprobs)
                    return {**chunk_head, "choices": [choice]}

                def final(done: Done, text: TextStream) -> list[dict[str, Any]]:
                    _observe(service, call)
                    _, calls = done.verdict.parsed
                    rest = text.finish(text.prefix + done.output.text, called=bool(calls))
                    left = text.take_logprobs()
                    out = [chunk(rest, logprobs=left)] if rest or left else []
                    if calls:
                        deltas = [{"index": i, **c} for i, c in enumerate(tool_calls_out(calls))]
                        out.append(chunk(delta={"tool_calls": deltas}))
                    out.append(chunk(delta={}, reason=finish_reason(done, calls)))
                    if include_usage:
                        out.append({**chunk_head, "choices": [], "usage": done_usage(done)})
                    return out

                text = TextStream(
                    service.tokenizer.decode,
                    call.prefix,
                    call.params.stop,
                    tools=bool(req.tools) and req.tool_choice != "none",
                    logprobs=call.params.logprobs is not None,
                )
                first = chunk(delta={"role": "assistant", "content": ""})
                events = stream_events(call, text, chunk, final, first)
                return EventStream(events, call, service.worker.cancel, headers=headers)
            done = await wait_done(call, request, service.worker.cancel)
            _observe(service, call)
            content, calls = done.verdict.parsed
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = tool_calls_out(calls)
            lps = done.output.logprobs
            choice = {
                "index": 0,
                "message": message,
                "logprobs": None if lps is None else chat_logprobs(service.tokenizer, lps),
                "finish_reason": finish_reason(done, calls),
            }
            body = {
                **head,
                "object": "chat.completion",
                "choices": [choice],
                "usage": done_usage(done),
            }
            return JSONResponse(body, headers=headers)

        return await _guarded(service, call, answer)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        req = await read_body(service, request, CompletionRequest)
        call, claim = await service.completion_call(req, job_header(request, req.astraea_job_id))
        admit(service, call, claim)

        async def answer() -> Response:
            head = {
                "id": new_id("cmpl"),
                "object": "text_completion",
                "created": now_s(),
                "model": req.model,
                "astraea_job_id": call.job_id,
            }
            headers = {JOB_HEADER: call.job_id}
            if req.stream:
                include_usage = bool(req.stream_options and req.stream_options.include_usage)

                offset = [0]  # where the next chunk's text starts

                def chunk(
                    text: str = "", reason: str | None = None, logprobs: list | None = None
                ) -> dict[str, Any]:
                    lp = None
                    if logprobs is not None:
                        lp = completion_logprobs(service.tokenizer, logprobs, offset[0])
                    offset[0] += len(text)
                    choice = {"index": 0, "text": text, "logprobs": lp, "finish_reason": reason}
                    return {**head, "choices": [choice]}

                def final(done: Done, text: TextStream) -> list[dict[str, Any]]:
                    _observe(service, call)
                    rest = text.finish(done.output.text)
                    reason = done.output.finish_reason
                    out = [chunk(rest, reason=reason, logprobs=text.take_logprobs())]
                    if include_usage:
                        out.append({**head, "choices": [], "usage": done_usage(done)})
                    return out

                text = TextStream(
                    service.tokenizer.decode,
                    "",
                    req.stops,
                    tools=False,
                    logprobs=call.params.logprobs is not None,
                )
                events = stream_events(call, text, chunk, final)
                return EventStream(events, call, service.worker.cancel, headers=headers)
            done = await wait_done(call, request, service.worker.cancel)
            _observe(service, call)
            lps = done.output.logprobs
            choice = {
                "index": 0,
                "text": done.output.text,
                "logprobs": None if lps is None else completion_logprobs(service.tokenizer, lps),
                "finish_reason": done.output.finish_reason,
            }
            body = {**head, "choices": [choice], "usage": done_usage(done)}
            return JSONResponse(body, headers=headers)

        return await _guarded(service, call, answer)

    return app


# ---- helpers -----------------------------------------------------------------------------------
async def _guarded(
    service: Service, call: Call, answer: Callable[[], Awaitable[Response]]
) -> Response:
    """Answer an admitted call; if building the answer fails before the call has ended, the
    call is cancelled, so its admission slot and KV come back (nothing leaks on an error)."""
    try:
        return await answer()
    except BaseException:
        if not call.handle.closed:
            service.worker.cancel(call)
        raise


def _observe(service: Service, call: Call) -> None:
    handle = call.handle
    if handle.first_token is not None:
        service.metrics.ttft.observe(handle.first_token - handle.accepted)
