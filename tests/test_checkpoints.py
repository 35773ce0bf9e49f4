"""Signed ledger checkpoints on both engines: sign, export, verify, and catch every kind of rewrite."""

from __future__ import annotations

import dataclasses
import json
import stat
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from charter.domain.canonical import canonical_json
from charter.domain.checkpoints import Checkpoint, checkpoint_message, key_id, parse_checkpoints
from charter.domain.ledger import AuditEvent, seal
from charter.errors import AlreadyExists, InvalidInput, MissingRole
from charter.service.checkpoints import generate_key_pair, load_private_key, load_public_key
from charter.service.registry import Registry
from charter.storage.schema import audit_events, ledger_head
from tests.cli_runner import Cli
from tests.conftest import ADMIN, add_user


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "keys" / "checkpoint.pem", tmp_path / "keys" / "checkpoint.pub"
    private.parent.mkdir()
    generate_key_pair(private, public)
    return private, public


def _other_key(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "other.pem", tmp_path / "other.pub"
    generate_key_pair(private, public)
    return private, public


def _events(registry: Registry, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        add_user(registry, f"user{i}", "viewer")


def _exported(registry: Registry) -> list[Checkpoint]:
    """What an auditor keeps: the export, round-tripped through JSON text."""
    text = json.dumps([c.as_dict() for c in registry.checkpoints.list()])
    return parse_checkpoints(json.loads(text))


def test_the_signed_message_is_canonical_json_of_four_fields() -> None:
    message = checkpoint_message(7, "a" * 64, "2026-03-02T09:00:00.000000Z", "b" * 64)
    assert message == (
        b'{"hash":"' + b"a" * 64 + b'","key_id":"' + b"b" * 64 + b'","sequence":7,'
        b'"signed_at":"2026-03-02T09:00:00.000000Z"}'
    )


def test_keygen_writes_a_private_key_only_its_owner_can_read(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    raw = load_public_key(public).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert (
        load_private_key(private)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        == raw
    )
    hex_file = public.with_suffix(".hex")
    hex_file.write_text(raw.hex() + "\n")
    assert key_id(load_public_key(hex_file).public_bytes_raw()) == key_id(raw)
    before = private.read_bytes()
    with pytest.raises(AlreadyExists):
        generate_key_pair(private, public.with_name("new.pub"))
    assert private.read_bytes() == before and not public.with_name("new.pub").exists()
    with pytest.raises(InvalidInput, match="not a PEM private key"):
        load_private_key(public)


def test_a_checkpoint_signs_the_head_before_its_own_audit_event(
    registry: Registry, keys: tuple[Path, Path]
) -> None:
    _events(registry, 2)
    head = registry.audit.verify()
    checkpoint = registry.checkpoints.sign(keys[0])
    assert checkpoint is not None
    assert (checkpoint.sequence, checkpoint.hash) == (head.events, head.head_hash)
    public = load_public_key(keys[1])
    public.verify(bytes.fromhex(checkpoint.signature), checkpoint.message())
    assert checkpoint.key_id == key_id(public.public_bytes_raw())
    event = registry.audit.log()[-1]
    assert (event.sequence, event.action, event.subject) == (head.events + 1, "ledger.checkpointed", "ledger")
    assert event.payload == {
        "sequence": head.events,
        "hash": head.head_hash,
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "public_key": public.public_bytes_raw().hex(),
    }
    assert registry.checkpoints.list() == [checkpoint]  # read back exactly, signed_at included


def test_the_ledger_extends_every_signed_head(registry: Registry, keys: tuple[Path, Path]) -> None:
    for round_ in range(3):
        _events(registry, 2, start=2 * round_)
        registry.checkpoints.sign(keys[0])
    _events(registry, 1, start=10)
    report = registry.checkpoints.verify(_exported(registry), load_public_key(keys[1]))
    assert report.ok and report.chain.ok and len(report.checkpoints) == 3
    assert report.as_dict()["first_failure"] is None


def test_an_edited_row_is_named(registry: Registry, keys: tuple[Path, Path]) -> None:
    _events(registry, 2)
    registry.checkpoints.sign(keys[0])  # signs head 3
    _events(registry, 2, start=2)
    registry.checkpoints.sign(keys[0])  # signs head 6
    exported = _exported(registry)
    with registry.store.engine.begin() as conn:
        conn.execute(sa.update(audit_events).where(audit_events.c.sequence == 5).values(actor="mallory"))
    report = registry.checkpoints.verify(exported, load_public_key(keys[1]))
    assert not report.ok
    assert [c.ok for c in report.checkpoints] == [True, False]
    failure = report.first_failure
    assert failure is not None and failure.sequence == 6
    assert "event 5" in failure.reason and "edited" in failure.reason


def test_a_consistently_rewritten_chain_still_differs_from_the_signed_hash(
    registry: Registry, keys: tuple[Path, Path]
) -> None:
    _events(registry, 3)
    registry.checkpoints.sign(keys[0])  # signs head 4
    exported = _exported(registry)
    _rewrite_from(registry, 2, actor="mallory")
    assert registry.audit.verify().ok  # the chain alone cannot tell
    report = registry.checkpoints.verify(exported, load_public_key(keys[1]))
    failure = report.first_failure
    assert not report.ok and failure is not None and failure.sequence == 4
    assert failure.reason.startswith("hash differs")


def test_a_truncated_tail_is_named(registry: Registry, keys: tuple[Path, Path]) -> None:
    _events(registry, 2)
    registry.checkpoints.sign(keys[0])  # signs head 3
    _events(registry, 2, start=2)
    registry.checkpoints.sign(keys[0])  # signs head 6
    exported = _exported(registry)
    with registry.store.engine.begin() as conn:  # drop events 5.. and move the head back to 4
        conn.execute(sa.delete(audit_events).where(audit_events.c.sequence >= 5))
        kept = conn.execute(sa.select(audit_events.c.hash).where(audit_events.c.sequence == 4)).scalar_one()
        conn.execute(sa.update(ledger_head).values(sequence=4, hash=kept))
    assert registry.audit.verify().ok
    report = registry.checkpoints.verify(exported, load_public_key(keys[1]))
    failure = report.first_failure
    assert failure is not None and failure.sequence == 6 and failure.reason.startswith("event missing")
    assert report.checkpoints[0].ok


def test_a_wrong_public_key_is_refused(registry: Registry, keys: tuple[Path, Path], tmp_path: Path) -> None:
    registry.checkpoints.sign(keys[0])
    _, other_public = _other_key(tmp_path)
    report = registry.checkpoints.verify(_exported(registry), load_public_key(other_public))
    failure = report.first_failure
    assert not report.ok and failure is not None and failure.reason.startswith("wrong key")


def test_a_forged_signature_is_refused(registry: Registry, keys: tuple[Path, Path], tmp_path: Path) -> None:
    _events(registry, 1)
    registry.checkpoints.sign(keys[0])
    (genuine,) = _exported(registry)
    flipped = genuine.signature[:-1] + ("0" if genuine.signature[-1] != "0" else "1")
    other_private, _ = _other_key(tmp_path)
    resigned = load_private_key(other_private).sign(genuine.message()).hex()  # right key id, wrong key
    moved = dataclasses.replace(genuine, sequence=1)  # a genuine signature over another head
    public = load_public_key(keys[1])
    for forged in (
        dataclasses.replace(genuine, signature=flipped),
        dataclasses.replace(genuine, signature=resigned),
        moved,
    ):
        failure = registry.checkpoints.verify([forged], public).first_failure
        assert failure is not None and failure.reason.startswith("bad signature")


def test_if_changed_skips_when_only_checkpoints_were_added(
    registry: Registry, keys: tuple[Path, Path]
) -> None:
    first = registry.checkpoints.sign(keys[0], if_changed=True)  # no checkpoint yet: signs
    assert first is not None
    head = registry.audit.verify().events
    assert registry.checkpoints.sign(keys[0], if_changed=True) is None
    assert registry.audit.verify().events == head and len(registry.checkpoints.list()) == 1
    assert registry.checkpoints.sign(keys[0]) is not None  # an explicit one is always written
    assert registry.checkpoints.sign(keys[0], if_changed=True) is None  # still only checkpoints
    _events(registry, 1)
    again = registry.checkpoints.sign(keys[0], if_changed=True)
    assert again is not None and again.sequence == head + 2
    assert len(registry.checkpoints.list()) == 3


def test_the_key_comes_from_settings_or_a_clear_error(registry: Registry, keys: tuple[Path, Path]) -> None:
    with pytest.raises(InvalidInput, match="CHARTER_CHECKPOINT_KEY"):
        registry.checkpoints.sign()
    configured = Registry(
        registry.store, dataclasses.replace(registry.settings, checkpoint_key=keys[0]), ADMIN, registry.clock
    )
    assert configured.checkpoints.sign() is not None
    with pytest.raises(InvalidInput, match="cannot read"):
        registry.checkpoints.sign(keys[0].with_name("missing.pem"))


def test_only_admins_sign_but_anyone_may_verify(registry: Registry, keys: tuple[Path, Path]) -> None:
    viewer = add_user(registry, "auditor", "viewer")
    with pytest.raises(MissingRole, match="admin"):
        viewer.checkpoints.sign(keys[0])
    registry.checkpoints.sign(keys[0])
    assert viewer.checkpoints.verify(_exported(registry), load_public_key(keys[1])).ok


def test_malformed_exports_are_refused_naming_the_entry() -> None:
    with pytest.raises(InvalidInput, match="JSON list"):
        parse_checkpoints({"sequence": 1})
    good = {"sequence": 1, "hash": "a" * 64, "signed_at": "t", "key_id": "b" * 64, "signature": "c" * 128}
    with pytest.raises(InvalidInput, match=r"#2 of the file lacks signature"):
        parse_checkpoints([good, {k: v for k, v in good.items() if k != "signature"}])
    with pytest.raises(InvalidInput, match="hash must be 64"):
        parse_checkpoints([{**good, "hash": "xyz"}])


def _rewrite_from(registry: Registry, sequence: int, *, actor: str) -> None:
    """What someone in control of the database can do: edit an event and re-seal every later one."""
    with registry.store.engine.begin() as conn:
        rows = conn.execute(sa.select(audit_events).order_by(audit_events.c.sequence)).all()
        previous = None
        for row in rows:
            if row.sequence < sequence:
                previous = row.hash
                continue
            event = AuditEvent(
                row.sequence,
                row.time,
                actor if row.sequence == sequence else row.actor,
                row.action,
                row.subject,
                json.loads(row.payload),
                json.loads(row.evidence),
                previous or row.previous_hash,
            )
            resealed = seal(
                sequence=event.sequence,
                time=_parse(event.time),
                actor=event.actor,
                action=event.action,
                subject=event.subject,
                payload=event.payload,
                evidence=event.evidence,
                previous_hash=event.previous_hash,
            )
            conn.execute(
                sa.update(audit_events)
                .where(audit_events.c.sequence == row.sequence)
                .values(actor=resealed.actor, previous_hash=resealed.previous_hash, hash=resealed.hash)
            )
            assert canonical_json(resealed.payload).decode() == row.payload
            previous = resealed.hash
        conn.execute(sa.update(ledger_head).values(hash=previous))


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    monkeypatch.setenv("CHARTER_HOME", str(registry.settings.home))
    monkeypatch.setenv("CHARTER_DATABASE_URL", registry.settings.database_url)
    monkeypatch.setenv("CHARTER_USER", ADMIN)
    monkeypatch.delenv("CHARTER_CHECKPOINT_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return Cli(capsys, monkeypatch)


def test_cli_keygen_checkpoint_export_and_verify(cli: Cli, registry: Registry, tmp_path: Path) -> None:
    made = cli("audit", "keygen", "--private-key", "k.pem", "--public-key", "k.pub", "--json")
    assert made.code == 0 and len(made.json()["key_id"]) == 64
    assert cli("audit", "keygen", "--private-key", "k.pem", "--public-key", "k2.pub").code == 1
    refused = cli("audit", "checkpoint")
    assert refused.code == 1 and "CHARTER_CHECKPOINT_KEY" in refused.err
    signed = cli("audit", "checkpoint", "--key", "k.pem", "--json")
    assert signed.code == 0 and signed.json()["sequence"] == 1
    cli.monkeypatch.setenv("CHARTER_CHECKPOINT_KEY", str(tmp_path / "k.pem"))
    _events(registry, 1)
    assert cli("audit", "checkpoint").code == 0
    listed = cli("audit", "checkpoints", "--json").json()
    assert [c["sequence"] for c in listed] == [1, 3] and all(c["public_key"] for c in listed)
    assert cli("audit", "checkpoints", "--export", "cp.json").code == 0
    assert json.loads((tmp_path / "cp.json").read_text()) == listed
    ok = cli("audit", "verify", "--checkpoints", "cp.json", "--public-key", "k.pub")
    assert ok.code == 0 and "2 signed checkpoints" in ok.out
    assert cli("audit", "verify", "--checkpoints", "cp.json").code == 1
    with registry.store.engine.begin() as conn:
        conn.execute(sa.update(audit_events).where(audit_events.c.sequence == 2).values(actor="mallory"))
    bad = cli("audit", "verify", "--checkpoints", "cp.json", "--public-key", "k.pub", "--json")
    assert bad.code == 4
    assert bad.json()["first_failure"]["sequence"] == 3 and not bad.json()["ok"]
    text = cli("audit", "verify", "--checkpoints", "cp.json", "--public-key", "k.pub")
    assert text.code == 4 and "sequence 3" in text.out and "event 2" in text.out
