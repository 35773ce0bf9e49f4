"""Signed ledger checkpoints: what is signed, how an export looks, and how a check is judged.

A checkpoint is a signature over the audit ledger's head at one moment. The signed message is the
RFC 8785 canonical JSON of exactly four fields:

    {"hash":"<64 hex>","key_id":"<64 hex>","sequence":<int>,"signed_at":"<ledger time>"}

`sequence` and `hash` are the head event's; `signed_at` is in the ledger's time format
(UTC, microseconds, trailing Z); `key_id` is the hex SHA-256 of the signer's raw 32-byte Ed25519
public key. The signature is Ed25519 over those bytes, written as 128 hex digits. Nothing here does
cryptography (the domain is stdlib only): the service signs and checks signatures.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from charter.domain.canonical import canonical_json
from charter.errors import InvalidInput

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")


def key_id(raw_public_key: bytes) -> str:
    """A key's id: the hex SHA-256 of its raw 32-byte Ed25519 public key."""
    return hashlib.sha256(raw_public_key).hexdigest()


def checkpoint_message(sequence: int, head_hash: str, signed_at: str, signer: str) -> bytes:
    """The exact bytes a checkpoint's signature covers (`signer` is the key id)."""
    return canonical_json({"sequence": sequence, "hash": head_hash, "signed_at": signed_at, "key_id": signer})


@dataclass(frozen=True)
class Checkpoint:
    sequence: int  # the head event signed; the `ledger.checkpointed` event itself comes after it
    hash: str
    signed_at: str
    key_id: str
    signature: str
    public_key: str | None = None  # hex of the raw public key, when known (not trusted by verify)
    signed_by: str | None = None

    def message(self) -> bytes:
        return checkpoint_message(self.sequence, self.hash, self.signed_at, self.key_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "hash": self.hash,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "signature": self.signature,
            "public_key": self.public_key,
            "signed_by": self.signed_by,
        }


def parse_checkpoints(document: Any) -> list[Checkpoint]:
    """Checkpoints from an export (a JSON list of objects); refuses anything malformed, naming it."""
    if not isinstance(document, Sequence) or isinstance(document, str | bytes):
        raise InvalidInput(
            "a checkpoint file must be a JSON list of checkpoints (`charter audit checkpoints --export`)"
        )
    return [_parse_one(i, entry) for i, entry in enumerate(document)]


def _parse_one(index: int, entry: Any) -> Checkpoint:
    where = f"checkpoint #{index + 1} of the file"
    if not isinstance(entry, Mapping):
        raise InvalidInput(f"{where} is not an object")
    missing = [k for k in ("sequence", "hash", "signed_at", "key_id", "signature") if k not in entry]
    if missing:
        raise InvalidInput(f"{where} lacks {', '.join(missing)}")
    sequence = entry["sequence"]
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        raise InvalidInput(f"{where}: sequence must be a positive integer, not {sequence!r}")
    for name, pattern, shape in (
        ("hash", _HEX64, "64 lower-case hex digits"),
        ("key_id", _HEX64, "64 lower-case hex digits"),
        ("signature", _HEX128, "128 lower-case hex digits"),
    ):
        if not isinstance(entry[name], str) or not pattern.match(entry[name]):
            raise InvalidInput(f"{where} (sequence {sequence}): {name} must be {shape}")
    if not isinstance(entry["signed_at"], str):
        raise InvalidInput(f"{where} (sequence {sequence}): signed_at must be a string")
    public_key, signed_by = entry.get("public_key"), entry.get("signed_by")
    return Checkpoint(
        sequence,
        entry["hash"],
        entry["signed_at"],
        entry["key_id"],
        entry["signature"],
        public_key if isinstance(public_key, str) else None,
        signed_by if isinstance(signed_by, str) else None,
    )


@dataclass(frozen=True)
class CheckpointCheck:
    """One checkpoint's verdict; `reason` is empty when it holds."""

    sequence: int
    hash: str
    key_id: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason

    def as_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "hash": self.hash,
            "key_id": self.key_id,
            "ok": self.ok,
            "reason": self.reason,
        }


def judge(
    checkpoint: Checkpoint,
    *,
    expected_key_id: str,
    signature_valid: bool,
    event_hash: str | None,
    chain_broken_at: int | None,
    chain_reason: str = "",
) -> CheckpointCheck:
    """Does the ledger still extend this signed head? The first failing reason, in the order a
    reader needs them: whose signature, is it genuine, is the event there, is it the same event,
    and does the chain from genesis verify up to it."""
    if checkpoint.key_id != expected_key_id:
        reason = (
            f"wrong key: it was signed by key {checkpoint.key_id[:16]}…, not by the given public key "
            f"({expected_key_id[:16]}…)"
        )
    elif not signature_valid:
        reason = "bad signature: the signature does not match its sequence, hash and time (forged or altered)"
    elif event_hash is None:
        reason = f"event missing: the ledger has no event {checkpoint.sequence} (events were deleted)"
    elif event_hash != checkpoint.hash:
        reason = (
            f"hash differs: event {checkpoint.sequence} has hash {event_hash[:16]}… but "
            f"{checkpoint.hash[:16]}… was signed (the ledger was rewritten)"
        )
    elif chain_broken_at is not None and chain_broken_at <= checkpoint.sequence:
        reason = f"the chain breaks before it: event {chain_broken_at}: {chain_reason}"
    else:
        reason = ""
    return CheckpointCheck(checkpoint.sequence, checkpoint.hash, checkpoint.key_id, reason)
