"""Checkpoint verification against a server: the checkpoints and key travel, the server's ledger is
checked (see `charter.api.ledger`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from charter.client.remote import RemoteRegistry
    from charter.domain.checkpoints import Checkpoint
    from charter.service.checkpoints import CheckpointReport


def verify_checkpoints(
    remote: RemoteRegistry, checkpoints: Sequence[Checkpoint], public_key: Ed25519PublicKey
) -> CheckpointReport:
    from cryptography.hazmat.primitives import serialization

    from charter.client.decode import decode
    from charter.service.checkpoints import CheckpointReport

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    body = {"checkpoints": [c.as_dict() for c in checkpoints], "public_key": raw.hex()}
    report: CheckpointReport = decode(
        CheckpointReport, remote.request("POST", "/audit/checkpoints/verify", json=body).json()
    )
    return report
