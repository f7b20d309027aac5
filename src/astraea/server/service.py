"""From a validated request to a ``Call``: which job, which tokens, which sampling options,
and what the answer will mean for the job.

Rules for the end of a job (docs/server.md): a chat answer with tool calls leaves the job
waiting on the first tool named; an answer without tool calls ends the job and frees its
KV (an agent that stops calling tools is done). A completion ends its job unless the
request named one (header or ``astraea_job_id``): then the job waits for its next call.
``astraea_last`` overrides both; the time-to-live reclaims jobs whose next call never comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from astraea.engine.engine import Engine
from astraea.engine.sampling import Output, SamplingParams
from astraea.server.calls import Admission, Call, CallHandle, Verdict
from astraea.server.chat_template import CALL_CLOSE, END, parse_tool_calls
from astraea.server.config import ServerConfig
from astraea.server.errors import APIError, context_too_long
from astraea.server.jobs import Claim, JobTable, answer_key, conversation_keys
from astraea.server.metrics import ServerMetrics
from astraea.server.options import (
    content_constraint,
    logit_bias,
    logprobs_count,
    refuse_unsupported,
    tool_constraint,
)
from astraea.server.protocol import ChatCompletionRequest, CompletionRequest, _Generation
from astraea.server.structured import Grammars, LLGuidanceGrammar, available
from astraea.server.templates import choose_template
from astraea.server.worker import EngineWorker

T = TypeVar("T")
OFF_LOOP_THREADS = 2  # request threads templating / tokenizing at once (the cores we have)


class Service:
    """Everything a request handler needs: the template, the job table, the engine thread."""

    def __init__(self, engine: Engine, config: ServerConfig) -> None:
        if engine.tokenizer is None:
            raise ValueError("the server needs an engine with a tokenizer")
        self.engine, self.config = engine, config
        self.tokenizer = engine.tokenizer
        self.template = choose_template(self.tokenizer, config.chat_template)
        self.eos_ids = engine.eos_token_ids
        end = self.tokenizer.encode(END)
        self.end_id = end[0] if len(end) == 1 else None
        sched = engine.scheduler.config
        self.max_context = min(
            engine.runner.model.config.max_position, sched.num_device_blocks * sched.block_size
        )
        self.vocab_size = engine.runner.model.config.vocab_size
        self.grammars = Grammars(
            self.tokenizer, self.vocab_size, engine.eos_token_ids, config.structured_close
        )
        self.table = JobTable(config.job_ttl)
        self.metrics = ServerMetrics(config.served_model_name, self.max_context)
        self.admission = Admission(config.max_queue, config.retry_after)
        self.worker = EngineWorker(engine, self.table, self.metrics, poll=config.poll)
        self._limiter: anyio.CapacityLimiter | None = None  # made on the event loop
        self.tokenizer.fewest_tokens(0)  # reads the vocabulary now, not on a request

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    # ---- chat ----------------------------------------------------------------------------------
    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound request work (parsing, templating, tokenizing a large prompt) on a
        worker thread, a few at a time, so the event loop keeps answering everyone else."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(OFF_LOOP_THREADS)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def chat_call(
        self, req: ChatCompletionRequest, explicit: str | None
    ) -> tuple[Call, Claim]:
        refuse_unsupported(req)
        tools = req.tools or []
        names = [t.function.name for t in tools] if req.tool_choice != "none" else []
        forcing = bool(names) and req.tool_choice not in (None, "auto")
        by_grammar = forcing and available()
        forced = self.template.forced_prefix(req.tool_choice, tools, by_grammar) if names else ""
        # A named tool is called once, and so is any with parallel_tool_calls false: stop at
        # the end of its block.
        once = (forcing and req.tool_choice != "required") or req.parallel_tool_calls is False
        extra_stop = (CALL_CLOSE,) if names and once else ()
        self._refuse_surely_too_long(sum(len(m.text.encode()) for m in req.messages))

        def constraint() -> LLGuidanceGrammar | None:
            content = content_constraint(req, self.grammars)
            tool = tool_constraint(req, self.grammars, tools) if by_grammar else None
            if content is not None and tool is not None:
                raise APIError(
                    400,
                    "response_format (or another output constraint) cannot be combined with "
                    "tool_choice 'required' or a named tool",
                    param="response_format",
                    code="invalid_value",
                )
            return content or tool

        grammar = await self.off_loop(constraint)
        keys = await self.off_loop(conversation_keys, req.messages, req.tools)
        claim = self.table.claim_chat(explicit, keys)
        try:

            def full() -> list[int]:
                return self.encode(self.template.render(req.messages, req.tools, forced))

            base = claim.base.context if claim.base is not None else None

            def build() -> list[int] | None:
                if base is None:
                    return full()
                ends = bool(base) and (base[-1] == self.end_id or base[-1] in self.eos_ids)
                text = self.template.extend(req.messages, claim.matched, req.tools, forced, ends)
                return None if text is None else self.encode(text)

            prompt = await self.off_loop(build)
            if prompt is None:  # the template re-renders the history: start the job anew
                base, prompt = None, await self.off_loop(full)
            used = len(base or ()) + len(prompt)
            params = self._params(
                req, req.output_limit, used, extra_stop, grammar, (base or [], prompt)
            )
            last = req.astraea_last if req.astraea_last is not None else not names

            def conclude(output: Output) -> Verdict:
                content, calls = parse_tool_calls(forced + output.text, names)
                ends = last if req.astraea_last is not None or last else not calls
                return Verdict(
                    ends_job=ends,
                    tool=calls[0].name if calls else req.astraea_tool or "tool",
                    tool_latency=req.astraea_tool_latency,
                    chat_key=answer_key(keys[-1], content, calls),
                    chat_len=len(req.messages) + 1,
                    parsed=(content, calls),
                )

            call = self._call(claim, prompt, params, last, conclude, base, full, req)
            call.prefix = forced
            call.tool_guess = req.astraea_tool or "tool"
        except BaseException:
            self.table.unclaim(claim)
            raise
        return call, claim

    # ---- completions ---------------------------------------------------------------------------
    async def completion_call(
        self, req: CompletionRequest, explicit: str | None
    ) -> tuple[Call, Claim]:
        refuse_unsupported(req)
        source = req.prompt
        if isinstance(source, list):
            bad = next((t for t in source if not 0 <= t < self.vocab_size), None)  # type: ignore[operator]
            if bad is not None:
                raise APIError(
                    400,
                    f"token id {bad} is outside the vocabulary (0..{self.vocab_size - 1})",
                    param="prompt",
                    code="invalid_value",
                )
        elif isinstance(source, str):
            self._refuse_surely_too_long(len(source.encode()))
        claim = self.table.claim_completion(explicit, source)  # type: ignore[arg-type]
        try:

            def full() -> list[int]:
                return self.encode(source) if isinstance(source, str) else list(source)  # type: ignore[arg-type]

            base = claim.base.context if claim.base is not None else None
            if claim.base is None:
                prompt = await self.off_loop(full)
            elif isinstance(source, str):
                prompt = await self.off_loop(self.encode, source[len(claim.base.text or "") :])
            else:
                prompt = list(source[len(claim.base.context) :])  # type: ignore[misc]
            grammar = await self.off_loop(content_constraint, req, self.grammars)
            used = len(base or ()) + len(prompt)
            params = self._params(req, req.max_tokens, used, (), grammar, (base or [], prompt))
            last = req.astraea_last if req.astraea_last is not None else explicit is None

            def conclude(output: Output) -> Verdict:
                text = source + output.text if isinstance(source, str) else None
                return Verdict(
                    last, req.astraea_tool or "tool", req.astraea_tool_latency, text=text
                )

            call = self._call(claim, prompt, params, last, conclude, base, full, req)
            call.tool_guess = req.astraea_tool or "tool"
        except BaseException:
            self.table.unclaim(claim)
            raise
        return call, claim

    # ---- shared --------------------------------------------------------------------------------
    def _call(
        self,
        claim: Claim,
        prompt: list[int],
        params: SamplingParams,
        last: bool,
        conclude: Callable[[Output], Verdict],
        base: list[int] | None,
        full: Callable[[], list[int]],
        req: _Generation,
    ) -> Call:
        handle = CallHandle(asyncio.get_running_loop(), self.admission)
        return Call(
            job_id=claim.job_id,
            prompt=prompt,
            params=params,
            last=last,
            conclude=conclude,
            handle=handle,
            base_context=list(base) if base is not None else None,
            full_prompt=full if base is not None else None,
            restart=claim.restart,
            tool_latency=req.astraea_tool_latency,
        )

    def _params(
        self,
        req: _Generation,
        limit: int | None,
        used: int,
        extra_stop: tuple[str, ...] = (),
        grammar: LLGuidanceGrammar | None = None,
        context: tuple[list[int], list[int]] = ([], []),
    ) -> SamplingParams:
        """Sampling options; the output limit must fit the context left (OpenAI's 400).
        ``context`` is the job's context before this call and the call's new tokens: the
        repetition penalty counts them."""
        room = self.max_context - used
        if limit is None:
            if room < 1:
                raise context_too_long(used + 1, self.max_context, used)
            limit = min(self.config.default_max_tokens, room)
        elif limit > room:
            raise context_too_long(used + limit, self.max_context, used)
        if req.min_tokens > limit:
            raise APIError(
                400,
                f"min_tokens ({req.min_tokens}) exceeds max_tokens ({limit})",
                param="min_tokens",
                code="invalid_value",
            )
        if grammar is not None and (req.min_tokens or req.ignore_eos):
            raise APIError(
                400,
                "min_tokens and ignore_eos cannot be combined with structured outputs (the "
                "grammar decides where the answer ends)",
                param="min_tokens" if req.min_tokens else "ignore_eos",
                code="invalid_value",
            )
        rep = 1.0 if req.repetition_penalty is None else float(req.repetition_penalty)
        try:
            return SamplingParams(
                max_tokens=limit,
                temperature=0.0 if req.temperature is None else float(req.temperature),
                top_p=1.0 if req.top_p is None else float(req.top_p),
                seed=req.seed,
                stop=req.stops + extra_stop,
                min_tokens=req.min_tokens,
                ignore_eos=req.ignore_eos,
                top_k=req.top_k or 0,
                min_p=req.min_p or 0.0,
                presence_penalty=float(req.presence_penalty or 0.0),
                frequency_penalty=float(req.frequency_penalty or 0.0),
                repetition_penalty=rep,
                prompt_ids=tuple(context[0]) + tuple(context[1]) if rep != 1.0 else (),
                logit_bias=logit_bias(req, self.vocab_size),
                logprobs=logprobs_count(req),
                grammar=None if grammar is None else grammar.bounded(limit),
            )
        except ValueError as exc:
            raise APIError(400, str(exc), code="invalid_value") from None

    def _refuse_surely_too_long(self, num_bytes: int) -> None:
        """400 at once for a prompt that cannot fit whatever it tokenizes to (no need to
        spend seconds tokenizing megabytes to learn it)."""
        fewest = self.tokenizer.fewest_tokens(num_bytes)
        if fewest >= self.max_context:
            raise APIError(
                400,
                f"This model's maximum context length is {self.max_context} tokens. However, "
                f"the prompt has at least {fewest} tokens. Please reduce the length of the "
                "messages.",
                param="messages",
                code="context_length_exceeded",
            )

    def check_model(self, name: str) -> None:
        if name != self.config.served_model_name:
            raise APIError(
                404,
                f"The model `{name}` does not exist; this server serves "
                f"`{self.config.served_model_name}`",
                param="model",
                code="model_not_found",
            )

    async def snapshot(self) -> dict[str, Any]:
        return await asyncio.wrap_future(self.worker.snapshot())
