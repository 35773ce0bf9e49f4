"""Two `charter server` processes on one PostgreSQL database, eight clients at once.

Concurrent registrations, alias moves, prompt promotions and rollout advances must keep the
invariants: version numbers unique and gap-free per name, one holder per pointer with every move
continuing the one before it (no lost update), a rollout's transitions one unbroken chain — and the
audit ledger one verifiable chain, without forks.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from charter.client.remote import RemoteRegistry
from charter.clock import ManualClock
from charter.config import Settings
from charter.errors import CharterError
from charter.service.setup import init_store, open_registry
from tests.server_process import server_process
from tests.test_slot_helpers import MODEL_SPEC, world

CLIENTS = 8
INSTANT = {
    "name": "instant",
    "metrics": {"quality": "higher"},
    "stages": [
        {"name": "shadow", "traffic": 0, "min_duration": "0s", "max_duration": "30d"},
        {"name": "canary", "traffic": 10, "min_duration": "0s", "max_duration": "30d"},
        {"name": "half", "traffic": 50, "min_duration": "0s", "max_duration": "30d"},
        {"name": "production", "traffic": 100, "rollback_window": "30d"},
    ],
}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_eight_clients_against_two_servers_keep_every_invariant(tmp_path: Path, database_url: str) -> None:
    settings = Settings.for_home(tmp_path / "home", user="admin", database_url=database_url)
    init_store(settings)
    with open_registry(settings, clock=ManualClock()) as registry:
        world(registry, tmp_path, ManualClock(), track=INSTANT)
        registry.users.add("alice", ["author"])
        tokens = {u: registry.tokens.create(u, expires=None).secret for u in ("admin", "alice", "olga")}
        registry.as_user("olga").rollouts.start(
            "agent", release=_candidate(registry), rollback_plan="slot rollback"
        )
    env = {"CHARTER_HOME": str(settings.home), "CHARTER_DATABASE_URL": database_url}
    with (
        server_process(env, "--no-jobs", log=tmp_path / "a.log") as a,
        server_process(env, "--no-jobs", log=tmp_path / "b.log") as b,
    ):
        urls = itertools.cycle([a.url, b.url])
        clients = {
            user: [RemoteRegistry(next(urls), token) for _ in range(CLIENTS)]
            for user, token in tokens.items()
        }

        def each(user: str, work: Callable[[RemoteRegistry, int], Any]) -> list[Any]:
            barrier = threading.Barrier(CLIENTS)

            def run(i: int) -> Any:
                barrier.wait()
                try:
                    return work(clients[user][i], i)
                except CharterError as exc:  # a refusal is an answer; a lost update is not
                    return exc

            with ThreadPoolExecutor(CLIENTS) as pool:
                return list(pool.map(run, range(CLIENTS)))

        registered = each(
            "alice",
            lambda c, i: c.models.register(
                "fleet", {**MODEL_SPEC, "provider_model": f"claude-2025{i:02d}01"}
            ),
        )
        promoted = each(
            "olga",
            lambda c, i: c.models.promote(f"m@1.{i % 2}.0", rollback_plan="previous", rollback_to="m@1.0.0"),
        )
        moved = each("olga", lambda c, i: c.prompts.promote(f"greet-v{1 + i % 2}", to="production"))
        advanced = each("olga", lambda c, i: c.rollouts.advance("agent"))
        for client in itertools.chain.from_iterable(clients.values()):
            client.close()

    assert not [r for r in registered if isinstance(r, Exception)], registered
    with open_registry(settings) as registry:
        versions = [str(v.version) for v in registry.models.versions("fleet")]
        assert versions == [f"1.{n}.0" for n in range(CLIENTS)]  # unique, gap-free, in order

        assert any(not isinstance(r, Exception) for r in promoted)
        _assert_chain([(m.from_version, m.to_version) for m in registry.models.history("m")])

        assert any(not isinstance(r, Exception) for r in moved)
        production = [m for m in registry.prompts.history("greet") if m.environment == "production"]
        _assert_chain([(m.from_ref, m.to_ref) for m in reversed(production)] if _newest_first(production) else
                      [(m.from_ref, m.to_ref) for m in production])  # fmt: skip

        steps = [r for r in advanced if not isinstance(r, Exception)]
        assert 1 <= len(steps) <= 3  # shadow → canary → half → production, never a stage twice
        transitions = registry.rollouts.status("agent").transitions
        _assert_chain([(t.get("from"), t.get("to")) for t in transitions if t.get("from") is not None])

        verification = registry.audit.verify()
        assert verification.ok, verification
        sequences = [e.sequence for e in registry.audit.log()]
        assert sequences == list(range(1, len(sequences) + 1))  # one chain, no fork, no gap


def _candidate(registry: Any) -> str:
    return str(registry.releases.list("agent")[-1].digest)


def _newest_first(moves: list[Any]) -> bool:
    return len(moves) > 1 and moves[0].at > moves[-1].at


def _assert_chain(moves: list[tuple[Any, Any]]) -> None:
    """Each move starts where the one before it ended: nobody overwrote a pointer blind."""
    for (_, before), (after_from, _) in itertools.pairwise(moves):
        assert after_from == before, moves
