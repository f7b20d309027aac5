"""Structured outputs on the default 135M model, through the unmodified ``openai`` client
against a real ``astraea serve`` process (issue 14's targets).

* ``response_format: json_schema``: 20 prompts, each answer parsed and validated against
  the schema (jsonschema); target 20 of 20.
* ``tool_choice: "required"``: 20 prompts over three tools, each answer must hold a tool
  call naming one of them with arguments valid for its parameters; target 20 of 20.

Greedy decoding (temperature 0), as agents usually run, once with no other option and once
with vLLM's ``repetition_penalty`` (``--repetition-penalty``): a 135M model left alone
loops inside a string or an array until ``max_tokens``, which no grammar can prevent; the
server ends such answers inside their budget (docs/server.md, "Ending inside max_tokens"),
and ``ended_by_budget`` counts them (``finish_reason: length``).

    python benchmarks/structured_targets.py [--port 8431] [--concurrency 4] \
        [--repetition-penalty 1.3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from _process import stop, wait_healthy

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "city": {"type": "string"},
        "hobbies": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age", "city", "hobbies"],
    "additionalProperties": False,
}
PEOPLE = [
    "Alice, 34, lives in Paris and loves chess and running.",
    "Bob is a 51 year old baker from Lyon who enjoys fishing.",
    "Chen, 27, is a programmer in Shanghai; she plays the piano and climbs.",
    "Dmitri (45) from Moscow collects stamps.",
    "Eva is 19 and studies in Berlin. Hobbies: painting, tennis.",
    "Farid, a 62 year old teacher in Cairo, reads poetry and gardens.",
    "Grace from Nairobi is 38 and loves hiking and photography.",
    "Hiro, 23, Tokyo, likes video games and karaoke.",
    "Ines is a 41 year old doctor in Lisbon who surfs.",
    "Jack, 30, from Sydney, enjoys cricket and cooking.",
    "Kofi is 56, lives in Accra and plays the drums.",
    "Lena, 29, Stockholm, knits and skis.",
    "Miguel (33) lives in Madrid and follows football.",
    "Nadia, 47, a pilot from Montreal, loves sailing.",
    "Omar is 25 and lives in Dubai; he races cars and swims.",
    "Priya, 36, Mumbai, dances and writes stories.",
    "Quentin, 58, a Brussels chef, brews beer.",
    "Rosa, 22, Mexico City, sings and plays guitar.",
    "Sam is 44, lives in Toronto and builds model trains.",
    "Tara, 31, from Dublin, runs marathons and bakes bread.",
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city", "unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_web",
            "description": "Search the web",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "calculate",
            "description": "Evaluate an arithmetic expression",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            },
        },
    },
]
ASKS = [
    "What's the weather in Paris?",
    "How hot is it in Cairo right now, in fahrenheit?",
    "Find recent news about the Mars rover.",
    "What is 17 times 23?",
    "Is it raining in London?",
    "Search for the best pizza recipe.",
    "Compute 2 to the power of 10.",
    "Weather in Tokyo please.",
    "Who won the 2018 World Cup?",
    "What is the square root of 144?",
    "Tell me the temperature in Oslo in celsius.",
    "Look up the population of Brazil.",
    "What's 1234 plus 4321?",
    "Should I take an umbrella in Seattle today?",
    "Find a tutorial on Python decorators.",
    "Divide 100 by 7.",
    "How cold is Moscow?",
    "Search for cheap flights to Rome.",
    "What is 15% of 80?",
    "Give me the weather forecast for Sydney.",
]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jsonschema
    import openai

    log = Path(tempfile.mkdtemp()) / "serve.log"
    cmd = [sys.executable, "-m", "astraea.cli", "serve", "--port", str(args.port)]
    cmd += ["--served-model-name", "smollm2", "--dtype", "float32", "--log-level", "warning"]
    with log.open("w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    try:
        startup = wait_healthy(process, f"http://127.0.0.1:{args.port}/health", 300, log, 0.5)
        api = openai.OpenAI(base_url=f"http://127.0.0.1:{args.port}/v1", api_key="x")

        extra: dict[str, Any] = {}

        def person(text: str) -> dict[str, Any]:
            fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
            messages = [{"role": "user", "content": f"Extract the person as JSON: {text}"}]
            r = api.chat.completions.create(
                model="smollm2",
                messages=messages,
                response_format=fmt,
                max_tokens=120,
                extra_body=extra,
            )
            content = r.choices[0].message.content or ""
            try:
                jsonschema.validate(json.loads(content), PERSON)
                ok, why = True, ""
            except (ValueError, jsonschema.ValidationError) as exc:
                ok, why = False, str(exc)[:200]
            return {
                "prompt": text,
                "content": content,
                "valid": ok,
                "error": why,
                "finish_reason": r.choices[0].finish_reason,
                "tokens": r.usage.completion_tokens,
            }

        def tool(ask: str) -> dict[str, Any]:
            r = api.chat.completions.create(
                model="smollm2",
                messages=[{"role": "user", "content": ask}],
                tools=TOOLS,
                tool_choice="required",
                max_tokens=80,
                extra_body=extra,
            )
            calls = r.choices[0].message.tool_calls or []
            specs = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
            ok, why, got = bool(calls), "" if calls else "no tool call", []
            for c in calls:
                got.append({"name": c.function.name, "arguments": c.function.arguments})
                try:
                    jsonschema.validate(json.loads(c.function.arguments), specs[c.function.name])
                except (KeyError, ValueError, jsonschema.ValidationError) as exc:
                    ok, why = False, str(exc)[:200]
            return {
                "prompt": ask,
                "calls": got,
                "valid": ok,
                "error": why,
                "finish_reason": r.choices[0].finish_reason,
                "tokens": r.usage.completion_tokens,
            }

        runs = {}
        for label, options in (
            ("greedy", {}),
            (
                f"greedy, repetition_penalty {args.repetition_penalty}",
                {"repetition_penalty": args.repetition_penalty},
            ),
        ):
            extra.clear()
            extra.update(options)
            with ThreadPoolExecutor(args.concurrency) as pool:
                t0 = time.monotonic()
                people = list(pool.map(person, PEOPLE))
                t1 = time.monotonic()
                tools = list(pool.map(tool, ASKS))
                t2 = time.monotonic()
            runs[label] = {
                "request_options": options,
                "json_schema": {
                    "valid": sum(p["valid"] for p in people),
                    "of": len(people),
                    "ended_by_budget": sum(p["finish_reason"] == "length" for p in people),
                    "seconds": round(t1 - t0, 1),
                    "answers": people,
                },
                "tool_choice_required": {
                    "valid": sum(t["valid"] for t in tools),
                    "of": len(tools),
                    "at_max_tokens": sum(t["tokens"] >= 80 for t in tools),
                    "seconds": round(t2 - t1, 1),
                    "answers": tools,
                },
            }
    finally:
        stop(process)
    return {
        "model": "SmolLM2-135M-Instruct (bundled GGUF), float32",
        "startup_s": round(startup, 1),
        "schema": PERSON,
        "tools": TOOLS,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8431)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repetition-penalty", type=float, default=1.3)
    result = run(parser.parse_args())
    path = write_result("structured_targets", result)
    for label, r in result["runs"].items():
        js, tc = r["json_schema"], r["tool_choice_required"]
        print(
            f"{label}: json_schema valid {js['valid']}/{js['of']}; tool_choice required "
            f"valid {tc['valid']}/{tc['of']}"
        )
    print(path)


if __name__ == "__main__":
    main()
