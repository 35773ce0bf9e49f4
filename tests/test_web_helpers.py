"""Shared set-up for the web UI tests: a small, realistic store and a real server on loopback.

(This module holds no tests.) `build_story(registry, tmp_path, clock)` builds, through the SDK, the
deployment-track world of `tests.test_slot_helpers` (two model versions that pass the promotion
gate, validated prompt versions, a slot on a quick track policy with a bootstrapped production
release) and adds: table datasets with profiles (training data and production inputs that drift),
a prompt version whose validation failed on some samples, a viewer, and a rollout in its shadow
stage with recorded traffic whose gate passes — so an operator can advance it. `serve(settings,
clock)` runs the server app in a thread on 127.0.0.1 (port chosen by the OS) and yields its base URL.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from charter.clock import ManualClock
from charter.config import Settings
from charter.service.prompt_validation import ValidationRun
from charter.service.registry import Registry
from tests.conftest import add_user
from tests.test_prompt_helpers import write
from tests.test_slot_helpers import PLAN, World, traffic, world


@dataclass
class Story:
    w: World
    txn: str  # a recorded transaction id
    tokens: dict[str, str]  # user → API token secret
    training: str  # a table dataset version with a profile
    production: str  # production inputs that drift from it


def _table(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    path = folder / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def build_story(registry: Registry, tmp_path: Path, clock: ManualClock) -> Story:
    w = world(registry, tmp_path, clock)
    add_user(registry, "vic", "viewer")
    tables = tmp_path / "tables"
    kinds = ["billing", "login", "refund", "shipping"]
    train_rows = [
        {"length": 20 + i % 40, "kind": kinds[i % 4], "text": f"customer asks about {kinds[i % 4]} case {i}"}
        for i in range(400)
    ]
    prod_rows = [
        {
            "length": 45 + i % 60,
            "kind": kinds[(i % 7) % 4],
            "text": f"user reports a {kinds[i % 3]} issue {i}",
        }
        for i in range(300)
    ]
    training = registry.datasets.add("tickets", _table(tables, "train", train_rows), role="train").version.ref
    production = registry.datasets.add(
        "tickets-prod", _table(tables, "prod", prod_rows), role="production-sample"
    ).version.ref
    # a third prompt version whose validation failed on some samples
    write(tmp_path / "prompts", "greet.prompt.yaml", _greet_v3())
    registry.prompts.sync(tmp_path / "prompts")
    failures = tuple(
        {"row": i, "inputs": {"who": f"user {i}"}, "output": f"Hi user {i}", "error": None,
         "failed": [{"assertion": "contains 'Hello'", "reason": "the output does not contain 'Hello'"}]}
        for i in (2, 5, 7)
    )  # fmt: skip
    registry.prompts.record_validation(
        "greet-v3", sample="sample@1", run=ValidationRun(10, 7, failures, 0.2, {"kind": "fake"})
    )
    # a rollout in its shadow stage whose gate passes after an hour of traffic
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    traffic(w.sam, "agent", 240, seed=1, spread=timedelta(minutes=55), clock=clock)
    clock.advance(timedelta(minutes=10))
    with w.sam.transaction("agent", key="traced-user") as txn:
        txn.record(quality=0.81, format_ok=1.0, cost=0.011, inputs={"length": 7})
    w.sam.flush()
    tokens = {u: registry.tokens.create(u, name="web tests").secret for u in ("admin", "olga", "rita", "vic")}
    return Story(w, txn.id, tokens, training, production)


def _greet_v3() -> str:
    return (
        "name: greet\nmodel: m@1.0.0\nparams: {temperature: 0.3, max_tokens: 120}\n"
        "variables:\n  who: string\n"
        'template: "Hi {{ who }}, welcome back"\ntests: [{kind: contains, value: "Hello"}]\n'
    )


@contextmanager
def serve(settings: Settings, clock: ManualClock) -> Iterator[str]:
    """The server's app (`charter.api.app.create_app`, web UI included) over the store `settings`
    names, served by uvicorn in a thread on 127.0.0.1 (an OS-chosen port); yields the base URL."""
    from charter.api.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit this; without it each response waits ~40 ms for a delayed ACK
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def signed_in(base: str, token: str) -> httpx.Client:
    """A client holding a session cookie, signed in by pasting an API token into the form."""
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    form = client.get("/signin")
    found = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert found, form.text
    response = client.post("/signin", data={"token": token, "csrf": found.group(1)})
    assert response.status_code == 303, response.text
    return client
