"""Evidence packs for auditors: `reg.reports.evidence(TARGET, at=T)`.

A pack answers, for one model version, prompt version or slot, everything an auditor asks: what
it is and who created it, its spec and lineage, every gate it went through with the evidence,
who approved or signed off and when, the change log from the audit ledger for it and for related
subjects, and whether the ledger verifies — with the chain head the pack reflects, so the pack can
be checked against the ledger later. With `at`, the pack shows the state at that instant.

It is a read (any role may read) and writes nothing: reads are not audited. Everything is read in
one database transaction, so the facts, the change log and the verification are one snapshot.
The HTML (`charter.service.report_html`) is self-contained and printable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from charter.domain.ledger import AuditEvent, Verification, format_time, verify_chain
from charter.domain.refs import parse_model_ref, parse_prompt_ref
from charter.domain.roles import Action
from charter.domain.semver import Version
from charter.errors import InvalidInput, InvalidReference, NotFound
from charter.service.access import authorize
from charter.service.report_facts import (
    Related,
    model_facts,
    prompt_facts,
    resolve_model_at,
    resolve_prompt_at,
)
from charter.service.report_slot import slot_facts
from charter.storage.store import Tx

if TYPE_CHECKING:
    from charter.service.registry import Registry

MAX_CHANGES = 2000  # change-log entries in one pack (the newest; the pack says how many are left out)
ACCEPTED = (
    "MODEL@X.Y.Z (or MODEL@ALIAS), PROMPT-vN (or PROMPT@N, PROMPT@ENVIRONMENT), or a slot name; "
    "prefix with model:, prompt: or slot: to say which"
)
_PROMPT_VERSION = re.compile(r"-v[1-9]\d*$")


@dataclass(frozen=True)
class EvidencePack:
    subject: str  # the audit subject: model:NAME@X.Y.Z, prompt:NAME-vN or slot:NAME
    kind: str  # model | prompt | slot
    target: str  # as asked
    at: datetime | None  # the instant the pack shows (None: when it was generated)
    generated_at: datetime
    generated_by: str
    head_sequence: int  # the last ledger event the pack reflects (at `at`: the last one by then)
    head_hash: str
    verified: bool  # the whole ledger verified when the pack was generated
    verification: Mapping[str, Any]
    facts: Mapping[str, Any]
    changes: tuple[Mapping[str, Any], ...]
    changes_left_out: int = 0
    html: str = field(default="", repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Everything but the HTML."""
        from charter import __version__

        return {
            "subject": self.subject,
            "kind": self.kind,
            "target": self.target,
            "at": None if self.at is None else self.at.isoformat(),
            "generated_at": self.generated_at.isoformat(),
            "generated_by": self.generated_by,
            "charter_version": __version__,
            "head_sequence": self.head_sequence,
            "head_hash": self.head_hash,
            "verified": self.verified,
            "verification": dict(self.verification),
            "facts": dict(self.facts),
            "changes": [dict(c) for c in self.changes],
            "changes_left_out": self.changes_left_out,
        }


class ReportService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def evidence(self, target: str, *, at: datetime | None = None) -> EvidencePack:
        """The evidence pack of `target` (see `ACCEPTED`), as it stood at `at` (default: now)."""
        if at is not None and at.tzinfo is None:
            raise InvalidInput(f"--at {at.isoformat()} has no time zone; give UTC or an offset")
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            kind, subject, facts, related = _collect(tx, target, at)
            changes = _change_log(tx, related, at)
            verification = _verify(tx)
            head = _head_at(tx, at)
            generated_at = tx.clock.now()
        left_out = max(len(changes) - MAX_CHANGES, 0)
        pack = EvidencePack(
            subject,
            kind,
            target,
            at,
            generated_at,
            self.registry.actor,
            head[0],
            head[1],
            bool(verification["ok"]),
            verification,
            facts,
            tuple(changes[left_out:]),
            left_out,
        )
        from charter.service.report_html import render_pack

        return replace(pack, html=render_pack(pack.as_dict()))


# --- functions over a transaction ----------------------------------------------------------------


