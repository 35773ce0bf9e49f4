"""Model specs: the immutable, content-addressed part of a model version, and the versioning rules.

A spec holds what makes a model behave as it does: `family`, `architecture`, `parameter_count`,
its source (`weights` — a blob or URI with its digest — or `provider` + a pinned
`provider_model`), `training` provenance (`datasets` as `name@N`, `date`, `sources`,
`base_model`) and `serving` parameters. Its digest is SHA-256 over the RFC 8785 canonical JSON of
`ModelSpec.canonical()` (fields that are unset or empty are left out, lists that are sets are
sorted). `primary_metrics`, `description` and `tags` are accepted in the same document but live
outside the digest (`SpecExtras`).

Versioning (DESIGN §1 Models): a new version is judged against the highest version of its MAJOR
line (a new MAJOR line against the highest version overall). Family, architecture or provider
changed ⇒ MAJOR; weights, provider snapshot, training provenance or parameter count ⇒ at least
MINOR; anything else (serving parameters) ⇒ at least PATCH; a spec identical to any existing
version is refused.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from charter.domain.canonical import NotCanonicalisable, canonical_json
from charter.domain.refs import parse_dataset_ref
from charter.domain.semver import Bump, Version
from charter.errors import BumpTooSmall, IdenticalSpec, InvalidInput, InvalidSpec, VersionRefused

SPEC_KEYS = (
    "family",
    "architecture",
    "parameter_count",
    "weights",
    "provider",
    "provider_model",
    "training",
    "serving",
)
EXTRA_KEYS = ("primary_metrics", "description", "tags")
ACCEPTED_KEYS = SPEC_KEYS + EXTRA_KEYS
WEIGHTS_KEYS = ("digest", "size", "manifest", "uri")
TRAINING_KEYS = ("datasets", "date", "sources", "base_model")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|blake3:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
METRIC_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,99}$")
_COUNT = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMBT])$", re.IGNORECASE)
_SCALE = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
_MAX_INT = 2**53 - 1


class Direction(enum.StrEnum):
    """Which way a primary metric is better."""

    HIGHER = "higher"
    LOWER = "lower"

    @classmethod
    def parse(cls, metric: str, text: Any) -> Direction:
        try:
            return cls(str(text).strip().lower())
        except ValueError:
            raise InvalidSpec(
                f"primary metric {metric!r} has direction {text!r}; accepted: higher, lower"
            ) from None


@dataclass(frozen=True)
class Weights:
    """A weights artifact: its content digest (`algo:hex`), size, blob manifest and/or URI."""

    digest: str
    size: int | None = None
    manifest: str | None = None  # BLAKE3 digest of the blob-store manifest, when stored by charter
    uri: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "manifest": self.manifest, "uri": self.uri}


@dataclass(frozen=True)
class Training:
    datasets: tuple[str, ...] = ()  # "name@N", sorted
    date: str | None = None  # YYYY-MM-DD
    sources: tuple[str, ...] = ()  # sorted
    base_model: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "datasets": list(self.datasets),
            "date": self.date,
            "sources": list(self.sources),
            "base_model": self.base_model,
        }


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """The immutable part of a model version. Equal specs have equal canonical JSON."""

    family: str
    architecture: str | None = None
    parameter_count: int | None = None
    weights: Weights | None = None
    provider: str | None = None
    provider_model: str | None = None
    training: Training = field(default_factory=Training)
    serving: Mapping[str, Any] = field(default_factory=dict)
    _canonical: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "serving", freeze(dict(self.serving)))
        object.__setattr__(self, "_canonical", canonical_json(self.canonical()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelSpec):
            return NotImplemented
        return self._canonical == other._canonical

    def __hash__(self) -> int:
        return hash(self._canonical)

    @property
    def digest(self) -> str:
        """SHA-256 hex of the canonical JSON: the spec's identity."""
        return hashlib.sha256(self._canonical).hexdigest()

    @property
    def canonical_json(self) -> str:
        return self._canonical.decode()

    @property
    def is_provider_model(self) -> bool:
        return self.provider is not None

    def canonical(self) -> dict[str, Any]:
        """The hashed form: unset and empty fields are left out, so adding an optional field to
        charter later does not change existing digests. `parse_spec` accepts it back."""
        out: dict[str, Any] = {"family": self.family}
        for key in ("architecture", "parameter_count", "provider", "provider_model"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.weights is not None:
            out["weights"] = _compact(self.weights.as_dict())
        training = _compact(self.training.as_dict())
        if training:
            out["training"] = training
        if self.serving:
            out["serving"] = thaw(self.serving)
        return out

    def as_dict(self) -> dict[str, Any]:
        """Every field, unset ones as null (what `--json` prints)."""
        return {
            "family": self.family,
            "architecture": self.architecture,
            "parameter_count": self.parameter_count,
            "weights": None if self.weights is None else self.weights.as_dict(),
            "provider": self.provider,
            "provider_model": self.provider_model,
            "training": self.training.as_dict(),
            "serving": thaw(self.serving),
        }


@dataclass(frozen=True)
class SpecExtras:
    """The parts of a spec document outside the digest."""

    primary_metrics: Mapping[str, Direction] | None = None  # None: the document did not say
    description: str = ""
    tags: tuple[str, ...] = ()


def spec_digest(spec: ModelSpec) -> str:
    """SHA-256 hex over the RFC 8785 canonical JSON of `spec.canonical()`."""
    return spec.digest


# --- parsing -------------------------------------------------------------------------------------


def parse_spec(document: Any) -> tuple[ModelSpec, SpecExtras]:
    """Validate a spec document strictly (unknown keys are refused, naming the accepted ones).

    `weights` must already be a mapping {digest, size, manifest, uri}: the service stores a file
    path in the blob store and replaces it by that mapping before parsing.
    """
    doc = _mapping(document, "the model spec", ACCEPTED_KEYS)
    family = _text(doc, "family", required=True)
    assert family is not None
    provider = _text(doc, "provider")
    provider_model = _text(doc, "provider_model")
    weights = _weights(doc.get("weights"))
    if weights is None and provider is None and provider_model is None:
        raise InvalidSpec(
            "the model spec needs its source: `weights` (a file path, or {uri, digest}) for a model "
            "you host, or `provider` and `provider_model` for an API model"
        )
    if weights is not None and (provider is not None or provider_model is not None):
        raise InvalidSpec(
            "the model spec names both `weights` and a provider; give `weights` for a model you "
            "host, or `provider` + `provider_model` for an API model, not both"
        )
    if (provider is None) != (provider_model is None):
        raise InvalidSpec(
            "an API model needs both `provider` (openai, anthropic, …) and `provider_model` "
            "(the pinned snapshot, such as gpt-4o-2024-08-06)"
        )
    architecture = _text(doc, "architecture")
    parameter_count = _parameter_count(doc.get("parameter_count"))
    if weights is not None and (architecture is None or parameter_count is None):
        raise InvalidSpec(
            "a model with `weights` needs `architecture` and `parameter_count` as well (they are "
            "optional only for provider models)"
        )
    spec = ModelSpec(
        family=family,
        architecture=architecture,
        parameter_count=parameter_count,
        weights=weights,
        provider=provider,
        provider_model=provider_model,
        training=_training(doc.get("training")),
        serving=_serving(doc.get("serving")),
    )
    return spec, _extras(doc)


def parse_primary_metrics(value: Any) -> dict[str, Direction]:
    """`{metric: higher|lower}`."""
    metrics = _mapping(value, "primary_metrics", None)
    out: dict[str, Direction] = {}
    for name, direction in metrics.items():
        if not isinstance(name, str) or not METRIC_NAME.match(name):
            raise InvalidSpec(f"{name!r} is not a metric name; use letters, digits and _ . : / - (up to 100)")
        out[name] = Direction.parse(name, direction)
    return dict(sorted(out.items()))


def _mapping(value: Any, what: str, accepted: Sequence[str] | None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidSpec(f"{what} must be a mapping, not {type(value).__name__}")
    if accepted is not None:
        unknown = sorted(str(k) for k in value if k not in accepted)
        if unknown:
            raise InvalidSpec(
                f"unknown key(s) in {what}: {', '.join(unknown)}; accepted: {', '.join(accepted)}"
            )
    return value


def _text(doc: Mapping[str, Any], key: str, *, required: bool = False, where: str = "") -> str | None:
    value = doc.get(key)
    if value is None:
        if required:
            raise InvalidSpec(f"the model spec needs `{where}{key}`")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidSpec(f"`{where}{key}` must be a non-empty string, not {value!r}")
    return value.strip()


def _parameter_count(value: Any) -> int | None:
    if value is None:
        return None
    count: float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, str) and (match := _COUNT.match(value.strip())):
        count = float(match[1]) * _SCALE[match[2].upper()]
    if count is None or count < 1 or count > _MAX_INT or count != int(count):
        raise InvalidSpec(
            f"`parameter_count` {value!r} is not a positive whole number; write 7000000000 or 7B "
            "(suffixes K, M, B, T)"
        )
    return int(count)


def _weights(value: Any) -> Weights | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise InvalidSpec(
            "`weights` is a path or URI that was not resolved; register through the model service, "
            "which stores a file path in the blob store (a URI needs {uri, digest})"
        )
    if isinstance(value, Mapping) and "path" in value:
        raise InvalidSpec("give a local weights file as `weights: PATH` (it is stored and hashed for you)")
    doc = _mapping(value, "weights", WEIGHTS_KEYS)
    digest = _text(doc, "digest", where="weights.")
    if digest is None:
        raise InvalidSpec(
            "`weights` needs its `digest` (sha256:<hex>, blake3:<hex> or sha512:<hex>) so the "
            "version is content-addressed; a local file path is hashed for you"
        )
    digest = digest.lower()
    if _HEX64.match(digest):
        digest = f"sha256:{digest}"
    if not _DIGEST.match(digest):
        raise InvalidSpec(
            f"weights.digest {doc['digest']!r} is not a digest; expected sha256:<64 hex>, "
            "blake3:<64 hex>, sha512:<128 hex> or 64 hex digits (read as SHA-256)"
        )
    size = doc.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise InvalidSpec(f"weights.size must be a byte count, not {size!r}")
    manifest = _text(doc, "manifest", where="weights.")
    if manifest is not None and not _HEX64.match(manifest):
        raise InvalidSpec(f"weights.manifest {manifest!r} is not a blob-store digest (64 hex digits)")
    return Weights(digest, size, manifest, _text(doc, "uri", where="weights."))


def _training(value: Any) -> Training:
    if value is None:
        return Training()
    doc = _mapping(value, "training", TRAINING_KEYS)
    datasets = []
    for ref in _strings(doc.get("datasets"), "training.datasets"):
        try:
            parsed = parse_dataset_ref(ref)
        except InvalidInput:
            parsed = None
        if parsed is None or parsed.version is None:
            raise InvalidSpec(
                f"training dataset {ref!r} must name an exact version, such as {ref.split('@')[0]}@3"
            )
        datasets.append(str(parsed))
    return Training(
        datasets=tuple(sorted(set(datasets))),
        date=_date(doc.get("date")),
        sources=tuple(sorted(set(_strings(doc.get("sources"), "training.sources")))),
        base_model=_text(doc, "base_model", where="training."),
    )


def _date(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise InvalidSpec(f"training.date {value!r} is not a date; expected YYYY-MM-DD")


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidSpec(f"`{what}` must be a list of strings")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise InvalidSpec(f"`{what}` must be a list of non-empty strings; found {item!r}")
    return [item.strip() for item in value]


_SERVING_CHECKS: Mapping[str, tuple[str, Any]] = {
    "temperature": ("a number ≥ 0", lambda v: _number(v) and v >= 0),
    "top_p": ("a number in (0, 1]", lambda v: _number(v) and 0 < v <= 1),
    "max_tokens": ("a whole number ≥ 1", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _serving(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    doc = _mapping(value, "serving", None)
    for key, item in doc.items():
        if not isinstance(key, str) or not key:
            raise InvalidSpec(f"serving parameter names must be strings, not {key!r}")
        if key in _SERVING_CHECKS:
            expected, ok = _SERVING_CHECKS[key]
            if not ok(item):
                raise InvalidSpec(f"serving.{key} must be {expected}, not {item!r}")
        try:
            canonical_json(item)
        except NotCanonicalisable as exc:
            raise InvalidSpec(f"serving.{key} is not a JSON value: {exc}") from None
    return dict(doc)


def _extras(doc: Mapping[str, Any]) -> SpecExtras:
    metrics = doc.get("primary_metrics")
    description = doc.get("description", "") or ""
    if not isinstance(description, str):
        raise InvalidSpec("`description` must be a string")
    tags = _strings(doc.get("tags"), "tags")
    return SpecExtras(
        primary_metrics=None if metrics is None else parse_primary_metrics(metrics),
        description=description.strip(),
        tags=tuple(dict.fromkeys(tags)),
    )


# --- comparing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    field: str  # dotted path: "weights.digest", "serving.temperature"
    old: Any
    new: Any

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class Change:
    """What changed between two specs and the smallest bump it needs."""

    bump: Bump
    reason: str  # the changes that set the bump: "weights changed"
    fields: tuple[FieldChange, ...]


# Which bump a change to each top-level field needs; fields not listed need a PATCH.
_BUMPS: Mapping[str, Bump] = {
    "family": Bump.MAJOR,
    "architecture": Bump.MAJOR,
    "provider": Bump.MAJOR,
    "weights": Bump.MINOR,
    "provider_model": Bump.MINOR,
    "training": Bump.MINOR,
    "parameter_count": Bump.MINOR,
}
_LABELS: Mapping[str, str] = {
    "family": "family",
    "architecture": "architecture",
    "provider": "provider",
    "weights": "weights",
    "provider_model": "provider snapshot",
    "training": "training provenance",
    "parameter_count": "parameter count",
    "serving": "serving parameters",
}


def spec_changes(old: ModelSpec, new: ModelSpec) -> tuple[FieldChange, ...]:
    """Every leaf that differs, as dotted paths (nested mappings flattened, lists compared whole)."""
    before, after = _flatten(old.canonical()), _flatten(new.canonical())
    changes = []
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path), after.get(path)
        if canonical_json(a) != canonical_json(b):
            changes.append(FieldChange(path, a, b))
    return tuple(changes)


def classify(old: ModelSpec, new: ModelSpec) -> Change | None:
    """The changes from `old` to `new` and the bump they need; None for identical specs."""
    fields = spec_changes(old, new)
    if not fields:
        return None
    tops: dict[str, list[FieldChange]] = {}
    for change in fields:
        tops.setdefault(change.field.split(".")[0], []).append(change)
    bump = max(_BUMPS.get(top, Bump.PATCH) for top in tops)
    reasons = [_reason(top, tops[top]) for top in tops if _BUMPS.get(top, Bump.PATCH) == bump]
    return Change(bump, " and ".join(reasons), fields)


def required_bump(old: ModelSpec, new: ModelSpec) -> Bump | None:
    """The smallest version bump that `new` needs after `old`; None if nothing changed."""
    change = classify(old, new)
    return None if change is None else change.bump


def _reason(top: str, changes: list[FieldChange]) -> str:
    label = _LABELS.get(top, top)
    if len(changes) == 1 and changes[0].field == top and top not in ("weights", "training"):
        return f"{label} changed ({_show(changes[0].old)} → {_show(changes[0].new)})"
    leaves = ", ".join(c.field.partition(".")[2] or c.field for c in changes)
    return f"{label} changed ({leaves})"


def _show(value: Any) -> str:
    return "unset" if value is None else str(value)


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


# --- new versions --------------------------------------------------------------------------------


def check_new_version(
    existing: Iterable[tuple[Version, ModelSpec]],
    new_spec: ModelSpec,
    requested: Version | None,
    *,
    name: str = "model",
) -> Version:
    """The version `new_spec` gets, or a refusal saying what would be accepted.

    - a spec identical to any existing version is refused;
    - with no versions yet: `requested`, or 1.0.0;
    - with no `requested`: the highest version overall, bumped as the change needs;
    - a requested version in an existing MAJOR line must be above every version of that line and
      at least the bump the change needs against that line's highest;
    - a requested version that opens a new MAJOR line must be above every existing version.
    """
    versions = sorted(existing, key=lambda pair: pair[0])
    label = f"{name}@{requested}" if requested is not None else name
    for version, spec in versions:
        if spec == new_spec:
            raise IdenticalSpec(label, f"{name}@{version}")
    if not versions:
        return requested or Version(1, 0, 0)
    highest, highest_spec = versions[-1]
    if requested is None:
        change = classify(highest_spec, new_spec)
        assert change is not None
        return highest.bumped(change.bump)
    line = [pair for pair in versions if pair[0].major == requested.major]
    next_major = Version(highest.major + 1, 0, 0)
    if not line:
        if requested.major < highest.major:
            raise VersionRefused(
                f"{label} would open a new MAJOR line below {name}@{highest}; a new MAJOR line must "
                f"be above every existing version (use {next_major}, or a version of an existing "
                "line)",
                ref=label,
                needed=str(next_major),
            )
        return requested
    base, base_spec = line[-1]
    if requested <= base:
        raise VersionRefused(
            f"{label} is not above {name}@{base}, the highest {base.major}.x version; a new version "
            f"must be above every version of its MAJOR line (the next would be {base.bumped(Bump.PATCH)} "
            "or higher)",
            ref=label,
            needed=str(base.bumped(Bump.PATCH)),
        )
    change = classify(base_spec, new_spec)
    assert change is not None
    step = base.bump_to(requested)
    assert step is not None
    if step < change.bump:
        needed = next_major if change.bump is Bump.MAJOR else base.bumped(change.bump)
        raise _bump_too_small(label, needed, change, base, name)
    return requested


def _bump_too_small(label: str, needed: Version, change: Change, base: Version, name: str) -> VersionRefused:
    reason = f"{change.reason} since {name}@{base}, which needs a {change.bump.word} version"
    return BumpTooSmall(label, str(needed), reason)


# --- immutability --------------------------------------------------------------------------------


def freeze(value: Any) -> Any:
    """A read-only copy: mappings become MappingProxyType, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain JSON-ready values again: dicts and lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


def _compact(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None and v not in ([], ())}
