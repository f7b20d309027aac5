"""Synthetic prompt text of a given length in tokens, reproducible per job and call.

Common short English words each encode as one token (with their leading space) in the
BPE vocabularies of Llama-family models, so ``n`` words are about ``n`` tokens; the server's
``usage`` reports the exact counts, which the benchmark records.
"""

from __future__ import annotations

import random

_PROSE = (
    "the of and to in is was for on are with as at be by this had not but from or have an "
    "they which one you were all we her she there would their will when who him been has "
    "more if no out do so can what up said about other into than its time only could new "
    "them man some these then two first may any like now my such make over our even most "
    "me state after also made many did must before back see through way where get much go "
    "well your know should down work year because come people just say each those take day"
)
WORDS = tuple(_PROSE.split())


def synthetic_text(num_tokens: int, seed: str) -> str:
    """About ``num_tokens`` tokens of word salad, the same for the same ``seed``."""
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(max(num_tokens, 1)))
