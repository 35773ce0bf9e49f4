"""Signed ledger checkpoints: sign the chain head with an Ed25519 key kept outside the database,
export the signatures, and later prove the ledger still extends every signed head.

Whoever controls the database can rewrite the whole hash chain consistently; a checkpoint signed
with a key the database never sees pins the head as it was. Signing appends a `ledger.checkpointed`
event in the same transaction, so that event is the head's successor (sequence + 1): a checkpoint
covers the head *before* its own event, and the next checkpoint covers that event too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from charter.domain.checkpoints import Checkpoint, CheckpointCheck, checkpoint_message, judge, key_id
from charter.domain.ledger import Verification, format_time
from charter.domain.roles import Action
from charter.errors import AlreadyExists, InvalidInput, Refused
from charter.service.access import authorize
from charter.storage.checkpoints import CheckpointRepo

if TYPE_CHECKING:
    from charter.service.registry import Registry

CHECKPOINTED = "ledger.checkpointed"


@dataclass(frozen=True)
class CheckpointReport:
    """The chain's own verification plus one verdict per checkpoint, in sequence order."""

    key_id: str
    chain: Verification
    checkpoints: tuple[CheckpointCheck, ...]

    @property
    def first_failure(self) -> CheckpointCheck | None:
        return next((c for c in self.checkpoints if not c.ok), None)

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.first_failure is None

    def as_dict(self) -> dict[str, Any]:
        failure = self.first_failure
        return {
            "ok": self.ok,
            "key_id": self.key_id,
            "chain": self.chain.as_dict(),
            "checkpoints": [c.as_dict() for c in self.checkpoints],
            "first_failure": None if failure is None else failure.as_dict(),
        }


class CheckpointService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def sign(self, key_file: Path | None = None, *, if_changed: bool = False) -> Checkpoint | None:
        """Sign the current head (admin only). With `if_changed`, sign only if events other than
        checkpoints were appended since the last checkpoint, else return None and write nothing."""
        with self.registry.store.read() as tx:  # who may sign is checked before anything about keys
            authorize(tx, self.registry.actor, Action.SIGN_CHECKPOINT)
        path = key_file or self.registry.settings.checkpoint_key
        if path is None:
            raise InvalidInput(
                "no checkpoint key: pass --key PATH or set CHARTER_CHECKPOINT_KEY to an Ed25519 private "
                "key file (create one with `charter audit keygen`)"
            )
        private = load_private_key(path)
        raw_public = _raw(private.public_key())
        signer = key_id(raw_public)
        with self.registry.store.write() as tx:
            authorize(tx, self.registry.actor, Action.SIGN_CHECKPOINT)
            sequence, head_hash = tx.ledger.head()  # locked for this transaction by store.write()
            if sequence == 0:
                raise Refused("the audit ledger is empty: there is no head to sign yet")
            repo = CheckpointRepo(tx.conn)
            last = repo.latest_sequence()
            if if_changed and last is not None and not repo.changed_after(last, ignoring=CHECKPOINTED):
                return None
            now = tx.clock.now()
            signed_at = format_time(now)
            signature = private.sign(checkpoint_message(sequence, head_hash, signed_at, signer)).hex()
            checkpoint = Checkpoint(
                sequence, head_hash, signed_at, signer, signature, raw_public.hex(), self.registry.actor
            )
            repo.add(checkpoint, signed_at=now, signed_by=self.registry.actor)
            tx.ledger.append(
                self.registry.actor,
                CHECKPOINTED,
                "ledger",
                {
                    "sequence": sequence,
                    "hash": head_hash,
                    "key_id": signer,
                    "signature": signature,
                    "public_key": raw_public.hex(),
                },
            )
            return checkpoint

    def list(self) -> list[Checkpoint]:
        """Every checkpoint in sequence order, with the signer's public key (hex) from the ledger."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            keys: dict[str, str] = {}
            for event in tx.ledger.events(actions=(CHECKPOINTED,)):
                signer, public = event.payload.get("key_id"), event.payload.get("public_key")
                if isinstance(signer, str) and isinstance(public, str):
                    keys[signer] = public
            return [
                Checkpoint(**{**c.__dict__, "public_key": keys.get(c.key_id)})
                for c in CheckpointRepo(tx.conn).all()
            ]

    def verify(self, checkpoints: Sequence[Checkpoint], public_key: Ed25519PublicKey) -> CheckpointReport:
        """Check every checkpoint's signature with `public_key`, that the ledger still holds each
        signed event with exactly the signed hash, and that the chain verifies from genesis through
        the current head: the ledger still extends every signed head."""
        if not checkpoints:
            raise InvalidInput("the checkpoint file holds no checkpoints; there is nothing to verify against")
        expected = key_id(_raw(public_key))
        chain = self.registry.audit.verify()  # authorises the read, recomputes the whole chain
        with self.registry.store.read() as tx:
            hashes = CheckpointRepo(tx.conn).event_hashes(c.sequence for c in checkpoints)
        broken_at = None if chain.ok else chain.first_bad
        checks = tuple(
            judge(
                c,
                expected_key_id=expected,
                signature_valid=_signature_valid(public_key, c),
                event_hash=hashes.get(c.sequence),
                chain_broken_at=broken_at,
                chain_reason=chain.reason,
            )
            for c in sorted(checkpoints, key=lambda c: (c.sequence, c.signed_at))
        )
        return CheckpointReport(expected, chain, checks)


# --- keys -----------------------------------------------------------------------------------------


def generate_key_pair(private_path: Path, public_path: Path) -> str:
    """Write a new Ed25519 key pair as PEM (the private key readable by its owner only, mode 0600);
    refuses to overwrite either file. Returns the key id."""
    if private_path.absolute() == public_path.absolute():
        raise InvalidInput("the private and the public key need two different files")
    for path in (private_path, public_path):
        if path.exists():
            raise AlreadyExists(f"key file {path}", "choose another path; charter never overwrites a key")
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    return key_id(_raw(private.public_key()))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read_key_file(path, "private")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InvalidInput(
            f"the checkpoint key {path} is encrypted; charter needs an unencrypted PEM key protected by "
            "its file permissions (create one with `charter audit keygen`)"
        ) from None
    except ValueError:
        raise InvalidInput(
            f"{path} is not a PEM private key (create one with `charter audit keygen`)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} is not an Ed25519 private key; checkpoints are signed with Ed25519")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file, or from a file holding its raw 32 bytes as hex."""
    data = _read_key_file(path, "public").strip()
    text = data.decode("ascii", errors="replace")
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise InvalidInput(
            f"{path} is not a public key; expected a PEM public key (from `charter audit keygen`) or "
            "64 hex digits"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(f"{path} is not an Ed25519 public key; checkpoints are signed with Ed25519")
    return key


def public_key_from_hex(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from its raw 32 bytes as 64 hex digits (how the API carries it)."""
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise InvalidInput("public_key must be the raw Ed25519 public key as 64 hex digits")
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))


def _read_key_file(path: Path, kind: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read the {kind} key file {path}: {exc.strerror}") from None


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise AlreadyExists(
            f"key file {path}", "choose another path; charter never overwrites a key"
        ) from None
    except OSError as exc:
        raise InvalidInput(f"cannot write the key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)  # exactly this mode, whatever the umask took away


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _signature_valid(key: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
    try:
        key.verify(bytes.fromhex(checkpoint.signature), checkpoint.message())
    except (InvalidSignature, ValueError):
        return False
    return True
