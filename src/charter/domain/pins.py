"""The pin guard: an API model version must name one immutable provider snapshot.

A provider serves a floating name (an alias that moves to whatever model the provider points it
at) and pinned snapshots (which never change). charter registers only snapshots, so that a model
version always means the same weights; a provider's new snapshot is a new model version, promoted
like any other.

The rule, applied to the `provider_model` string of a spec:

1. Refused, whatever the policy says: `latest` as any part of the name (`latest`, `gpt-4o-latest`,
   `mistral-large-latest`, `llama3:latest`) — it is floating by definition.
2. Accepted by default when the name ends in a date stamp or a revision suffix:
   - a date, `YYYY-MM-DD` or `YYYYMMDD`, after `-`, `_`, `@` or `.`: `gpt-4o-2024-08-06`,
     `claude-sonnet-4-5-20250929`, `claude-3-5-sonnet@20240620`;
   - a numeric revision of three or more digits: `gemini-1.5-pro-002`, `gpt-4-0613`,
     `mistral-large-2407`;
   - a versioned revision, `-vN:M` (Amazon Bedrock): `anthropic.claude-3-sonnet-20240229-v1:0`.
3. Accepted when the whole name matches one of the regular expressions in the `pins` policy
   (`pins: {allow: ["^text-embedding-3-(small|large)$"]}`), for providers whose snapshots are
   named differently.
4. Everything else is refused — in particular bare family names (`gpt-4o`, `claude-3-opus`,
   `gemini-1.5-pro`), whose target the provider may change at any time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from charter.errors import UnpinnedModel

_LATEST = re.compile(r"(^|[-_:@./])latest($|[-_:@./])", re.IGNORECASE)
_DASHED_DATE = re.compile(r"[-_@.](\d{4})-(\d{2})-(\d{2})$")
_COMPACT_DATE = re.compile(r"[-_@.](\d{4})(\d{2})(\d{2})$")
_REVISION = re.compile(r"[-_@.]\d{3,}$")
_BEDROCK = re.compile(r"-v\d+:\d+$")


@dataclass(frozen=True)
class Pin:
    """Why a provider model string counts as pinned (recorded with the version)."""

    provider_model: str
    rule: str  # "date stamp", "revision", "versioned revision" or "policy pattern"
    pattern: str | None = None  # the policy pattern that matched

    def as_dict(self) -> dict[str, str | None]:
        return {"provider_model": self.provider_model, "rule": self.rule, "pattern": self.pattern}


def check_pinned(provider_model: str, allow: Iterable[str] = ()) -> Pin:
    """The rule that pins `provider_model`, or `UnpinnedModel` saying why it is floating."""
    name = provider_model.strip()
    if not name:
        raise UnpinnedModel(provider_model, "it is empty")
    if _LATEST.search(name):
        raise UnpinnedModel(provider_model, "`latest` names whatever the provider serves today")
    dashed = _DASHED_DATE.search(name)
    if dashed:
        if _valid_date(*dashed.groups()):
            return Pin(name, "date stamp")
        raise UnpinnedModel(provider_model, f"{dashed[0][1:]} looks like a date stamp but is not a date")
    compact = _COMPACT_DATE.search(name)
    if compact and _valid_date(*compact.groups()):
        return Pin(name, "date stamp")
    if _BEDROCK.search(name):
        return Pin(name, "versioned revision")
    if _REVISION.search(name):
        return Pin(name, "revision")
    for pattern in allow:
        if re.fullmatch(pattern, name):
            return Pin(name, "policy pattern", pattern)
    raise UnpinnedModel(
        provider_model,
        "it has no date stamp (YYYY-MM-DD, YYYYMMDD) or revision suffix (-002, -0613, @20240620, "
        "-v1:0), so it looks like a floating family name",
    )


def _valid_date(year: str, month: str, day: str) -> bool:
    try:
        stamp = date(int(year), int(month), int(day))
    except ValueError:
        return False
    return 1990 <= stamp.year <= 2200
