"""Releases: immutable, content-addressed bundles a slot serves.

A release pins one model version, prompt versions, parameter overrides and, optionally, the
retrieval index (a dataset version) and the application version. Its digest is the SHA-256 of the
canonical JSON of that bundle — the slot, the model version with its spec digest, each prompt
version with its content hash, the overrides, the retrieval index with its content digest, the
application version — so the same bundle for the same slot is the same release (creating it
again returns it) and any change is a new one. Releases are named by any unique digest prefix of
at least 8 characters.

Parameter precedence: release override > prompt params > model serving params. A release may
hold several prompts, each sent with its own parameters, so the effective values are given per
prompt (and once without a prompt, under `-`), each with the source it came from.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from charter.domain.canonical import canonical_json
from charter.domain.refs import parse_dataset_ref, parse_model_ref, parse_prompt_ref
from charter.domain.roles import Action
from charter.errors import InvalidInput, InvalidReference, NotFound
from charter.service.access import authorize
from charter.service.models import resolve_version as resolve_model
from charter.service.models import version_view as model_view
from charter.service.prompts import resolve_version as resolve_prompt
from charter.service.prompts import version_view as prompt_view
from charter.storage.slots import ReleaseRecord, SlotRecord
from charter.storage.store import Tx

if TYPE_CHECKING:
    from charter.service.model_results import ModelVersion
    from charter.service.prompt_version import PromptVersion
    from charter.service.registry import Registry
    from charter.storage.models import ModelVersionRecord
    from charter.storage.prompts import PromptVersionRecord

MIN_PREFIX = 8
NO_PROMPT = "-"  # the key of the effective parameters for calls made without a prompt
_HEX = re.compile(r"^[0-9a-f]+$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Release:
    digest: str
    slot: str
    model: str  # name@X.Y.Z
    model_spec_digest: str
    prompts: tuple[str, ...]  # name-vN, by name
    params: Mapping[str, Any]  # the release's overrides
    effective_params: Mapping[str, Mapping[str, Mapping[str, Any]]]  # prompt (or "-") → key → value, source
    retrieval_index: str | None
    app_version: str | None
    created_at: datetime
    created_by: str

    @property
    def short(self) -> str:
        return self.digest[:12]

    def as_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "slot": self.slot,
            "model": self.model,
            "model_spec_digest": self.model_spec_digest,
            "prompts": list(self.prompts),
            "params": dict(self.params),
            "effective_params": {
                p: {k: dict(v) for k, v in e.items()} for p, e in self.effective_params.items()
            },
            "retrieval_index": self.retrieval_index,
            "app_version": self.app_version,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class ServedRelease:
    """A release ready to serve, as the router hands it out: the model version (spec, serving
    parameters), the prompt versions (render them with `.render(**vars)`), and the effective
    parameters per prompt."""

    release: Release
    model: ModelVersion
    prompts: Mapping[str, PromptVersion]  # prompt name → version
    _params: Mapping[str, Mapping[str, Any]] = field(repr=False, default_factory=dict)

    @property
    def digest(self) -> str:
        return self.release.digest

    def prompt(self, name: str) -> PromptVersion:
        try:
            return self.prompts[name]
        except KeyError:
            raise NotFound(
                f"prompt {name!r} in release {self.release.short}",
                f"it holds: {', '.join(self.prompts) or 'no prompts'}",
            ) from None

    def params(self, prompt: str | None = None) -> dict[str, Any]:
        """The effective parameter values for calls with `prompt` (a name), or without a prompt."""
        return dict(self._params.get(prompt or NO_PROMPT) or self._params[NO_PROMPT])

    def as_dict(self) -> dict[str, Any]:
        return self.release.as_dict()


def effective_params(
    serving: Mapping[str, Any],
    model: str,
    prompts: Sequence[tuple[str, str, Mapping[str, Any]]],
    overrides: Mapping[str, Any],
) -> dict[str, dict[str, dict[str, Any]]]:
    """prompt name (or "-") → parameter → {value, source}; `prompts` holds (name, ref, params)."""

    def layered(layers: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for source, values in layers:
            for key, value in values.items():
                out[key] = {"value": value, "source": source}
        return dict(sorted(out.items()))

    model_layer = (f"model:{model}", serving)
    release_layer = ("release", overrides)
    result = {NO_PROMPT: layered([model_layer, release_layer])}
    for name, ref, params in prompts:
        result[name] = layered([model_layer, (f"prompt:{ref}", params), release_layer])
    return result


def release_digest(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


class ReleaseService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def create(
        self,
        slot: str,
        *,
        model: str,
        prompts: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        retrieval_index: str | None = None,
        app_version: str | None = None,
    ) -> Release:
        """A release for `slot` (`model`: `name@X.Y.Z`, or an alias resolved now and pinned;
        `prompts`: `name-vN` each). The same bundle again returns the existing release."""
        overrides = _check_params(params or {})
        model_ref = parse_model_ref(model)
        prompt_refs = [parse_prompt_ref(p) for p in prompts]
        names = [r.name for r in prompt_refs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InvalidInput(f"a release holds one version per prompt; repeated: {', '.join(repeated)}")
        index_ref = None if retrieval_index is None else parse_dataset_ref(retrieval_index)
        app = None if app_version is None else app_version.strip() or None
        if app is not None and len(app) > 200:
            raise InvalidInput("--app-version is a git SHA or tag of at most 200 characters")
        with self.registry.store.write() as tx:
            authorize(tx, self.registry.actor, Action.CREATE_RELEASE)
            slot_record = require_slot(tx, slot)
            version = resolve_model(tx, model_ref)
            versions = sorted((resolve_prompt(tx, r) for r in prompt_refs), key=lambda v: v.name)
            index = None if index_ref is None else tx.datasets.get_version(index_ref)
            document = {
                "slot": slot_record.name,
                "model": {"ref": version.ref, "spec_digest": version.spec_digest},
                "prompts": [{"ref": v.ref, "content_hash": v.content_hash} for v in versions],
                "params": overrides,
                "retrieval_index": None if index is None else {"ref": index.ref, "digest": index.digest},
                "app_version": app,
            }
            digest = release_digest(document)
            existing = tx.slots.release_by_digest(digest)
            if existing is not None:
                return release_view(tx, existing)
            record = tx.slots.insert_release(
                slot_record.id,
                digest,
                document,
                model_version_id=version.id,
                prompt_version_ids=[v.id for v in versions],
                params=overrides,
                retrieval_index_id=None if index is None else index.id,
                app_version=app,
                at=tx.clock.now(),
                by=self.registry.actor,
            )
            result = release_view(tx, record)
            tx.ledger.append(
                self.registry.actor,
                "release.created",
                slot_record.subject,
                {"release": digest, **document, "effective_params": result.as_dict()["effective_params"]},
            )
            return result

    def get(self, ref: str, *, slot: str | None = None) -> Release:
        """A release by digest prefix (≥ 8 hex characters)."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return release_view(tx, resolve_release(tx, ref, slot=slot))

    def list(self, slot: str) -> list[Release]:
        """Every release of a slot, oldest first."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return [release_view(tx, r) for r in tx.slots.releases_of(require_slot(tx, slot).id)]


# --- functions over a transaction ----------------------------------------------------------------


def require_slot(tx: Tx, name: str) -> SlotRecord:
    found = tx.slots.slot(name)
    if found is None:
        raise NotFound(
            f"slot {name!r}", "list slots with `charter slot list`, create one with `charter slot create`"
        )
    return found


def resolve_release(tx: Tx, ref: str, *, slot: str | None = None) -> ReleaseRecord:
    """The release a digest prefix names; refused when it is short, not hex, or ambiguous."""
    text = ref.strip().lower()
    if len(text) < MIN_PREFIX or not _HEX.match(text) or len(text) > 64:
        raise InvalidReference(
            ref, f"a release digest or a unique prefix of at least {MIN_PREFIX} hex characters"
        )
    found = tx.slots.releases_by_prefix(text)
    if not found:
        hint = (
            f"list releases with `charter release list {slot}`"
            if slot
            else "list a slot's releases with `charter release list SLOT`"
        )
        raise NotFound(f"release {ref}", hint)
    if len(found) > 1:
        raise InvalidInput(
            f"release prefix {ref} is ambiguous: it matches {', '.join(r.short for r in found)}; give more "
            "characters"
        )
    record = found[0]
    if slot is not None and record.slot != slot:
        raise InvalidInput(f"release {record.short} belongs to slot {record.slot}, not {slot}")
    return record


def release_view(tx: Tx, record: ReleaseRecord) -> Release:
    version = tx.models.version_by_id(record.model_version_id)
    prompts = [tx.prompts.version_by_id(i) for i in record.prompt_version_ids]
    index = None if record.retrieval_index_id is None else tx.datasets.by_id(record.retrieval_index_id).ref
    return release_of(record, version, prompts, index)


def release_of(
    record: ReleaseRecord,
    version: ModelVersionRecord,
    prompts: Sequence[PromptVersionRecord],
    index: str | None,
) -> Release:
    """The release view from records already read (its model version, prompt versions in the
    release's order, and the retrieval index's ref)."""
    effective = effective_params(
        version.spec.serving,
        version.ref,
        [(p.name, p.ref, _prompt_params(p.content)) for p in prompts],
        record.params,
    )
    return Release(
        record.digest,
        record.slot,
        version.ref,
        version.spec_digest,
        tuple(p.ref for p in prompts),
        record.params,
        effective,
        index,
        record.app_version,
        record.created_at,
        record.created_by,
    )


def served_release(tx: Tx, record: ReleaseRecord) -> ServedRelease:
    release = release_view(tx, record)
    model = model_view(tx, tx.models.version_by_id(record.model_version_id))
    prompts = {}
    for version_id in record.prompt_version_ids:
        version = prompt_view(tx.prompts.version_by_id(version_id))
        prompts[version.name] = version
    values = {p: {k: v["value"] for k, v in e.items()} for p, e in release.effective_params.items()}
    return ServedRelease(release, model, prompts, values)


def _prompt_params(content: Mapping[str, Any]) -> Mapping[str, Any]:
    params = content.get("params") or {}
    return params if isinstance(params, Mapping) else {}


def _check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not _PARAM.match(key):
            raise InvalidInput(
                f"parameter name {key!r} is not valid; use letters, digits and _ . - (temperature)"
            )
        _check_value(key, value)
        out[key] = value
    return dict(sorted(out.items()))


def _check_value(key: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"parameter {key} = {value} is not a finite number")
    if isinstance(value, Mapping):
        for inner in value.values():
            _check_value(key, inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            _check_value(key, inner)
    elif not isinstance(value, str | int | float | bool | type(None)):
        raise InvalidInput(
            f"parameter {key} = {value!r} is not a JSON value (text, number, true/false, list)"
        )
