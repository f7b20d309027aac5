"""The profiler: the non-negative fit, the grid, a real profile of a tiny random model that
round-trips through ``get_profile`` and drives the simulator, and ``astraea profile``."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from astraea.engine.config import EngineConfig  # noqa: E402
from astraea.engine.model import LlamaModel  # noqa: E402
from astraea.engine.profiler import (  # noqa: E402
    Shape,
    fit_cost_model,
    nnls,
    profile_engine,
    profile_grid,
    service_model,
)
from astraea.engine.runner import ModelRunner  # noqa: E402
from astraea.predict.service import ServiceTimeModel  # noqa: E402
from astraea.sim.profiles import get_profile, save_profile  # noqa: E402
from astraea.sim.run import simulate  # noqa: E402
from astraea.workloads import write_trace  # noqa: E402
from tests.engine.test_runner import TINY, random_tensors  # noqa: E402
from tests.fakes import make_job, run_cli  # noqa: E402

SHAPES = [
    Shape(((0, 16),)),
    Shape(((0, 128),)),
    Shape(((256, 64),)),
    Shape((), 1, 64),
    Shape((), 8, 256),
    Shape((), 32, 1024),
    Shape(((0, 32),), 4, 128),
]


def test_shape_features_count_as_the_scheduler_does():
    shape = Shape(((0, 16), (100, 8)), 3, 50)
    # prefill rows 16 + 8; 3 decodes; KV after the step: 16 + 108 + 3 * 51
    assert shape.features == (24, 3, 16 + 108 + 153)
    assert shape.label() == "prefill 16 + prefill 8@100 + decode 3x50"


def test_fit_recovers_known_coefficients():
    a, b, c, e = 0.05, 4e-3, 0.01, 2e-5
    features = [s.features for s in SHAPES]
    times = [a + b * p + c * d + e * k for p, d, k in features]
    fit = fit_cost_model(features, times)
    assert (fit.a, fit.b, fit.c, fit.e) == pytest.approx((a, b, c, e), rel=1e-6)
    assert fit.r2 == pytest.approx(1.0) and fit.max_rel_error < 1e-9


def test_fit_keeps_coefficients_non_negative():
    # Decodes get cheaper with batch size here: plain least squares would make c negative.
    features = [s.features for s in SHAPES]
    times = [0.05 + 4e-3 * p - 1e-3 * d + 2e-5 * k for p, d, k in features]
    x = np.column_stack([np.ones(len(times)), np.asarray(features, float)])
    unconstrained = np.linalg.lstsq(x / np.array(times)[:, None], np.ones(len(times)))[0]
    assert unconstrained[2] < 0
    fit = fit_cost_model(features, times)
    assert min(fit.a, fit.b, fit.c, fit.e) >= 0 and fit.c == 0
    assert fit.r2 > 0.9


def test_nnls_matches_scipy():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(0)
    for _ in range(50):
        matrix = rng.normal(size=(12, 4))
        target = rng.normal(size=12)
        ours, ref = nnls(matrix, target), optimize.nnls(matrix, target)[0]
        assert np.linalg.norm(matrix @ ours - target) == pytest.approx(
            np.linalg.norm(matrix @ ref - target), abs=1e-9
        )
        assert (ours >= 0).all()


def test_fit_needs_enough_positive_points():
    with pytest.raises(ValueError, match="at least 4"):
        fit_cost_model([(1, 0, 1)] * 3, [0.1] * 3)
    with pytest.raises(ValueError):
        fit_cost_model([(1, 0, 1)] * 5, [0.1, 0.2, 0.0, 0.3, 0.1])


def test_grid_leaves_out_what_does_not_fit():
    full = profile_grid(16384, 8192, 16)
    assert Shape(((0, 512),)) in full and Shape((), 8, 1024) in full
    assert Shape((), 16, 1024) not in full  # 16 x 65 blocks of 16 tokens > 16384
    small = profile_grid(2048, 300, 16)
    assert all(max(s.lengths()) <= 300 for s in small)
    assert all(s.features[2] <= 2048 for s in small)
    assert Shape((), 8, 256) not in small  # 257 fits the positions, 8 x 272 not the pool


@pytest.fixture(scope="module")
def tiny_profile():
    config = EngineConfig(dtype="float32", block_size=4, num_gpu_blocks=64, num_cpu_blocks=16)
    model = LlamaModel.from_tensors(TINY, random_tensors(TINY), torch.float32)
    return profile_engine(ModelRunner(model, config), "tiny", quick=True)


def test_profile_of_a_real_runner(tiny_profile):
    p = tiny_profile.profile
    assert len(tiny_profile.measurements) == len(tiny_profile.fit.rel_errors) >= 6
    assert all(m.seconds > 0 and len(m.samples) == 2 for m in tiny_profile.measurements)
    assert p.a > 0 and p.b > 0 and p.c >= 0 and p.e >= 0
    assert p.kv_bytes_per_token == 2 * TINY.num_layers * TINY.num_kv_heads * TINY.head_dim * 4
    assert p.kv_capacity_tokens == 64 * 4 and p.host_kv_capacity_tokens == 16 * 4
    assert p.host_link_bytes_per_s > 0
    assert "R^2" in p.source and "decode 4x8" in p.source
    # the fitted time of a grid point is its measured time times (1 + relative error); up to
    # the floor a coefficient fitted as 0 gets in the profile (1e-9 s per unit, e.g. 8e-9 s
    # for 8 prefill tokens when the tiny model's prefill fits to zero)
    m, rel = tiny_profile.measurements[0], tiny_profile.fit.rel_errors[0]
    floor = 1e-9 * (1 + sum(m.shape.features))
    assert p.iteration_time(*m.shape.features) == pytest.approx(m.seconds * (1 + rel), abs=floor)


def test_profile_round_trips_and_drives_the_simulator(tiny_profile, tmp_path):
    path = save_profile(tiny_profile.profile, tmp_path / "sub" / "tiny.json")
    loaded = get_profile(str(path))
    assert loaded == tiny_profile.profile
    jobs = [make_job(f"j{i}", [(20, 5), (4, 6)], 0.1, arrival=0.05 * i) for i in range(4)]
    report = simulate(jobs, "astraea", loaded, config_overrides={"block_size": 4})
    assert report.summary["jobs"] == 4 and report.summary["avg_jct"] > 0.1
    service = service_model(path, chunk_tokens=64)
    assert service == ServiceTimeModel.from_profile(loaded, 64)


def tiny_hf_dir(path):
    """A Hugging Face directory of the tiny random model (no tokenizer: none is needed)."""
    from safetensors.torch import save_file

    save_file(random_tensors(TINY), str(path / "model.safetensors"))
    config = {
        "model_type": "llama",
        "vocab_size": TINY.vocab_size,
        "hidden_size": TINY.hidden_size,
        "intermediate_size": TINY.intermediate_size,
        "num_hidden_layers": TINY.num_layers,
        "num_attention_heads": TINY.num_heads,
        "num_key_value_heads": TINY.num_kv_heads,
        "head_dim": TINY.head_dim,
        "max_position_embeddings": 256,
        "tie_word_embeddings": True,
    }
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_cli_writes_a_loadable_profile(tmp_path, capsys):
    model = tiny_hf_dir(tmp_path)
    out = tmp_path / "p.json"
    args = ["profile", "-m", str(model), "--quick", "--dtype", "float32", "--threads", "1"]
    code, stdout, stderr = run_cli([*args, "--num-gpu-blocks", "32", "--out", str(out)], capsys)
    assert code == 0, stderr
    profile = get_profile(str(out))
    assert profile.name == f"engine-{model.name}" and profile.kv_capacity_tokens == 32 * 16
    assert "R^2 =" in stdout and str(out) in stdout
    trace = tmp_path / "trace.jsonl"
    write_trace(
        [make_job(f"j{i}", [(30, 8), (5, 8)], 0.2, arrival=0.1 * i) for i in range(3)], trace
    )
    code, stdout, stderr = run_cli(["simulate", "-t", str(trace), "-p", str(out)], capsys)
    assert code == 0, stderr
    assert "3 jobs on engine-" in stdout


def test_cli_errors_are_one_line(tmp_path, capsys):
    code, _, stderr = run_cli(["profile", "-m", str(tmp_path / "none.gguf")], capsys)
    assert code == 2 and stderr.count("\n") == 1 and "does not exist" in stderr
    model = tiny_hf_dir(tmp_path)
    code, _, stderr = run_cli(["profile", "-m", str(model), "--num-gpu-blocks", "1"], capsys)
    assert code == 2 and "grid points fit" in stderr
