"""`charter server` over real HTTP: health, tokens, problem+json, limits, pagination, metrics, logs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from charter.config import Settings
from charter.service.setup import init_store, open_registry
from tests.remote_fixtures import serving
from tests.server_process import server_process


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> tuple[Settings, str]:
    settings = Settings.for_home(tmp_path / "home", user="admin", database_url=database_url)
    init_store(settings)
    with open_registry(settings) as registry:
        token = registry.tokens.create("admin", name="tests").secret
        registry.users.add("vera", ["viewer"])
    return settings, token


def test_every_api_call_but_health_needs_a_valid_token(store: tuple[Settings, str]) -> None:
    settings, token = store
    with serving(settings, web=False) as url:
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
        bare = httpx.get(f"{url}/api/v1/models")
        assert bare.status_code == 401 and bare.headers["content-type"] == "application/problem+json"
        assert bare.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization header" in bare.json()["detail"]
        wrong = httpx.get(f"{url}/api/v1/models", headers={"Authorization": "Bearer chtr_forged"})
        assert wrong.status_code == 401 and "chtr_forged" not in wrong.text
        basic = httpx.get(f"{url}/api/v1/models", headers={"Authorization": "Basic YWRtaW46eA=="})
        assert basic.status_code == 401
        good = httpx.get(f"{url}/api/v1/models", headers={"Authorization": f"Bearer {token}"})
        assert good.status_code == 200 and good.json() == []


def test_errors_are_problem_json_with_the_cli_message(store: tuple[Settings, str]) -> None:
    settings, token = store
    auth = {"Authorization": f"Bearer {token}"}
    with serving(settings, web=False) as url, httpx.Client(base_url=f"{url}/api/v1", headers=auth) as api:
        missing = api.get("/model-versions/nope@1.0.0")
        assert missing.status_code == 404
        body = missing.json()
        assert body["status"] == 404 and body["error"] == "NotFound" and body["detail"] == body["message"]
        invalid = api.post("/users", json={"name": "Bad Name", "roles": ["viewer"]})
        assert invalid.status_code == 400 and "not valid" in invalid.json()["message"]
        shape = api.post("/users", json={"name": 5})
        assert shape.status_code == 400 and "roles: Field required" in shape.json()["message"]
        extra = api.post("/users", json={"name": "x", "roles": [], "admin": True})
        assert extra.status_code == 400 and "admin" in extra.json()["message"]
        garbage = api.post("/users", content=b"{not json", headers={"content-type": "application/json"})
        assert garbage.status_code == 400
        assert api.get("/no-such-thing").status_code == 404
        assert api.delete("/models").status_code == 405
        denied = httpx.post(
            f"{url}/api/v1/users",
            json={"name": "x", "roles": ["viewer"]},
            headers={"Authorization": f"Bearer {_token_for(settings, 'vera')}"},
        )
        assert denied.status_code == 403 and denied.json()["error"] == "MissingRole"


def test_request_bodies_over_the_limit_are_refused_before_they_are_read(store: tuple[Settings, str]) -> None:
    settings, token = store
    auth = {"Authorization": f"Bearer {token}"}
    with serving(settings, web=False, max_body=10_000) as url:
        big = httpx.post(f"{url}/api/v1/policies", content=b"x" * 20_000, headers=auth)
        assert big.status_code == 413 and big.json()["limit"] == 10_000

        def chunks():  # no Content-Length: counted as it streams
            for _ in range(30):
                yield b"y" * 1000

        streamed = httpx.post(f"{url}/api/v1/policies", content=chunks(), headers=auth)
        assert streamed.status_code == 413


def test_lists_paginate_with_link_headers(store: tuple[Settings, str]) -> None:
    settings, token = store
    with open_registry(settings) as registry:
        for i in range(7):
            registry.users.add(f"user{i}", ["viewer"])
    auth = {"Authorization": f"Bearer {token}"}
    with serving(settings, web=False) as url, httpx.Client(headers=auth) as http:
        first = http.get(f"{url}/api/v1/users", params={"page_size": 3})
        assert first.status_code == 200 and len(first.json()) == 3
        assert first.headers["x-total-count"] == "9"
        names = [u["name"] for u in first.json()]
        link = first.links["next"]["url"]
        while link:
            page = http.get(link)
            names += [u["name"] for u in page.json()]
            link = page.links.get("next", {}).get("url")
        assert sorted(names) == sorted(["admin", "vera", *[f"user{i}" for i in range(7)]])
        assert http.get(f"{url}/api/v1/users", params={"page_size": 0}).status_code == 400


def test_metrics_and_the_openapi_document(store: tuple[Settings, str]) -> None:
    settings, token = store
    with serving(settings, web=False) as url:
        httpx.get(f"{url}/api/v1/models", headers={"Authorization": f"Bearer {token}"})
        text = httpx.get(f"{url}/metrics").text
        assert 'charter_http_requests_total{method="GET",route="/api/v1/models",status="200"} 1.0' in text
        assert "charter_http_request_duration_seconds_bucket" in text
        document = httpx.get(f"{url}/api/v1/openapi.json").json()
        assert "/api/v1/model-versions/{ref}/promote" in document["paths"]
        promote = document["paths"]["/api/v1/model-versions/{ref}/promote"]["post"]
        schema_ref = promote["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        body = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
        assert "rollback_plan" in body["required"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_server_command_serves_and_never_logs_a_token(
    store: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, token = store
    env = {"CHARTER_HOME": str(settings.home), "CHARTER_DATABASE_URL": settings.database_url}
    with server_process(env, "--no-jobs", log=tmp_path / "server.log") as server:
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{server.url}/api/v1/users", headers=auth).status_code == 200
        httpx.get(f"{server.url}/api/v1/users", params={"token": token}, headers=auth)
        httpx.get(f"{server.url}/signin", params={"token": token})
    log = server.output()
    assert "GET /api/v1/users" in log
    assert token not in log and token[5:] not in log


def test_the_server_refuses_to_start_on_a_missing_store(tmp_path: Path) -> None:
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "charter", "server", "--port", "1"],
        env={"CHARTER_HOME": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1 and "charter init" in run.stderr and "Traceback" not in run.stderr


def _token_for(settings: Settings, user: str) -> str:
    with open_registry(settings) as registry:
        return registry.tokens.create(user).secret


def test_reads_are_served_while_a_long_upload_streams_in(store: tuple[Settings, str]) -> None:
    """The upload's body is held open until twenty reads have been answered: if a request in
    flight blocked the server, the reads would time out instead."""
    import threading

    settings, token = store
    auth = {"Authorization": f"Bearer {token}"}
    reads_done = threading.Event()
    outcome: dict[str, int] = {}

    def slow_body():
        yield b'{"document": "validation:\\n'
        reads_done.wait(timeout=30)
        yield b'  min_samples: 7\\n"}'

    with serving(settings, web=False) as url:

        def upload() -> None:
            response = httpx.post(
                f"{url}/api/v1/policies",
                content=slow_body(),
                headers={**auth, "content-type": "application/json"},
                timeout=60,
            )
            outcome["status"] = response.status_code

        uploader = threading.Thread(target=upload)
        uploader.start()
        with httpx.Client(headers=auth, timeout=10) as http:
            for _ in range(20):
                assert http.get(f"{url}/api/v1/users").status_code == 200
        assert uploader.is_alive()  # still uploading: the reads did not wait for it
        reads_done.set()
        uploader.join(timeout=30)
    assert outcome["status"] == 200
    with open_registry(settings) as registry:
        assert registry.policies.show().document["validation"]["min_samples"] == 7
