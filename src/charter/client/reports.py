"""Evidence packs from a server: the pack's facts and its HTML, for `charter report` in remote mode."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charter.client.remote import RemoteRegistry
    from charter.service.reports import EvidencePack


def evidence(remote: RemoteRegistry, target: str, *, at: datetime | None = None) -> EvidencePack:
    from charter.client.decode import decode
    from charter.service.reports import EvidencePack

    params: dict[str, Any] = {"target": target}
    if at is not None:
        params["at"] = at.isoformat()
    body = remote.request("GET", "/reports/evidence", params=params).json()
    pack: EvidencePack = decode(EvidencePack, body)
    return pack
