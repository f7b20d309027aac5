"""Server fixtures: a tiny random Llama behind a real byte-level tokenizer, served by a real
uvicorn server on a free loopback port in a background thread.

The tiny model's answers are noise, so chat tests script them: ``EchoRunner`` runs the real
forward pass (KV cache and all) and then forces the logits so that the answer to a user or
tool turn ``say:TEXT`` is ``TEXT`` followed by ``<|im_end|>``.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("openai")

import openai  # noqa: E402
import uvicorn  # noqa: E402
from tokenizers import AddedToken, decoders, models, pre_tokenizers  # noqa: E402
from tokenizers import Tokenizer as RustTokenizer  # noqa: E402

from astraea.engine.config import EngineConfig  # noqa: E402
from astraea.engine.engine import Engine  # noqa: E402
from astraea.engine.model import LlamaModel  # noqa: E402
from astraea.engine.runner import ModelRunner  # noqa: E402
from astraea.engine.tokenizer import Tokenizer  # noqa: E402
from astraea.server import ServerConfig, create_app  # noqa: E402
from tests.engine.test_runner import TINY as ENGINE_TINY  # noqa: E402
from tests.engine.test_runner import random_tensors  # noqa: E402

IM_START, IM_END = 256, 257
MODEL = "tiny"
TINY = dataclasses.replace(  # the engine tests' tiny Llama, with a byte vocabulary
    ENGINE_TINY, vocab_size=258, max_position=2048, eos_token_ids=(IM_END,)
)


def _byte_chars() -> list[str]:
    """GPT-2's printable stand-in for each byte (index = byte value)."""
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def byte_tokenizer() -> Tokenizer:
    """Token id = byte value, plus ChatML's two special tokens (no merges)."""
    vocab = {c: i for i, c in enumerate(_byte_chars())}
    backend = RustTokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in ("<|im_start|>", "<|im_end|>")]
    )
    return Tokenizer(backend, None, None, (IM_END,))


class EchoRunner(ModelRunner):
    """The real forward pass, then logits forced to the scripted answer (see module doc);
    ``delay`` seconds of sleep per step make calls slow enough to interrupt."""

    delay = 0.0
    MARK = (*b"say:",)
    ANSWER = (IM_START, *b"assistant\n")

    @torch.inference_mode()  # the logits are inference tensors
    def compute_logits(self, plan, token_ids, step=0):
        jobs, logits = super().compute_logits(plan, token_ids, step)
        if self.delay:
            time.sleep(self.delay)
        for row, job in enumerate(jobs):
            target = self.script(list(token_ids[job]))
            if target is not None:
                logits[row] = -1e9
                logits[row, target] = 1e9
        return jobs, logits

    def script(self, ids: list[int]) -> int | None:
        start = _rfind(ids, self.ANSWER)
        if start < 0:
            return None
        answer = ids[start + len(self.ANSWER) :]
        mark = _rfind(ids[:start], self.MARK)
        if mark < 0:
            return None
        body = ids[mark + len(self.MARK) : start]
        text = body[: body.index(IM_END)] if IM_END in body else body
        target = [*text, IM_END]
        return target[len(answer)] if len(answer) < len(target) else None


def _rfind(ids: list[int], pattern: tuple[int, ...]) -> int:
    n = len(pattern)
    for i in range(len(ids) - n, -1, -1):
        if tuple(ids[i : i + n]) == pattern:
            return i
    return -1


@pytest.fixture(scope="session")
def tiny_model():
    return LlamaModel.from_tensors(TINY, random_tensors(TINY), torch.float32)


@pytest.fixture(scope="session")
def tokenizer():
    return byte_tokenizer()


def tiny_engine(model, tokenizer, policy: str = "astraea", delay: float = 0.0) -> Engine:
    config = EngineConfig(
        dtype="float32", block_size=8, num_gpu_blocks=256, num_cpu_blocks=32, num_threads=1
    )
    runner = EchoRunner(model, config)
    runner.delay = delay
    return Engine(runner, policy=policy, tokenizer=tokenizer, check_integrity=True)


class LiveServer:
    """uvicorn on 127.0.0.1, a free port, in a thread; ``url`` is the /v1 base URL."""

    def __init__(self, app) -> None:
        self.app = app
        self.service = app.state.service
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.closing: list = []  # clients to close with the server (sockets must not leak)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.root = f"http://127.0.0.1:{port}"
        self.url = f"{self.root}/v1"
        return self

    def __exit__(self, *exc) -> None:
        for client in self.closing:
            client.close()
        self.server.should_exit = True
        self.thread.join(10)

    def openai(self, **kw) -> openai.OpenAI:
        """An ``openai`` client for this server, closed with it."""
        client = openai.OpenAI(
            base_url=self.url, api_key=kw.pop("api_key", "none"), max_retries=0, **kw
        )
        self.closing.append(client)
        return client

    @property
    def engine(self) -> Engine:
        return self.service.engine

    def snapshot(self) -> dict:
        return self.service.worker.snapshot().result(5)

    def wait_for(self, check: Callable[[dict], bool], timeout: float = 5.0) -> dict:
        """Poll the engine's state (read on its own thread) until ``check`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            if check(snap):
                return snap
            if time.monotonic() > deadline:
                raise AssertionError(f"state never reached: {snap}")
            time.sleep(0.02)


@pytest.fixture
def serve(tiny_model, tokenizer) -> Iterator[Callable[..., LiveServer]]:
    """``serve(policy=..., delay=..., **ServerConfig fields)`` -> a running LiveServer."""
    started: list[LiveServer] = []

    def start(policy: str = "astraea", delay: float = 0.0, **config) -> LiveServer:
        engine = tiny_engine(tiny_model, tokenizer, policy, delay)
        config.setdefault("served_model_name", MODEL)
        server = LiveServer(create_app(engine, ServerConfig(**config))).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


def idle(snap: dict) -> bool:
    """No job left and every device block free."""
    return snap["jobs"] == 0 and snap["device_free"] == snap["device_blocks"]
