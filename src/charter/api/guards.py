"""Checks the API makes before a use case whose embedded form may open a path the caller names.

Embedded, `charter slot create --policy track.yaml` and `charter model register -f spec.yaml
--weights model.bin` read files on the caller's machine — which, over the API, would be the
server's. So these routes accept only names and documents, never paths: the remote client reads the
caller's files itself and sends their content (and weights as deduplicated chunks).

Lake tables are the exception that cannot be sent: the server opens the table itself. A table or
catalog given as a local path (or an SQLite catalog file) is therefore a path on the server, and is
opened only under a folder the operator allowed (`CHARTER_LAKE_ROOTS`). Object-store URIs (s3://,
gs://, abfss://, …) pass. A catalog *service* (an Iceberg REST catalog at https://…, a SQL catalog at
postgresql://…) is a connection the server would open on the caller's behalf — to anything its
network reaches — so it must start with a prefix the operator allowed (`CHARTER_LAKE_CATALOGS`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from charter.config import Settings
from charter.errors import InvalidInput, PermissionDenied

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def policy_name_or_document(arguments: Mapping[str, Any], settings: Settings) -> None:
    policy = arguments.get("policy")
    if isinstance(policy, str) and (
        not _NAME.fullmatch(policy) or policy.endswith((".yaml", ".yml", ".json"))
    ):
        raise InvalidInput(
            f"policy {policy!r} is not a policy name; over the API give the name of a track policy or the "
            "policy document itself (the CLI reads a file for you: `charter slot create --policy FILE`)",
            parameter="policy",
        )


def spec_document_without_files(arguments: Mapping[str, Any], settings: Settings) -> None:
    spec = arguments.get("spec")
    if not isinstance(spec, Mapping):
        raise InvalidInput(
            "spec must be the spec document (a JSON object); over the API a file name is not read "
            "(the CLI reads `-f spec.yaml` for you)",
            parameter="spec",
        )
    weights = spec.get("weights")
    if weights is not None and not isinstance(weights, Mapping):
        raise InvalidInput(
            "weights must be {uri, digest} over this endpoint; to store a weights file, upload it "
            "(`charter model register --weights FILE` does, through /api/v1/models/{name}/uploads)",
            parameter="spec.weights",
        )


def lake_table_under_roots(arguments: Mapping[str, Any], settings: Settings) -> None:
    """Refuse a table or catalog named by a server path outside CHARTER_LAKE_ROOTS, and confine the
    use case to those roots: every local file the table reads (metadata, data files, wherever a
    catalog says they are) must lie under one (`confine_to`, which the API never accepts)."""
    from charter.data.lake import local_path, parse_ref

    if isinstance(arguments, dict):
        arguments["confine_to"] = settings.lake_roots

    for kind in ("iceberg", "delta"):
        text = arguments.get(kind)
        if not isinstance(text, str):
            continue
        location = parse_ref(kind, text).location  # a relative path: the server's working folder
        path = local_path(location)
        if path is None:
            _allowed_service(kind, location, settings)
            continue
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root.resolve()) for root in settings.lake_roots):
            allowed = os.pathsep.join(str(r) for r in settings.lake_roots) or "none configured"
            raise PermissionDenied(
                f"{location} is a path on the server, which opens lake tables only under the folders its "
                f"operator allowed with CHARTER_LAKE_ROOTS (now: {allowed}); give an object-store URI "
                "(s3://, gs://, abfss://) or a table under an allowed folder",
                parameter=kind,
                path=str(location),
            )


OBJECT_STORES = ("s3://", "s3a://", "gs://", "gcs://", "abfs://", "abfss://", "az://", "adl://")


def _allowed_service(kind: str, location: str, settings: Settings) -> None:
    """An object-store URI passes; any other URI must start with a prefix in CHARTER_LAKE_CATALOGS."""
    lowered = location.lower()
    if lowered.startswith(OBJECT_STORES):
        return
    if any(location.startswith(prefix) for prefix in settings.lake_catalogs):
        return
    allowed = ", ".join(settings.lake_catalogs) or "none configured"
    raise PermissionDenied(
        f"{_shown(location)} is a service the server would connect to on your behalf; it connects "
        f"only to catalogs its operator allowed with CHARTER_LAKE_CATALOGS (now: {allowed}); give an "
        "object-store URI (s3://, gs://, abfss://) or an allowed catalog",
        parameter=kind,
    )


def _shown(location: str) -> str:
    """A URI for a message: scheme, host and path, never a password or query."""
    from urllib.parse import urlsplit

    parts = urlsplit(location)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


GUARDS: Mapping[str, Callable[[Mapping[str, Any], Settings], None]] = {
    "policy_name_or_document": policy_name_or_document,
    "spec_document_without_files": spec_document_without_files,
    "lake_table_under_roots": lake_table_under_roots,
}