def _collect(tx: Tx, target: str, at: datetime | None) -> tuple[str, str, dict[str, Any], Related]:
    """(kind, subject, facts, related subjects) of the target."""
    kind, text = _classify(tx, target)
    if kind == "model":
        version = resolve_model_at(tx, parse_model_ref(text), at)
        facts, related = model_facts(tx, version, at)
        return kind, version.subject, facts, related
    if kind == "prompt":
        prompt = resolve_prompt_at(tx, parse_prompt_ref(text), at)
        facts, related = prompt_facts(tx, prompt, at)
        return kind, prompt.subject, facts, related
    if tx.slots.slot(text) is None:
        raise NotFound(f"slot {text!r}", f"a bare name is a slot; a report target is {ACCEPTED}")
    facts, related = slot_facts(tx, text, at)
    return kind, f"slot:{text}", facts, related


def _classify(tx: Tx, target: str) -> tuple[str, str]:
    """Which kind of subject a target names: by its prefix, else by its shape, else by what exists."""
    text = target.strip()
    for kind in ("model", "prompt", "slot"):
        if text.startswith(f"{kind}:"):
            return kind, text.removeprefix(f"{kind}:")
    if not text:
        raise InvalidReference(target, ACCEPTED)
    name, sep, tail = text.partition("@")
    if not sep:
        return ("prompt", text) if _PROMPT_VERSION.search(text) else ("slot", text)
    if Version.is_version(tail):
        return "model", text
    if tail.isdigit():
        return "prompt", text
    model, prompt = tx.models.model(name) is not None, tx.prompts.prompt(name) is not None
    if model and prompt:
        raise InvalidInput(
            f"{text!r} names both a model alias and a prompt environment; write model:{text} or prompt:{text}"
        )
    if model or prompt:
        return ("model" if model else "prompt"), text
    raise NotFound(f"a model or prompt named {name!r}", f"a report target is {ACCEPTED}")


def _until(at: datetime) -> str:
    """An exclusive ledger-time bound that includes every event stamped at `at`."""
    return format_time(at)[:-1] + "\x7f"


def _change_log(tx: Tx, related: Related, at: datetime | None) -> list[dict[str, Any]]:
    until = None if at is None else _until(at)
    found: dict[int, tuple[AuditEvent, str]] = {}
    for subject, relation in related.subjects.items():
        for event in tx.ledger.events(subject=subject, until=until):
            found.setdefault(event.sequence, (event, relation))
    for prefix, actions, relation in related.prefixes:
        for event in tx.ledger.events(subject_prefix=prefix, actions=actions, until=until):
            found.setdefault(event.sequence, (event, relation))
    return [
        {
            "sequence": event.sequence,
            "time": event.time,
            "actor": event.actor,
            "action": event.action,
            "subject": event.subject,
            "relation": relation,
            "payload": dict(event.payload),
            "hash": event.hash,
        }
        for event, relation in (found[s] for s in sorted(found))
    ]


def _verify(tx: Tx) -> dict[str, Any]:
    """The whole chain recomputed (as `charter audit verify` does), with the recorded head."""
    result = verify_chain(tx.ledger.stream())
    head_sequence, head_hash = tx.ledger.head()
    if result.ok and (result.events != head_sequence or result.head_hash != head_hash):
        result = Verification(
            False,
            result.events,
            result.head_hash,
            min(result.events, head_sequence) + 1,
            f"the chain ends at event {result.events} but the recorded head is event {head_sequence}: "
            "events were deleted from the end, or the head was altered",
        )
    return {**result.as_dict(), "chain_head_sequence": head_sequence, "chain_head_hash": head_hash}


def _head_at(tx: Tx, at: datetime | None) -> tuple[int, str]:
    """The ledger head now, or the last event at or before `at`."""
    if at is None:
        return tx.ledger.head()
    last = tx.ledger.events(until=_until(at), newest_first=True, limit=1)
    if not last:
        raise NotFound(f"audit events at or before {at.isoformat()}", "the store did not exist yet")
    return last[0].sequence, last[0].hash
