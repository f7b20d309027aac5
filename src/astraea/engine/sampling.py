"""Per-call sampling options, the sampler over a step's logits, and a call's progress.

Options follow vLLM's names and meanings so benchmarks read the same: ``temperature=0`` is
greedy, ``top_p`` keeps the smallest set of tokens whose probability reaches it, ``seed``
makes one call's random draws reproducible whatever else shares its batch, ``min_tokens``
forbids EOS (and defers stop strings) until that many tokens exist, ``ignore_eos`` keeps
generating through EOS (forced lengths for throughput runs). vLLM's and OpenAI's other knobs
(``top_k``, ``min_p``, the three penalties, ``logit_bias``, logprobs) and a grammar that
constrains the tokens (structured outputs) are applied by ``engine/logits.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

# what torch.Generator.manual_seed accepts (a 64-bit seed, signed or not)
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1
GREEDY_BELOW = 1e-5  # temperatures under this sample greedily (vLLM's _SAMPLING_EPS)
MAX_LOGPROBS = 20
_FLOAT_MAX = (
    torch.finfo(torch.float32).max / 2
)  # finite, and its softmax cannot overflow  # alternatives per token (OpenAI's top_logprobs limit)


class TokenMatcher(Protocol):
    """One call's grammar state: masks the tokens the grammar forbids next, then learns the
    token drawn (``accept`` raises ``ValueError`` on one the grammar refuses)."""

    def mask(self, row: torch.Tensor) -> None: ...

    def accept(self, token: int) -> None: ...


class Grammar(Protocol):
    """A compiled constraint (structured outputs); each call gets its own matcher."""

    def matcher(self) -> TokenMatcher: ...


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How one call generates; validated on construction (a bad value is a ValueError)."""

    max_tokens: int = 16
    temperature: float = 0.0  # 0: greedy (arg-max)
    top_p: float = 1.0  # nucleus size in (0, 1]; 1 keeps every token
    seed: int | None = None  # per-call generator; None: torch's global one
    stop: tuple[str, ...] = ()  # strings that end the call (left out of the text)
    min_tokens: int = 0  # no EOS, no stop string before this many tokens
    ignore_eos: bool = False
    top_k: int = 0  # keep the k most likely tokens; 0 (or vLLM's -1) keeps all
    min_p: float = 0.0  # drop tokens below min_p x the most likely one's probability
    presence_penalty: float = 0.0  # OpenAI's: minus this once per token already generated
    frequency_penalty: float = 0.0  # OpenAI's: minus this per earlier occurrence
    repetition_penalty: float = 1.0  # vLLM's: divides (multiplies if < 0) seen tokens' logits
    prompt_ids: tuple[int, ...] = ()  # the prompt, which repetition_penalty also counts
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit)
    logprobs: int | None = None  # None: none; k: the drawn token's and the k most likely
    grammar: Grammar | None = None  # structured outputs: only tokens it allows

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))
        if not _is_int(self.max_tokens) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {self.max_tokens!r}")
        if not _is_int(self.min_tokens) or not 0 <= self.min_tokens <= self.max_tokens:
            raise ValueError(
                f"min_tokens must be an integer in [0, max_tokens={self.max_tokens}], "
                f"got {self.min_tokens!r}"
            )
        temperature = self.temperature
        if not isinstance(temperature, int | float) or not math.isfinite(temperature):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        top_p = self.top_p
        if not isinstance(top_p, int | float) or not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        if self.seed is not None and not (_is_int(self.seed) and SEED_MIN <= self.seed <= SEED_MAX):
            raise ValueError(
                f"seed must be an integer in [{SEED_MIN}, {SEED_MAX}] or None, got {self.seed!r}"
            )
        for s in self.stop:
            if not isinstance(s, str) or not s:
                raise ValueError(f"stop strings must be non-empty strings, got {s!r}")
        if not isinstance(self.ignore_eos, bool):
            raise ValueError(f"ignore_eos must be a bool, got {self.ignore_eos!r}")
        self._check_processing()

    def _check_processing(self) -> None:
        if self.top_k == -1:
            object.__setattr__(self, "top_k", 0)
        if not _is_int(self.top_k) or self.top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (or -1: off), got {self.top_k!r}")
        if not _number(self.min_p) or not 0.0 <= self.min_p <= 1.0:
            raise ValueError(f"min_p must be in [0, 1], got {self.min_p!r}")
        for name in ("presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            if not _number(value) or not -2.0 <= value <= 2.0:
                raise ValueError(f"{name} must be in [-2, 2], got {value!r}")
        rep = self.repetition_penalty
        if not _number(rep) or not 0.0 < rep <= 2.0:
            raise ValueError(f"repetition_penalty must be in (0, 2], got {rep!r}")
        for item in self.logit_bias:
            if not (len(item) == 2 and _is_int(item[0]) and item[0] >= 0 and _number(item[1])):
                raise ValueError(f"logit_bias entries must be (token id, number), got {item!r}")
            if not -100.0 <= item[1] <= 100.0:
                raise ValueError(f"logit_bias values must be in [-100, 100], got {item[1]!r}")
        lp = self.logprobs
        if lp is not None and not (_is_int(lp) and 0 <= lp <= MAX_LOGPROBS):
            raise ValueError(f"logprobs must be an integer in [0, {MAX_LOGPROBS}], got {lp!r}")
        if self.grammar is not None and self.ignore_eos:
            raise ValueError("ignore_eos cannot be combined with a grammar (it ends with EOS)")

    @property
    def penalized(self) -> bool:
        """Whether earlier tokens change this call's logits (any penalty set)."""
        return bool(
            self.presence_penalty or self.frequency_penalty or self.repetition_penalty != 1.0
        )

    @property
    def greedy(self) -> bool:
        """Arg-max below vLLM's sampling epsilon: dividing logits by a tinier temperature
        overflows the softmax (inf / nan probabilities), and the draw would be arg-max anyway."""
        return self.temperature < GREEDY_BELOW

    def generator(self) -> torch.Generator | None:
        """A fresh generator for one call (None when greedy or unseeded)."""
        if self.greedy or self.seed is None:
            return None
        return torch.Generator().manual_seed(self.seed)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def ban_tokens(logits: torch.Tensor, row: int, token_ids: Iterable[int]) -> None:
    """Make ``token_ids`` impossible in ``row`` (EOS below ``min_tokens``)."""
    ids = list(token_ids)
    if ids:
        logits[row, ids] = -math.inf


def sample(
    logits: torch.Tensor,
    params: Sequence[SamplingParams],
    generators: Sequence[torch.Generator | None],
) -> list[int]:
    """One token per row of float32 ``logits`` [rows, vocab]: greedy rows in one arg-max,
    the others drawn one by one (each from its own generator, so a seeded call does not
    depend on its batch neighbours)."""
    tokens = logits.argmax(dim=-1).tolist()
    for row, p in enumerate(params):
        if not p.greedy:
            tokens[row] = _draw(logits[row], p, generators[row])
    return tokens


def _draw(row: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> int:
    row = row.float()
    if params.top_k and params.top_k < row.numel():
        kth = row.topk(params.top_k).values[-1]
        row = row.masked_fill(row < kth, -math.inf)
    # a tiny repetition_penalty or temperature can overflow float32: the largest stays
    # the largest (a softmax of +inf is nan)
    scaled = (row / params.temperature).nan_to_num(nan=-math.inf, posinf=_FLOAT_MAX)
    probs = torch.softmax(scaled, dim=-1)
    if params.min_p > 0.0:  # relative to the most likely token, which always stays
        probs = probs.masked_fill(probs < params.min_p * probs.max(), 0.0)
    if params.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        # Keep a token while the mass before it is below top_p: the first always stays.
        keep = (sorted_probs.cumsum(0) - sorted_probs) < params.top_p
        keep[0] = True  # a top_p below float32's smallest step keeps the most likely token
        sorted_probs = sorted_probs * keep
        pick = torch.multinomial(sorted_probs, 1, generator=generator)
        return int(order[pick])
    return int(torch.multinomial(probs, 1, generator=generator))


@dataclass(frozen=True, slots=True)
class Output:
    """A finished call: generated ids (EOS included), text (stop string cut off), why it ended:
    ``"stop"`` (EOS or a stop string) or ``"length"`` (max_tokens)."""

    job_id: str
    text: str
    token_ids: list[int]
    finish_reason: str
    logprobs: list[TokenLogprob] | None = None  # per generated token, when asked for


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A drawn token's log-probability and the most likely alternatives, from the model's
    own distribution (vLLM's ``raw_logprobs``: before penalties, masks and temperature)."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(slots=True, eq=False)
class Request:
    """Handle of one call in flight: its tokens so far; ``output`` is set when it ends."""

    job_id: str
    params: SamplingParams
    last: bool  # the job ends with this call
    generator: torch.Generator | None
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str = "length"
    stop_at: int | None = None  # where the matched stop string starts in the text
    checked_chars: int = 0  # text already searched for stop strings
    output: Output | None = None
    error: BaseException | None = None  # the call failed inside a step (it has ended)
    matcher: TokenMatcher | None = None  # the grammar's state (structured outputs)
    logprobs: list[TokenLogprob] | None = None

    def __post_init__(self) -> None:
        # Made when the call is submitted: a grammar that cannot start refuses the call
        # before the engine changes anything.
        if self.params.grammar is not None and self.matcher is None:
            self.matcher = self.params.grammar.matcher()
        if self.params.logprobs is not None and self.logprobs is None:
            self.logprobs = []

    @property
    def finished(self) -> bool:
        return self.output is not None

    def observe(
        self, token: int, eos_ids: frozenset[int], decode: Callable[[list[int]], str] | None
    ) -> bool:
        """Record a sampled token; True when it ends the call early: EOS (unless
        ``ignore_eos``) or a stop string, never below ``min_tokens`` (vLLM's rules)."""
        self.token_ids.append(token)
        params = self.params
        hit = bool(params.stop) and decode is not None and self._find_stop(decode(self.token_ids))
        if len(self.token_ids) < params.min_tokens:
            self.stop_at = None
            return False
        if hit or (not params.ignore_eos and token in eos_ids):
            self.finish_reason = "stop"
            return True
        return False

    def _find_stop(self, text: str) -> bool:
        """Search only text not searched before (a string may straddle the boundary)."""
        starts = [
            i
            for s in self.params.stop
            if (i := text.find(s, max(0, self.checked_chars - len(s) + 1))) >= 0
        ]
        self.checked_chars = len(text)
        self.stop_at = min(starts) if starts else None
        return bool(starts)

    def finish(self, text: str) -> Output:
        if self.stop_at is not None:
            text = text[: self.stop_at]
        logprobs = None if self.logprobs is None else list(self.logprobs)
        self.output = Output(self.job_id, text, list(self.token_ids), self.finish_reason, logprobs)
        return self.output
