"""``astraea serve``: flags reach the engine, the scheduler and the server; bad ones exit 2."""

import astraea.engine
import astraea.server.foreground
from tests.fakes import run_cli
from tests.server.conftest import tiny_engine


def fake_serve(monkeypatch, model, tokenizer) -> tuple[dict, dict]:
    """Replace the engine and the server loop: (what the engine was built with, what was
    served)."""
    built, served = {}, {}

    def fake_engine(path, config, policy, scheduler_overrides):
        built.update(path=path, config=config, policy=policy, overrides=scheduler_overrides)
        return tiny_engine(model, tokenizer)

    monkeypatch.setattr(astraea.engine, "Engine", fake_engine)
    monkeypatch.setattr(
        astraea.server.foreground, "serve", lambda app, **kw: served.update(app=app, **kw)
    )
    return built, served


def test_flags_build_the_engine_and_the_app(monkeypatch, capsys, tiny_model, tokenizer):
    built, served = fake_serve(monkeypatch, tiny_model, tokenizer)
    args = [
        "serve",
        "--model",
        "m.gguf",
        "--port",
        "9123",
        "--policy",
        "vllm-fcfs",
        "--block-size",
        "8",
        "--num-gpu-blocks-override",
        "64",
        "--cpu-blocks",
        "4",
        "--threads",
        "1",
        "--max-num-seqs",
        "3",
        "--max-num-batched-tokens",
        "512",
        "--max-steps-per-plan",
        "4",
        "--dtype",
        "float32",
        "--max-queue",
        "5",
        "--job-ttl",
        "7",
        "--api-key",
        "k",
    ]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    config = built["config"]
    assert (config.block_size, config.num_gpu_blocks, config.num_cpu_blocks) == (8, 64, 4)
    assert (config.max_num_seqs, config.max_num_batched_tokens, config.dtype) == (3, 512, "float32")
    assert built["policy"].name == "vllm-fcfs" and built["overrides"] == {"max_steps_per_plan": 4}
    assert served["host"] == "127.0.0.1" and served["port"] == 9123
    settings = served["app"].state.service.config
    assert (settings.served_model_name, settings.max_queue, settings.job_ttl) == ("m", 5, 7.0)
    assert settings.api_key == "k"
    assert settings.allowed_origins == () and "127.0.0.1" in settings.allowed_hosts
    assert settings.structured_close
    code, _, err = run_cli([*args, "--no-structured-close"], capsys)
    assert code == 0, err
    assert not served["app"].state.service.config.structured_close


def test_old_kv_flag_names_are_hidden_aliases(monkeypatch, capsys, tiny_model, tokenizer):
    built, _ = fake_serve(monkeypatch, tiny_model, tokenizer)
    args = ["serve", "--model", "m.gguf", "--gpu-blocks", "48", "--max-batched-tokens", "256"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert (built["config"].num_gpu_blocks, built["config"].max_num_batched_tokens) == (48, 256)
    code, out, _ = run_cli(["serve", "--help"], capsys)
    assert "--num-gpu-blocks-over" in out and "--max-num-batched-tok" in out  # (cut to width)
    assert "--gpu-blocks" not in out and "--max-batched-tokens " not in out


def test_chat_template_and_tool_call_parser(monkeypatch, capsys, tiny_model, tokenizer, tmp_path):
    _, served = fake_serve(monkeypatch, tiny_model, tokenizer)
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}")
    args = ["serve", "--model", "m.gguf", "--chat-template", str(template)]
    code, _, err = run_cli([*args, "--tool-call-parser", "hermes"], capsys)
    assert code == 0, err
    service = served["app"].state.service
    assert service.config.chat_template == template.read_text()
    assert service.template.source == template.read_text()
    code, _, err = run_cli([*args, "--tool-call-parser", "mistral"], capsys)
    assert code == 2 and "hermes" in err
    code, _, err = run_cli(["serve", "--chat-template", str(tmp_path / "missing.jinja")], capsys)
    assert code == 2 and "--chat-template" in err


def test_browser_flags(monkeypatch, capsys, tiny_model, tokenizer):
    """Origins from the flag; on a non-loopback address any Host name is served."""
    _, served = fake_serve(monkeypatch, tiny_model, tokenizer)
    args = [
        "serve",
        "--host",
        "0.0.0.0",
        "--allowed-origins",
        "https://a.example,https://b.example",
    ]
    code, _, err = run_cli([*args, "--allowed-origins", "http://localhost:3000"], capsys)
    assert code == 0, err
    settings = served["app"].state.service.config
    assert settings.allowed_origins == (
        "https://a.example",
        "https://b.example",
        "http://localhost:3000",
    )
    assert settings.allowed_hosts is None


def test_bad_flags_exit_2(capsys):
    code, _, err = run_cli(["serve", "--policy", "nope"], capsys)
    assert code == 2 and "unknown policy 'nope'" in err
    code, _, err = run_cli(["serve", "--policy-param", "novalue"], capsys)
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = run_cli(["serve", "--policy", "astraea", "--policy-param", "bogus=1"], capsys)
    assert code == 2 and "bogus" in err


def test_policy_short_name_is_a_hidden_alias(monkeypatch, capsys, tiny_model, tokenizer):
    """``-P`` (easy to mix up with ``-p``, once --profile) still works but is not shown."""
    built, _ = fake_serve(monkeypatch, tiny_model, tokenizer)
    code, _, err = run_cli(["serve", "--model", "m.gguf", "-P", "vllm-fcfs"], capsys)
    assert code == 0, err
    assert built["policy"].name == "vllm-fcfs"
    code, out, _ = run_cli(["serve", "--help"], capsys)
    assert "--policy" in out and "-P " not in out
