"""Lockfiles: every prompt of one environment, pinned, for applications that must not fetch at start-up.

`charter prompt lock production > prompts.lock` writes JSON: the environment, when and at which
ledger sequence it was taken, and for each prompt its version, content hash and full content
(template or messages, variables, model, params, tests) plus description and tags. `digest` is the
SHA-256 of the canonical JSON of `prompts`. Reading a lockfile verifies the digest and every
content hash, so a hand edit is refused rather than served.

    prompts = charter.prompts.from_lockfile("prompts.lock")
    version = prompts.get("summarize-ticket@production")     # no database, no network
    version.render(ticket=text)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from charter.domain.canonical import canonical_json
from charter.domain.prompts import ContentError, PromptContent, content_hash
from charter.domain.refs import parse_prompt_ref
from charter.errors import InvalidInput, InvalidSpec, NotFound
from charter.service.prompt_version import PromptVersion

FORMAT = 1


@dataclass(frozen=True)
class Lockfile:
    environment: str
    prompts: Mapping[str, PromptVersion]  # name → the version the environment held
    generated_at: datetime | None
    ledger_sequence: int | None

    def get(self, ref: str) -> PromptVersion:
        """`name`, `name@ENV` (the locked environment) or `name-vN`/`name@N` (the locked version)."""
        parsed = parse_prompt_ref(ref)
        found = self.prompts.get(parsed.name)
        if found is None:
            raise NotFound(
                f"prompt {parsed.name!r} in the lockfile",
                f"it pins {len(self.prompts)} prompt(s) of {self.environment}; regenerate it with "
                f"`charter prompt lock {self.environment}`",
            )
        if parsed.environment is not None and parsed.environment != self.environment:
            raise NotFound(f"{ref} in the lockfile", f"it pins the {self.environment} environment only")
        if parsed.version is not None and parsed.version != found.version:
            raise NotFound(f"{ref} in the lockfile", f"it pins {found.ref}")
        return found

    def names(self) -> list[str]:
        return sorted(self.prompts)

    def as_dict(self) -> dict[str, Any]:
        prompts = {name: _entry(v) for name, v in sorted(self.prompts.items())}
        return {
            "charter_lock": FORMAT,
            "environment": self.environment,
            "generated_at": None if self.generated_at is None else self.generated_at.isoformat(),
            "ledger_sequence": self.ledger_sequence,
            "digest": _digest(prompts),
            "prompts": prompts,
        }

    def text(self) -> str:
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False) + "\n"


def _entry(v: PromptVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "ref": v.ref,
        "content_hash": v.content_hash,
        "content": v.content.as_document(),
        "description": v.description,
        "tags": list(v.tags),
    }


def _digest(prompts: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(prompts)).hexdigest()


def from_lockfile(path: str | Path) -> Lockfile:
    """Read and verify a lockfile written by `charter prompt lock ENV`."""
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read the lockfile {where}: {exc.strerror or exc}") from None
    return parse_lockfile(text, str(where))


def parse_lockfile(text: str, where: str = "lockfile") -> Lockfile:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InvalidSpec(f"{where} is not a charter lockfile (not JSON: {exc})") from None
    if not isinstance(document, dict) or document.get("charter_lock") != FORMAT:
        raise InvalidSpec(f"{where} is not a charter lockfile of format {FORMAT}; regenerate it")
    prompts = document.get("prompts")
    environment = document.get("environment")
    if not isinstance(prompts, dict) or not isinstance(environment, str):
        raise InvalidSpec(f"{where} lacks its environment or prompts; regenerate it")
    if _digest(prompts) != document.get("digest"):
        raise InvalidSpec(
            f"{where} does not match its digest: it was edited; regenerate it with `charter prompt lock`"
        )
    versions = {}
    for name, entry in prompts.items():
        try:
            content = PromptContent.from_document(entry["content"])
            digest = content_hash(content.as_document())
            if digest != entry["content_hash"]:
                raise ContentError("the content does not match its hash")
            versions[name] = PromptVersion(
                name,
                int(entry["version"]),
                content,
                digest,
                entry.get("description", ""),
                tuple(entry.get("tags", ())),
                environment=environment,
            )
        except (ContentError, KeyError, TypeError, ValueError) as exc:
            raise InvalidSpec(f"{where}: prompt {name!r} is not valid: {exc}") from None
    generated = document.get("generated_at")
    return Lockfile(
        environment,
        versions,
        None if generated is None else datetime.fromisoformat(generated),
        document.get("ledger_sequence"),
    )
