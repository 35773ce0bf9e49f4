"""Prompt versions: their content, its hash, variables, and the environment rules.

A prompt version's *content* is what its hash covers: the template (or chat messages), the declared
variables, the pinned model, the inference parameters and the tests. Same content ⇒ same hash ⇒
same version. The name is the identity; description and tags are mutable metadata outside the hash.

Environments are ordered (development → staging → production by default, from the
`environments` policy). A version moves one step at a time: to enter an environment it must be the
version currently held by the one before it; the last environment additionally needs a passing
validation (checked by the service, which holds the evidence). Rollback walks back the
environment's promotions like a stack.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from charter.domain.assertions import Assertion, parse_assertions
from charter.domain.canonical import canonical_json
from charter.domain.refs import parse_model_ref
from charter.errors import (
    EnvironmentSkipped,
    InvalidInput,
    InvalidReference,
    NothingToRollBack,
    PromptVariablesInvalid,
)

VARIABLE_TYPES = ("string", "integer", "number", "boolean", "list", "object")
MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ContentError(ValueError):
    """A prompt document does not have the accepted shape (the caller names the file)."""


# --- variables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    default: Any = None
    has_default: bool = False

    @property
    def required(self) -> bool:
        return not self.has_default

    def as_document(self) -> dict[str, Any]:
        return {"type": self.type, "default": self.default} if self.has_default else {"type": self.type}


def type_matches(kind: str, value: Any) -> bool:
    """Does `value` have the declared variable type? (Booleans are not numbers.)"""
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list | tuple)
    if kind == "object":
        return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)
    return False


def parse_variables(raw: Any) -> tuple[Variable, ...]:
    """`{name: {type: T, default: D}}` or the shorthand `{name: T}`; sorted by name."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ContentError("`variables` must be a mapping of variable name to {type, default}")
    found: list[Variable] = []
    for name, given in raw.items():
        spec = {"type": given} if isinstance(given, str) else given
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            raise ContentError(
                f"variable name {name!r} is not an identifier (letters, digits and _, not starting "
                "with a digit)"
            )
        if not isinstance(spec, Mapping):
            raise ContentError(
                f"variable {name!r} must be a type name or a mapping with `type` and `default`"
            )
        unknown = sorted(set(spec) - {"type", "default"})
        if unknown:
            raise ContentError(
                f"variable {name!r} has unknown key(s) {', '.join(map(str, unknown))}; "
                "accepted: type, default"
            )
        kind = spec.get("type")
        if kind not in VARIABLE_TYPES:
            raise ContentError(f"variable {name!r} has type {kind!r}; accepted: {', '.join(VARIABLE_TYPES)}")
        has_default = "default" in spec
        default = spec.get("default")
        if has_default:
            if not type_matches(kind, default):
                raise ContentError(f"variable {name!r}: default {default!r} is not a {kind}")
            default = _json_value(default, f"variable {name!r} default")
        found.append(Variable(name, kind, default, has_default))
    return tuple(sorted(found, key=lambda v: v.name))


def coerce_text(variable: Variable, text: str) -> Any:
    """A value typed on a command line (`--var k=v`), converted to the variable's type."""
    kind = variable.type
    try:
        if kind == "string":
            return text
        if kind == "integer":
            return int(text)
        if kind == "number":
            try:
                return int(text)
            except ValueError:
                number = float(text)
            if not math.isfinite(number):
                raise ValueError(text)
            return number
        if kind == "boolean":
            lowered = text.strip().lower()
            if lowered in ("true", "yes", "1"):
                return True
            if lowered in ("false", "no", "0"):
                return False
            raise ValueError(text)
        value = json.loads(text)
        if not type_matches(kind, value):
            raise ValueError(text)
        return value
    except ValueError:
        raise PromptVariablesInvalid(
            f"variable {variable.name!r} is a {kind}; {text!r} is not one"
            + (" (give JSON)" if kind in ("list", "object") else "")
        ) from None


