"""A web page cannot drive the server: non-JSON bodies are 415, foreign Origins 403, and
on loopback a Host that is not ours 403 (DNS rebinding); allowed origins get CORS."""

import httpx
import pytest

from tests.server.conftest import MODEL, idle

CHAT = "/v1/chat/completions"
OK = {"model": MODEL, "messages": [{"role": "user", "content": "say:ok"}]}
BODY = '{"model": "tiny", "messages": [{"role": "user", "content": "say:ok"}]}'


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_bodies_a_page_can_send_without_a_preflight_are_refused(serve, content_type):
    server = serve()
    headers = {"content-type": content_type} if content_type else {}
    with httpx.Client(base_url=server.root, timeout=10) as http:
        r = http.post(CHAT, content=BODY.encode(), headers=headers)
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
        r = http.post(
            CHAT, content=BODY, headers={"content-type": "application/json; charset=utf-8"}
        )
        assert r.status_code == 200
    server.wait_for(idle)
    assert server.engine.num_finished_jobs == 1  # the refused ones never reached the engine


def test_foreign_origins_are_refused_same_host_and_allowed_ones_pass(serve):
    server = serve(allowed_origins=("https://app.example",))
    own = server.root  # http://127.0.0.1:PORT
    with httpx.Client(base_url=server.root, timeout=10) as http:
        r = http.post(CHAT, json=OK, headers={"origin": "https://evil.example"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"
        r = http.get("/v1/models", headers={"origin": "null"})
        assert r.status_code == 403
        assert http.post(CHAT, json=OK, headers={"origin": own}).status_code == 200
        r = http.post(CHAT, json=OK, headers={"origin": "https://app.example"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        preflight = http.options(
            CHAT,
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,authorization",
            },
        )
        assert preflight.status_code == 200
        evil = http.options(
            CHAT,
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        assert evil.status_code == 403
    server.wait_for(idle)


def test_a_rebound_host_name_is_refused_on_loopback(serve):
    server = serve()
    port = server.root.rsplit(":", 1)[1]
    with httpx.Client(base_url=server.root, timeout=10) as http:
        for host in (f"evil.example:{port}", "evil.example"):
            r = http.post(CHAT, json=OK, headers={"host": host, "origin": f"http://{host}"})
            assert r.status_code == 403 and r.json()["error"]["code"] == "host_not_allowed"
            assert http.get("/health", headers={"host": host}).status_code == 403
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
            assert http.get("/v1/models", headers={"host": host}).status_code == 200
    server.wait_for(idle)


def test_any_host_when_not_limited(serve):
    server = serve(allowed_hosts=None)
    with httpx.Client(base_url=server.root, timeout=10) as http:
        assert http.get("/v1/models", headers={"host": "gpu-box.lan:8000"}).status_code == 200


def test_a_bodiless_post_to_a_get_route_is_still_a_405(serve):
    server = serve()
    with httpx.Client(base_url=server.root, timeout=10) as http:
        for path in ("/health", "/metrics", "/v1/models"):
            r = http.post(path)
            assert r.status_code == 405, (path, r.text)
