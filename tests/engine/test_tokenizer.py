"""The tokenizer's server-facing guarantees: long texts do not hold the GIL, and the cheap
lower bound on a text's tokens never exceeds the real count."""

import threading
import time

from tests.server.conftest import byte_tokenizer


def test_encoding_a_long_text_lets_other_threads_run():
    """A server thread tokenizing a huge prompt must not hold the GIL the whole time."""
    tokenizer = byte_tokenizer()
    ticks, stop = [0], threading.Event()

    def spin() -> None:
        while not stop.is_set():
            time.sleep(0.001)
            ticks[0] += 1

    thread = threading.Thread(target=spin)
    thread.start()
    started = time.perf_counter()
    ids = tokenizer.encode("word " * 300_000)
    took = time.perf_counter() - started
    stop.set()
    thread.join()
    assert len(ids) == 1_500_000
    assert ticks[0] >= took * 1000 / 10, (ticks[0], took)  # ran at least a tenth of the time


def test_fewest_tokens_is_a_lower_bound():
    tokenizer = byte_tokenizer()
    for text in ["", "a", "<|im_start|>" * 50, "héllo wörld " * 40]:
        assert tokenizer.fewest_tokens(len(text.encode())) <= len(tokenizer.encode(text))