def coerce_sample_value(variable: Variable, value: Any) -> Any:
    """A dataset cell converted to the variable's type where that loses nothing (numbers read for a
    string variable, text such as `42` in a column a CSV reader left as text, JSON text for a list
    or object, an integral float for an integer); anything else is returned as is, for `bind` to
    refuse."""
    kind = variable.type
    if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind in ("integer", "number", "boolean") and isinstance(value, str):
        try:
            return coerce_text(variable, value)
        except PromptVariablesInvalid:
            return value
    if kind in ("list", "object") and isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return parsed if type_matches(kind, parsed) else value
    return value


def bind(variables: Sequence[Variable], given: Mapping[str, Any], *, ref: str) -> dict[str, Any]:
    """The values a render uses: the given ones plus defaults. Missing, undeclared or mistyped
    variables are refused, all of them named at once."""
    declared = {v.name: v for v in variables}
    extra = sorted(set(given) - set(declared))
    missing = sorted(v.name for v in variables if v.required and v.name not in given)
    mistyped = sorted(
        f"{name} (a {declared[name].type}, got {type(value).__name__})"
        for name, value in given.items()
        if name in declared and not type_matches(declared[name].type, value)
    )
    problems = []
    if missing:
        problems.append("missing: " + ", ".join(missing))
    if extra:
        problems.append("not declared: " + ", ".join(extra))
    if mistyped:
        problems.append("wrong type: " + ", ".join(mistyped))
    if problems:
        accepted = ", ".join(
            f"{v.name}: {v.type}" + ("" if v.required else f" = {v.default!r}") for v in variables
        )
        raise PromptVariablesInvalid(
            f"{ref}: " + "; ".join(problems) + f". It declares: {accepted or 'no variables'}",
            missing=missing,
            extra=extra,
        )
    values = {v.name: v.default for v in variables if v.has_default}
    values.update(given)
    return values


