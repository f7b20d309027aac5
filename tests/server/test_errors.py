"""Bad input answers with OpenAI's error shape and the right status; the engine keeps serving."""

import httpx
import openai

from tests.server.conftest import MODEL, idle

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}
OK = {"model": MODEL, "messages": [{"role": "user", "content": "say:ok"}]}
LONG = "x" * 2100  # more tokens than the 2048 context
CASES = [  # (path, body or raw text, status, param, code)
    (CHAT, '{"model": "tiny", "messages": [', 400, None, "invalid_json"),
    (CHAT, "[1, 2]", 400, None, "invalid_value"),
    (CHAT, {"model": MODEL}, 400, "messages", "invalid_value"),
    (CHAT, {**OK, "messages": []}, 400, "messages", "invalid_value"),
    (CHAT, {**OK, "messages": [{"role": "bot", "content": "x"}]}, 400, "messages.0.role", None),
    (CHAT, {**OK, "max_tokens": "abc"}, 400, "max_tokens", "invalid_value"),
    (CHAT, {**OK, "max_tokens": -5}, 400, "max_tokens", "invalid_value"),
    (CHAT, {**OK, "max_tokens": 0}, 400, "max_tokens", "invalid_value"),
    (CHAT, {**OK, "max_tokens": 10**12}, 400, "messages", "context_length_exceeded"),
    (CHAT, {**OK, "temperature": "hot"}, 400, "temperature", "invalid_value"),
    (CHAT, {**OK, "temperature": -1}, 400, "temperature", "invalid_value"),
    (CHAT, {**OK, "top_p": 0}, 400, "top_p", "invalid_value"),
    (CHAT, {**OK, "n": 2}, 400, "n", "unsupported_parameter"),
    (CHAT, {**OK, "stream": "yes"}, 400, "stream", "invalid_value"),
    (CHAT, {**OK, "stop": [""]}, 400, None, "invalid_value"),
    (CHAT, {**OK, "min_tokens": 9, "max_tokens": 3}, 400, "min_tokens", "invalid_value"),
    (CHAT, {**OK, "top_logprobs": 3}, 400, None, "invalid_value"),
    (
        CHAT,
        {**OK, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        400,
        None,
        "invalid_value",
    ),
    (
        CHAT,
        {**OK, "messages": [{"role": "user", "content": LONG}]},
        400,
        "messages",
        "context_length_exceeded",
    ),
    (CHAT, {**OK, "model": "gpt-4"}, 404, "model", "model_not_found"),
    (CHAT, {**OK, "astraea_job_id": ""}, 400, "astraea_job_id", "invalid_value"),
    (CHAT, {**OK, "astraea_tool_latency": -1}, 400, "astraea_tool_latency", "invalid_value"),
    ("/v1/completions", {"model": MODEL, "prompt": [1, 999]}, 400, "prompt", "invalid_value"),
    ("/v1/completions", {"model": MODEL, "prompt": []}, 400, None, "invalid_value"),
    ("/v1/completions", {"model": MODEL, "prompt": ["a", "b"]}, 400, None, "invalid_value"),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "echo": True}, 400, "echo", None),
    (
        "/v1/completions",
        {"model": MODEL, "prompt": LONG},
        400,
        "messages",
        "context_length_exceeded",
    ),
]


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"]
    return body["error"]


def test_every_bad_input_gets_its_status_and_the_engine_keeps_serving(serve):
    server = serve(max_body_bytes=64 * 1024)
    with httpx.Client(base_url=server.root, timeout=10) as http:
        for path, body, status, param, code in CASES:
            if isinstance(body, str):
                r = http.post(path, content=body, headers={"content-type": "application/json"})
            else:
                r = http.post(path, json=body)
            assert r.status_code == status, (body, r.text)
            err = error_of(r)
            assert err["param"] == param or param is None, (body, err)
            assert err["code"] == code or code is None, (body, err)
            assert err["type"] == ("invalid_request_error" if status == 400 else err["type"])
        big = http.post(CHAT, content=b"x" * (65 * 1024), headers=JSON)
        assert big.status_code == 413 and error_of(big)["code"] == "body_too_large"
        assert http.get("/nowhere").status_code == 404 and error_of(http.get("/nowhere"))
        assert http.get(CHAT).status_code == 405 and error_of(http.get(CHAT))
        long_id = http.post(CHAT, json=OK, headers={"X-Astraea-Job-Id": "j" * 300})
        assert long_id.status_code == 400 and error_of(long_id)["param"] == "X-Astraea-Job-Id"
        ok = http.post(CHAT, json=OK)
        assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "ok"
    server.wait_for(idle)


def test_api_key_guards_v1_only(serve):
    server = serve(api_key="sekret")
    with openai.OpenAI(base_url=server.url, api_key="sekret", max_retries=0) as good:
        assert good.chat.completions.create(**OK).choices[0].message.content == "ok"
    with openai.OpenAI(base_url=server.url, api_key="wrong", max_retries=0) as bad:
        try:
            bad.models.list()
        except openai.AuthenticationError as exc:
            assert exc.status_code == 401 and exc.body["code"] == "invalid_api_key"
        else:
            raise AssertionError("a wrong key was let in")
    assert httpx.post(server.url + "/chat/completions", json=OK).status_code == 401
    assert httpx.get(server.root + "/health").status_code == 200
    assert httpx.get(server.root + "/metrics").status_code == 200


def test_401_names_its_scheme_and_the_scheme_is_case_insensitive(serve):
    server = serve(api_key="sekret")
    with httpx.Client(base_url=server.root, timeout=10) as http:
        r = http.get("/v1/models")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert http.get("/v1/models", headers={"authorization": "Basic sekret"}).status_code == 401
        for scheme in ("bearer", "BEARER", "Bearer"):
            r = http.get("/v1/models", headers={"authorization": f"{scheme} sekret"})
            assert r.status_code == 200, scheme


def test_405_says_which_methods_are_allowed(serve):
    server = serve()
    r = httpx.get(server.root + CHAT)
    assert r.status_code == 405 and r.headers["allow"] == "POST" and error_of(r)


def test_the_openapi_document_describes_the_bodies_we_validate(serve):
    server = serve()
    doc = httpx.get(server.root + "/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for path, model in (
        (CHAT, "ChatCompletionRequest"),
        ("/v1/completions", "CompletionRequest"),
    ):
        op = doc["paths"][path]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{model}"
        assert {"400", "413", "415", "429"} <= set(op["responses"])
    chat = schemas["ChatCompletionRequest"]
    assert "messages" in chat["required"]
    assert chat["properties"]["seed"]["anyOf"][0]["maximum"] == 2**63 - 1
