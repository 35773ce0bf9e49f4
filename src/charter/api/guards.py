"""Checks the API makes before a use case whose embedded form may open a path the caller names.

Embedded, `charter slot create --policy track.yaml` and `charter model register -f spec.yaml
--weights model.bin` read files on the caller's machine — which, over the API, would be the
server's. So these routes accept only names and documents, never paths: the remote client reads the
caller's files itself and sends their content (and weights as deduplicated chunks).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from charter.errors import InvalidInput

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def policy_name_or_document(arguments: Mapping[str, Any]) -> None:
    policy = arguments.get("policy")
    if isinstance(policy, str) and (
        not _NAME.fullmatch(policy) or policy.endswith((".yaml", ".yml", ".json"))
    ):
        raise InvalidInput(
            f"policy {policy!r} is not a policy name; over the API give the name of a track policy or the "
            "policy document itself (the CLI reads a file for you: `charter slot create --policy FILE`)",
            parameter="policy",
        )


def spec_document_without_files(arguments: Mapping[str, Any]) -> None:
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


GUARDS: Mapping[str, Callable[[Mapping[str, Any]], None]] = {
    "policy_name_or_document": policy_name_or_document,
    "spec_document_without_files": spec_document_without_files,
}
