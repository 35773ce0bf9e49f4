"""Property-based fuzzing of the REST API from its own OpenAPI document (schemathesis).

Every operation gets generated requests — valid ones and ones that break the schema — sent over
real HTTP with an admin token. Whatever the input, the server must answer with a 2xx or a 4xx
problem+json naming what was wrong: never a 5xx. The budget is a few examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from charter.config import Settings
from charter.service.setup import init_store, open_registry
from tests.remote_fixtures import serving

EXAMPLES_PER_OPERATION = 6


@dataclass
class Live:
    url: str
    token: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("fuzz")
    store = Settings.for_home(home, user="admin")
    init_store(store)
    with open_registry(store) as registry:
        token = registry.tokens.create("admin", name="fuzz").secret
        registry.users.add("vera", ["viewer"])
    with serving(store, web=False) as url:
        yield Live(url, token)


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_request_makes_the_server_fail(live: Live, mode: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json")
    generation = schemathesis.GenerationMode(mode)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 60
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=generation))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(
                base_url=live.url, headers={"Authorization": f"Bearer {live.token}"}, timeout=60
            )
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
                )
            elif response.status_code >= 400:
                content_type = response.headers.get("content-type") or [""]
                content_type = content_type[0] if isinstance(content_type, list) else content_type
                assert content_type.startswith("application/problem+json"), response.text
                assert response.json()["message"], response.text

        try:
            check()
        except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters)
            assert mode == "negative", operation.label
    assert not failures, "\n".join(failures[:20])
