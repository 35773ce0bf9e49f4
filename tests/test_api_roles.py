"""Every mutating operation of the REST API × every role: allowed exactly where DESIGN.md's table says.

Each user holds one role and calls over real HTTP with its own token. A role without the right gets
403 (and nothing is written); a role with it gets anything but 403 — success, or a refusal of
another family when the arguments do not fit the state. The expected table below is written out
from DESIGN.md's roles table, independently of `charter.domain.roles`, and a test checks it covers
every mutating operation of the operation table. Separation of duties is checked over HTTP too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest

from charter.api.operations import OPERATIONS
from charter.clock import ManualClock
from charter.config import Settings
from charter.domain.roles import Role
from charter.service.setup import init_store, open_registry
from tests.remote_fixtures import serving
from tests.test_slot_helpers import MODEL_SPEC, world

ADMIN, AUTHOR, REVIEWER, OPERATOR, SERVICE = "admin", "author", "reviewer", "operator", "service"

# operation → (the role that may, request body or None, path arguments)
EXPECTED: dict[str, tuple[str | None, dict[str, Any] | None, dict[str, str]]] = {
    "users.add": (ADMIN, {"name": "newcomer", "roles": ["viewer"]}, {}),
    "users.change_roles": (ADMIN, {"add": ["viewer"]}, {"name": "olga"}),
    "users.disable": (ADMIN, None, {"name": "newcomer"}),
    "users.enable": (ADMIN, None, {"name": "newcomer"}),
    "tokens.create": (ADMIN, {"user": "olga", "name": "ci"}, {}),
    "tokens.revoke": (ADMIN, {"reason": "rotated"}, {"token_id": "{spare_token}"}),
    "checkpoints.sign": (ADMIN, {}, {}),
    "policies.apply": (ADMIN, {"document": {"validation": {"min_samples": 5}}}, {}),
    "webhooks.add": (ADMIN, {"url": "https://hooks.example.com/x", "events": "model.*"}, {}),
    "webhooks.remove": (ADMIN, None, {"webhook_id": "1"}),
    "webhooks.deliver_due": (ADMIN, {}, {}),
    "webhooks.prune": (ADMIN, {}, {}),
    "models.register": (
        AUTHOR,
        {"spec": {**MODEL_SPEC, "provider_model": "claude-x-20251101"}},
        {"name": "m"},
    ),
    "models.rollback": (OPERATOR, {"reason": "drill"}, {"name": "m"}),
    "models.reviewers": (ADMIN, {"add": ["only-reviewer"]}, {"name": "m"}),
    "models.set_primary_metrics": (ADMIN, {"metrics": {"accuracy": "higher"}}, {"name": "m"}),
    "models.eval": (AUTHOR, {"dataset": "golden@1", "metrics": {"accuracy": 0.9}}, {"ref": "m@1.0.0"}),
    "models.signoff": (REVIEWER, {"note": "ok"}, {"ref": "m@1.1.0"}),
    "models.promote": (OPERATOR, {"rollback_plan": "previous", "dry_run": True}, {"ref": "m@1.1.0"}),
    "models.waive": (REVIEWER, {"ref_or_evaluation": 1, "reason": "reviewed by hand"}, {}),
    "datasets.gc": (ADMIN, {"dry_run": True}, {}),
    # a REST catalog on a closed loopback port: authorised callers get "cannot open", not 403
    "datasets.add_table": (AUTHOR, {"iceberg": "http://127.0.0.1:9/c#a.b", "role": "train"}, {"name": "lk"}),
    "prompts.rollback": (OPERATOR, {"environment": "production", "reason": "drill"}, {"name": "greet"}),
    "prompts.render": (None, {"variables": {"who": "Ada"}}, {"ref": "greet-v1"}),
    "prompts.promote": (OPERATOR, {"to": "production"}, {"ref": "greet-v2"}),
    "prompts.record_validation": (
        AUTHOR,
        {
            "sample": "sample@1",
            "run": {"sample_size": 5, "passed_count": 5, "failures": [], "duration_s": 0.1, "runner": {}},
        },
        {"ref": "greet-v2"},
    ),
    "slots.create": (OPERATOR, {"name": "other"}, {}),
    "slots.bootstrap": (OPERATOR, {"release": "0" * 10}, {"name": "agent"}),
    "slots.rollback": (OPERATOR, {"reason": "drill"}, {"name": "agent"}),
    "releases.create": (AUTHOR, {"model": "m@1.0.0", "prompts": ["greet-v1"]}, {"slot": "agent"}),
    "rollouts.start": (OPERATOR, {"release": "0" * 10, "rollback_plan": "slot rollback"}, {"slot": "agent"}),
    "rollouts.advance": (OPERATOR, {}, {"slot": "agent"}),
    "rollouts.approve": (REVIEWER, {}, {"slot": "agent"}),
    "rollouts.check": (OPERATOR, {"item": "rollback-tested"}, {"slot": "agent"}),
    "rollouts.pause": (OPERATOR, {"reason": "look"}, {"slot": "agent"}),
    "rollouts.resume": (OPERATOR, None, {"slot": "agent"}),
    "rollouts.abort": (OPERATOR, {"reason": "stop"}, {"slot": "agent"}),
    "rollouts.tick": (OPERATOR, {}, {}),
    "rollouts.incident": (
        OPERATOR,
        {"severity": "P2", "release": "0" * 10, "summary": "slow"},
        {"slot": "agent"},
    ),
}


def test_the_expected_table_covers_every_mutating_operation() -> None:
    mutating = {op.name for op in OPERATIONS if op.verb != "GET"}
    assert mutating == set(EXPECTED), mutating ^ set(EXPECTED)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_every_mutating_operation_for_every_role(tmp_path: Path, database_url: str) -> None:
    settings = Settings.for_home(tmp_path / "home", user="admin", database_url=database_url)
    init_store(settings)
    tokens: dict[str, str] = {}
    with open_registry(settings, clock=ManualClock()) as registry:
        world(registry, tmp_path, ManualClock())
        for role in Role:
            registry.users.add(f"only-{role.value}", [role.value])
            tokens[role.value] = registry.tokens.create(f"only-{role.value}", expires=None).secret
        spare = registry.tokens.create("olga", name="spare").id
    operations = {op.name: op for op in OPERATIONS}
    denied_wrote: list[str] = []
    wrong: list[str] = []
    # the lake catalog named below is a closed port the operator allowed, so roles decide, not the guard
    served = dataclasses.replace(settings, lake_catalogs=("http://127.0.0.1:9/",))
    with serving(served, web=False) as url, httpx.Client(base_url=f"{url}/api/v1", timeout=60) as http:
        for name, (allowed, body, path_args) in EXPECTED.items():
            op = operations[name]
            path = op.path.format(**{k: v.format(spare_token=spare) for k, v in path_args.items()})
            for role in Role:
                before = _ledger_length(settings)
                response = http.request(
                    op.verb,
                    path,
                    json=body,
                    headers={"Authorization": f"Bearer {tokens[role.value]}"},
                )
                may = allowed is None or role.value == allowed
                if may and response.status_code == 403:
                    wrong.append(f"{name} as {role.value}: refused 403 {response.json()['message']}")
                if not may:
                    if response.status_code != 403:
                        wrong.append(f"{name} as {role.value}: {response.status_code}, expected 403")
                    elif _ledger_length(settings) != before:
                        denied_wrote.append(f"{name} as {role.value}")
    assert not wrong, "\n".join(wrong)
    assert not denied_wrote, denied_wrote


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_separation_of_duties_holds_over_the_api(tmp_path: Path, database_url: str) -> None:
    settings = Settings.for_home(tmp_path / "home", user="admin", database_url=database_url)
    init_store(settings)
    with open_registry(settings) as registry:
        registry.users.add("ava", ["author", "reviewer"])
        token = registry.tokens.create("ava").secret
    auth = {"Authorization": f"Bearer {token}"}
    with serving(settings, web=False) as url, httpx.Client(base_url=f"{url}/api/v1", headers=auth) as http:
        made = http.post("/models/solo/versions", json={"spec": MODEL_SPEC})
        assert made.status_code == 201, made.text
        own = http.post("/model-versions/solo@1.0.0/signoffs", json={"note": "mine"})
        assert own.status_code == 403 and own.json()["error"] == "SeparationOfDuties"
        sneaky = http.post("/models/solo/versions", json={"spec": {**MODEL_SPEC, "weights": "/etc/hostname"}})
        assert sneaky.status_code == 400 and "weights" in sneaky.json()["message"]
        path_policy = http.post("/slots", json={"name": "s", "policy": "/etc/charter/track.yaml"})
        assert path_policy.status_code == 400


def _ledger_length(settings: Settings) -> int:
    with open_registry(settings) as registry:
        return registry.audit.verify().events