# --- content ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class PromptContent:
    """Everything the content hash covers."""

    template: str | None
    messages: tuple[Message, ...] | None
    variables: tuple[Variable, ...]
    model: str | None
    params: Mapping[str, Any]
    tests: tuple[Assertion, ...]

    def as_document(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.messages is not None:
            body["messages"] = [{"role": m.role, "content": m.content} for m in self.messages]
        else:
            body["template"] = self.template
        body["variables"] = {v.name: v.as_document() for v in self.variables}
        body["model"] = self.model
        body["params"] = dict(self.params)
        body["tests"] = [t.as_document() for t in self.tests]
        return body

    @property
    def content_hash(self) -> str:
        return content_hash(self.as_document())

    @property
    def texts(self) -> tuple[tuple[str, str], ...]:
        """Every template text with a label: `("template", …)` or `("messages[0].user", …)`."""
        if self.messages is not None:
            return tuple((f"messages[{i}] ({m.role})", m.content) for i, m in enumerate(self.messages))
        return (("template", self.template or ""),)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> PromptContent:
        """Read back a stored document (or a prompt file's fields, validated strictly)."""
        has_template, has_messages = "template" in document, "messages" in document
        if has_template == has_messages:
            raise ContentError("give exactly one of `template` (text) or `messages` (a chat message list)")
        template: str | None = None
        messages: tuple[Message, ...] | None = None
        if has_template:
            template = document["template"]
            if not isinstance(template, str) or not template.strip():
                raise ContentError("`template` must be non-empty text")
        else:
            messages = _messages(document["messages"])
        model = document.get("model")
        if model is not None:
            if not isinstance(model, str):
                raise ContentError("`model` must be a model reference such as support-llm@1.2.0")
            model = model.strip()
            try:
                parse_model_ref(model)
            except InvalidReference as exc:
                raise ContentError(exc.message) from None
        params = document.get("params") or {}
        if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
            raise ContentError("`params` must be a mapping such as {temperature: 0.2, max_tokens: 400}")
        try:
            tests = parse_assertions(document.get("tests"))
        except ValueError as exc:
            raise ContentError(str(exc)) from None
        return cls(
            template,
            messages,
            parse_variables(document.get("variables")),
            model,
            _json_value(dict(params), "`params`"),
            tests,
        )


def content_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON (RFC 8785) of a content document."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


def model_pin_problem(model: str | None) -> str | None:
    """Why a prompt's model reference is not pinned to one version, or None if it is."""
    if model is None:
        return None
    ref = parse_model_ref(model)
    if ref.version is None:
        shown = f"@{ref.alias}" if ref.alias else " (no version)"
        return (
            f"model {model!r} is not pinned: {ref.name}{shown} can change under the prompt; "
            f"name one version, for example {ref.name}@1.2.0"
        )
    return None


def _messages(raw: Any) -> tuple[Message, ...]:
    if not isinstance(raw, list) or not raw:
        raise ContentError("`messages` must be a non-empty list of {role, content}")
    found = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or set(item) != {"role", "content"}:
            raise ContentError(f"messages[{i}] must have exactly the keys role and content")
        role, content = item["role"], item["content"]
        if role not in MESSAGE_ROLES:
            raise ContentError(f"messages[{i}] has role {role!r}; accepted: {', '.join(MESSAGE_ROLES)}")
        if not isinstance(content, str):
            raise ContentError(f"messages[{i}].content must be text")
        found.append(Message(role, content))
    return tuple(found)


def _json_value(value: Any, where: str) -> Any:
    """The value as plain JSON (lists, not tuples); refuses what JSON cannot hold."""
    try:
        canonical = canonical_json(value)
    except ValueError as exc:
        raise ContentError(f"{where} is not plain data: {exc}") from None
    return json.loads(canonical)


# --- environments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvMove:
    """One move of an environment pointer: `promote` or `rollback`, by version number."""

    kind: str
    from_version: int | None
    to_version: int


def environment_index(order: Sequence[str], environment: str) -> int:
    if environment not in order:
        raise InvalidInput(
            f"{environment!r} is not an environment; the order is {' → '.join(order)} "
            "(the `environments` policy)",
            environment=environment,
        )
    return order.index(environment)


def check_promotion(
    order: Sequence[str], environment: str, name: str, version: int, holders: Mapping[str, int]
) -> None:
    """Refuse a move that skips an environment: to enter an environment other than the first, the
    version must be the one the previous environment holds now."""
    index = environment_index(order, environment)
    if index == 0:
        return
    previous = order[index - 1]
    held = holders.get(previous)
    if held != version:
        now = f"{name}-v{held}" if held is not None else "nothing"
        raise EnvironmentSkipped(
            f"{name}-v{version} cannot enter {environment}: it is not in {previous} ({previous} holds "
            f"{now}). Environments are passed in order, {' → '.join(order)}; promote it to {previous} "
            "first",
            environment=environment,
            previous=previous,
        )


def needs_validation(order: Sequence[str], environment: str) -> bool:
    """The last environment (production) needs a passing validation of the exact version."""
    return environment == order[-1]


def holder_stack(moves: Sequence[EnvMove]) -> list[int]:
    """The environment's holders as a stack: a promotion pushes, a rollback pops."""
    stack: list[int] = []
    for move in moves:
        if move.kind == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(move.to_version)
    return stack


def rollback_target(moves: Sequence[EnvMove], *, name: str, environment: str) -> int:
    """The version a rollback returns to: the holder before the current one's promotion."""
    stack = holder_stack(moves)
    if len(stack) < 2:
        now = f"{name}-v{stack[-1]}" if stack else "nothing"
        raise NothingToRollBack(
            f"{name} has no previous holder in {environment} to roll back to ({environment} holds {now} "
            "and nothing was promoted there before it); promote a version instead",
            environment=environment,
        )
    return stack[-2]
