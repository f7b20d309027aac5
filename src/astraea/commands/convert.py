"""``astraea convert-gguf``: write a GGUF checkpoint as a Hugging Face directory, so that
transformers and vLLM can serve the same weights and tokenizer as our engine.

Importing this module is cheap (no torch): the CLI imports it on every start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def convert_gguf_command(
    output: Annotated[Path, typer.Argument(help="Directory to write (created if missing).")],
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="GGUF file or Hugging Face directory (default: the bundled SmolLM2-135M).",
        ),
    ] = None,
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype",
            help="float32 (default: exact copy of the dequantized GGUF), bfloat16 or float16.",
        ),
    ] = "float32",
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a non-empty output directory.")
    ] = False,
) -> None:
    """Write a GGUF model as a Hugging Face directory (config, safetensors, tokenizer)."""
    try:
        from astraea.engine.convert import convert_gguf
        from astraea.engine.weights import WeightsError
    except ImportError as exc:
        raise ValueError(
            f"convert-gguf needs the engine extra (pip install 'astraea[engine]'): {exc}"
        ) from exc
    try:
        out = convert_gguf(output, model, dtype=dtype, force=force)  # checks dtype first
    except WeightsError as exc:  # a RuntimeError: make it the CLI's one-line error
        raise ValueError(str(exc)) from exc
    typer.echo(f"wrote {out} ({dtype})")
