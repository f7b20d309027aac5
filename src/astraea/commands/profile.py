"""``astraea profile``: time the engine over a grid of batch shapes and write the fitted cost
profile, which ``astraea simulate --profile FILE`` and ``Engine(service=...)`` then use.

Importing this module is cheap (no torch): the CLI imports it on every start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# old names kept working, hidden from --help (astraea.commands.options.aliased)
ALIASES = {"--num-gpu-blocks": "--num-gpu-blocks-override"}


def profile_command(
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="GGUF file or Hugging Face directory (default: the bundled SmolLM2-135M).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="JSON to write (default: profiles/engine-MODEL.json)."),
    ] = None,
    dtype: Annotated[
        str, typer.Option("--dtype", help="auto (bf16 where native), float32, bfloat16, float16.")
    ] = "auto",
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="torch threads (default: torch's).")
    ] = None,
    block_size: Annotated[int, typer.Option("--block-size", min=1, help="KV block tokens.")] = 16,
    num_gpu_blocks: Annotated[
        int,
        typer.Option(
            "--num-gpu-blocks-override",
            min=1,
            help="Device KV blocks, the capacity (vLLM's name; was --num-gpu-blocks).",
        ),
    ] = 1024,
    num_cpu_blocks: Annotated[
        int, typer.Option("--num-cpu-blocks", min=0, help="Host KV blocks (swap tier).")
    ] = 0,
    repeats: Annotated[
        int | None, typer.Option("--repeats", min=1, help="Timed runs per point (median).")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="A small grid (seconds; for tests and smoke runs).")
    ] = False,
) -> None:
    """Measure the engine's step time and fit t = a + b*prefill + c*decode + e*kv."""
    try:
        import torch

        from astraea.engine.config import EngineConfig
        from astraea.engine.profiler import profile_engine, profile_grid
        from astraea.engine.runner import ModelRunner
        from astraea.engine.weights import WeightsError, load_checkpoint
    except ImportError as exc:
        raise ValueError(
            f"profile needs the engine extra (pip install 'astraea[engine]'): {exc}"
        ) from exc
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from astraea.commands.options import console
    from astraea.sim.profiles import save_profile

    config = EngineConfig(
        device=device,
        dtype=dtype,
        block_size=block_size,
        num_gpu_blocks=num_gpu_blocks,
        num_cpu_blocks=num_cpu_blocks,
        num_threads=threads,
    )
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA device")
    try:
        checkpoint = load_checkpoint(model, with_tokenizer=False)
    except WeightsError as exc:  # a RuntimeError: make it the CLI's one-line error
        raise ValueError(str(exc)) from exc
    name = checkpoint.path.stem if checkpoint.path.is_file() else checkpoint.path.name
    runner = ModelRunner.from_checkpoint(checkpoint, config)
    del checkpoint  # the float32 copies of the weights
    capacity = num_gpu_blocks * block_size
    grid = profile_grid(capacity, runner.model.config.max_position, block_size, quick)
    columns = [TextColumn("{task.description:40}"), BarColumn(), TaskProgressColumn()]
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("timing steps", total=1.0)
        result = profile_engine(
            runner,
            name,
            quick=quick,
            repeats=repeats,
            grid=grid,
            on_progress=lambda done, label: bar.update(task, completed=done, description=label),
        )
    path = save_profile(result.profile, out or Path("profiles") / f"engine-{name}.json")
    p, fit = result.profile, result.fit
    console.print(f"{p.name}: {p.accelerator}, {len(grid)} grid points")
    console.print(
        f"  a = {p.a * 1e3:.3f} ms/step, b = {p.b * 1e3:.4f} ms/prefill token, "
        f"c = {p.c * 1e3:.3f} ms/decode seq, e = {p.e * 1e6:.4f} us/KV token"
    )
    console.print(f"  fit: R^2 = {fit.r2:.4f}, max relative error {fit.max_rel_error:.1%}")
    console.print(
        f"  KV {p.kv_bytes_per_token:,} B/token, {p.kv_capacity_tokens:,} tokens on the device, "
        f"{p.host_kv_capacity_tokens:,} on the host, host link {p.host_link_bytes_per_s / 1e9:.2f} "
        "GB/s"
    )
    console.print(f"wrote {path}")
