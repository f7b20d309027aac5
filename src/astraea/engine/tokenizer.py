"""Tokenizer and chat template, built from a GGUF file's metadata or a Hugging Face directory.

We build the fast (Rust) tokenizer directly with the ``tokenizers`` package instead of going
through transformers: it reuses the GGUF metadata the weight loader already parsed (parsing it
twice costs seconds), keeps transformers out of the serving path, and lets us honour the GGUF
pre-tokenizer name (``smollm`` splits digits one by one, which transformers' GGUF converter
drops). Chat templates render with a sandboxed Jinja environment set up as transformers does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as RustTokenizer

_CONTROL, _USER_DEFINED = 3, 4  # llama.cpp token types that are special tokens
_GIL_FREE_CHARS = 4096  # texts longer than this are encoded without holding the GIL


class Tokenizer:
    """Text <-> token ids, the chat template, and which ids end a generation."""

    def __init__(
        self,
        backend: RustTokenizer,
        chat_template: str | None = None,
        bos_token_id: int | None = None,
        eos_token_ids: Sequence[int] = (),
    ) -> None:
        self.backend = backend
        self.chat_template = chat_template
        self.bos_token_id = bos_token_id
        self.eos_token_ids = frozenset(eos_token_ids)
        self._max_token_bytes: int | None = None  # see fewest_tokens

    # ---- basic use -----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def token(self, token_id: int) -> str | None:
        return self.backend.id_to_token(token_id)

    @property
    def bos_token(self) -> str | None:
        return None if self.bos_token_id is None else self.token(self.bos_token_id)

    @property
    def eos_token(self) -> str | None:
        return self.token(min(self.eos_token_ids)) if self.eos_token_ids else None

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token strings in it become their ids. Long texts
        go through ``encode_batch``, which releases the GIL (``encode`` holds it: a 2 MB
        prompt would stop every other thread of the process for a second or more)."""
        if len(text) > _GIL_FREE_CHARS:
            return self.backend.encode_batch([text], add_special_tokens=False)[0].ids
        return self.backend.encode(text, add_special_tokens=False).ids

    def fewest_tokens(self, num_bytes: int) -> int:
        """A lower bound on the tokens of any text of ``num_bytes`` UTF-8 bytes (no token
        covers more than the longest vocabulary entry; a normalizer may shrink text, so it
        gets a margin): prompts surely too long are refused before they are tokenized."""
        if self._max_token_bytes is None:
            vocab = self.backend.get_vocab(with_added_tokens=True)
            longest = max((len(t.encode()) for t in vocab), default=1)
            margin = 4 if self.backend.normalizer is not None else 1
            self._max_token_bytes = max(1, longest) * margin
        return -(-num_bytes // self._max_token_bytes)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one token stands for (logprobs report them: a token may hold part of a
        UTF-8 character); empty for ids past the vocabulary (a model's padding rows)."""
        piece = self.backend.id_to_token(token_id)
        if piece is None:
            return b""
        if token_id in self._special_ids or not isinstance(
            self.backend.decoder, decoders.ByteLevel
        ):
            return self.backend.decode([token_id], skip_special_tokens=False).encode()
        table = _byte_decoder()
        if all(ch in table for ch in piece):
            return bytes(table[ch] for ch in piece)
        return piece.encode()

    @cached_property
    def _special_ids(self) -> frozenset[int]:
        return frozenset(self.backend.get_added_tokens_decoder())

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def is_eos(self, token_id: int) -> bool:
        return token_id in self.eos_token_ids

    # ---- chat ------------------------------------------------------------------------------
    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = True,
        tokenize: bool = True,
        **kwargs: Any,
    ) -> list[int] | str:
        """Render ``messages`` (``{"role", "content"}`` dicts) with the model's template."""
        if self.chat_template is None:
            raise ValueError("this tokenizer has no chat template")
        text = self._template.render(
            messages=list(messages),
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token or "",
            eos_token=self.eos_token or "",
            **kwargs,
        )
        return self.encode(text) if tokenize else text

    @cached_property
    def _template(self) -> Any:
        return compile_chat_template(self.chat_template or "")

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_gguf_metadata(cls, meta: Mapping[str, Any]) -> Tokenizer:
        """Byte-level BPE (llama.cpp model ``gpt2``) from ``tokenizer.ggml.*`` metadata."""
        kind = meta.get("tokenizer.ggml.model")
        if kind != "gpt2":
            raise ValueError(
                f"GGUF tokenizer model {kind!r} is not supported (byte-level BPE only); "
                "serve the model from a Hugging Face directory instead"
            )
        tokens: list[str] = meta["tokenizer.ggml.tokens"]
        types: list[int] = meta.get("tokenizer.ggml.token_type") or [1] * len(tokens)
        merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges") or []]
        vocab = {tok: i for i, tok in enumerate(tokens)}
        backend = RustTokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
        backend.pre_tokenizer = _gguf_pre_tokenizer(meta.get("tokenizer.ggml.pre") or "default")
        backend.decoder = decoders.ByteLevel()
        special = [
            AddedToken(tok, special=True, normalized=False)
            for tok, kind in zip(tokens, types, strict=True)
            if kind in (_CONTROL, _USER_DEFINED)
        ]
        backend.add_special_tokens(special)
        eos = meta.get("tokenizer.ggml.eos_token_id")
        return cls(
            backend,
            chat_template=meta.get("tokenizer.chat_template"),
            bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
            eos_token_ids=() if eos is None else (int(eos),),
        )

    @classmethod
    def from_hf_dir(cls, path: Path, eos_token_ids: Sequence[int] = ()) -> Tokenizer:
        """``tokenizer.json`` plus the template and special tokens of ``tokenizer_config.json``."""
        file = path / "tokenizer.json"
        if not file.is_file():
            raise FileNotFoundError(f"{path} has no tokenizer.json (slow tokenizers unsupported)")
        backend = RustTokenizer.from_file(str(file))
        config_file = path / "tokenizer_config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        template = config.get("chat_template")
        template_file = path / "chat_template.jinja"
        if template is None and template_file.is_file():
            template = template_file.read_text()
        if isinstance(template, list):  # named templates: take the default one
            template = next((t["template"] for t in template if t.get("name") == "default"), None)
        bos = _special_id(backend, config.get("bos_token"))
        eos = list(eos_token_ids)
        config_eos = _special_id(backend, config.get("eos_token"))
        if config_eos is not None and config_eos not in eos:
            eos.append(config_eos)
        return cls(backend, template, bos, eos)


def compile_chat_template(source: str) -> Any:
    """A chat template as a Jinja template in a sandbox (a model file's template is untrusted
    code), with the globals and filters transformers gives templates."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    def tojson(value: Any, indent: int | None = None, **_: Any) -> str:
        return json.dumps(value, indent=indent, ensure_ascii=False)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


@cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: the printable stand-in of each byte -> the byte."""
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[chr(b)] = b
        else:
            table[chr(256 + extra)] = b
            extra += 1
    return table


def _special_id(backend: RustTokenizer, token: Any) -> int | None:
    if isinstance(token, dict):
        token = token.get("content")
    return None if token is None else backend.token_to_id(token)


def _gguf_pre_tokenizer(name: str) -> pre_tokenizers.PreTokenizer:
    """llama.cpp's pre-tokenizer names we know, as ``tokenizers`` pre-tokenizers."""
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if name in ("default", "gpt2"):
        return byte_level
    if name == "smollm":  # digits one by one, then GPT-2's split (as SmolLM's tokenizer.json)
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    raise ValueError(f"GGUF pre-tokenizer {name!r} is not supported; use a Hugging Face directory")
