"""Prompt tests: assertions over a model's output, and the rules that apply them.

A prompt file lists its tests as mappings with a `kind`:

| kind | keys | passes when the output … |
|---|---|---|
| `equals` | `value`, `ignore_case` | is exactly `value` |
| `contains` | `value`, `ignore_case` | contains `value` |
| `not_contains` | `value`, `ignore_case` | does not contain `value` |
| `regex` | `value` | matches the regular expression somewhere (`re.search`) |
| `json` | — | parses as JSON |
| `json_schema` | `schema` | parses as JSON and satisfies the schema (a JSON Schema subset) |
| `max_length` | `value` | has at most `value` characters |
| `one_of` | `values`, `ignore_case` | is one of `values` (surrounding white space ignored) |
| `python` | `function` | makes the predicate `module:function(output, row)` return True |

Everything here is pure except `python`, whose predicate the caller resolves (an import).
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Predicate = Callable[[str, Mapping[str, Any]], Any]

# kind → (the key holding its argument, or None; whether it takes ignore_case)
KINDS: Mapping[str, tuple[str | None, bool]] = {
    "equals": ("value", True),
    "contains": ("value", True),
    "not_contains": ("value", True),
    "regex": ("value", False),
    "json": (None, False),
    "json_schema": ("schema", False),
    "max_length": ("value", False),
    "one_of": ("values", True),
    "python": ("function", False),
}
_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Assertion:
    kind: str
    argument: Any = None  # the value, values, schema or function, as the kind needs
    ignore_case: bool = False

    def as_document(self) -> dict[str, Any]:
        key, _ = KINDS[self.kind]
        body: dict[str, Any] = {"kind": self.kind}
        if key is not None:
            body[key] = self.argument
        if self.ignore_case:
            body["ignore_case"] = True
        return body

    def describe(self) -> str:
        key, _ = KINDS[self.kind]
        if key is None:
            return self.kind
        shown = json.dumps(self.argument, ensure_ascii=False)
        if len(shown) > 60:
            shown = shown[:57] + "…"
        return f"{self.kind} {shown}" + (" (ignoring case)" if self.ignore_case else "")


def parse_assertions(raw: Any) -> tuple[Assertion, ...]:
    """The `tests` list of a prompt file; ValueError names the first bad entry."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError("`tests` must be a list of assertions such as {kind: contains, value: 'Summary'}")
    return tuple(_parse_one(i, item) for i, item in enumerate(raw))


def _parse_one(index: int, item: Any) -> Assertion:
    where = f"tests[{index}]"
    if not isinstance(item, Mapping) or "kind" not in item:
        raise ValueError(f"{where} must be a mapping with a `kind` ({', '.join(KINDS)})")
    kind = item["kind"]
    if kind not in KINDS:
        raise ValueError(f"{where} has kind {kind!r}; accepted: {', '.join(KINDS)}")
    key, takes_case = KINDS[kind]
    accepted = {"kind"} | ({key} if key else set()) | ({"ignore_case"} if takes_case else set())
    unknown = sorted(map(str, set(item) - accepted))
    if unknown:
        raise ValueError(
            f"{where} ({kind}) has unknown key(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted))}"
        )
    if key is not None and key not in item:
        raise ValueError(f"{where} ({kind}) needs `{key}`")
    argument: Any = item.get(key) if key is not None else None
    ignore_case = item.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise ValueError(f"{where}: ignore_case must be true or false")
    _check_argument(where, kind, argument)
    if kind == "json_schema":
        argument = json.loads(json.dumps(argument))
    if kind == "one_of":
        argument = list(argument)
    return Assertion(kind, argument, ignore_case)


def _check_argument(where: str, kind: str, argument: Any) -> None:
    if kind in ("equals", "contains", "not_contains") and not isinstance(argument, str):
        raise ValueError(f"{where} ({kind}): value must be text")
    if kind == "regex":
        if not isinstance(argument, str):
            raise ValueError(f"{where} (regex): value must be a regular expression")
        try:
            re.compile(argument)
        except re.error as exc:
            raise ValueError(f"{where} (regex): {argument!r} is not a regular expression: {exc}") from None
    if kind == "max_length" and (not isinstance(argument, int) or isinstance(argument, bool) or argument < 0):
        raise ValueError(f"{where} (max_length): value must be a whole number ≥ 0")
    if kind == "one_of" and (
        not isinstance(argument, list) or not argument or not all(isinstance(v, str) for v in argument)
    ):
        raise ValueError(f"{where} (one_of): values must be a non-empty list of texts")
    if kind == "python" and (not isinstance(argument, str) or not _FUNCTION.match(argument)):
        raise ValueError(f"{where} (python): function must be written module:function (checks:is_polite)")
    if kind == "json_schema":
        problem = schema_problem(argument)
        if problem:
            raise ValueError(f"{where} (json_schema): {problem}")


# --- applying ----------------------------------------------------------------------------------


def check(
    assertion: Assertion,
    output: str,
    row: Mapping[str, Any],
    predicates: Mapping[str, Predicate] | None = None,
) -> str | None:
    """Why `output` fails the assertion, or None when it passes."""
    kind, arg = assertion.kind, assertion.argument
    text, expected = output, arg
    if assertion.ignore_case and isinstance(arg, str):
        text, expected = output.casefold(), arg.casefold()
    if kind == "equals":
        return None if text == expected else f"output is not equal to {_short(arg)}"
    if kind == "contains":
        return None if expected in text else f"output does not contain {_short(arg)}"
    if kind == "not_contains":
        return None if expected not in text else f"output contains {_short(arg)}"
    if kind == "regex":
        return None if re.search(arg, output) else f"output does not match /{arg}/"
    if kind == "max_length":
        return None if len(output) <= arg else f"output has {len(output)} characters, more than {arg}"
    if kind == "one_of":
        options = [v.casefold() for v in arg] if assertion.ignore_case else list(arg)
        value = output.strip().casefold() if assertion.ignore_case else output.strip()
        return None if value in options else f"output {_short(output.strip())} is not one of {arg}"
    if kind in ("json", "json_schema"):
        try:
            document = json.loads(output)
        except ValueError as exc:
            return f"output is not JSON: {exc}"
        if kind == "json":
            return None
        problem = validate_json(document, arg)
        return None if problem is None else f"output does not satisfy the schema: {problem}"
    if kind == "python":
        predicate = (predicates or {}).get(arg)
        if predicate is None:
            return f"predicate {arg} is not loaded"
        try:
            verdict = predicate(output, row)
        except Exception as exc:
            return f"predicate {arg} raised {type(exc).__name__}: {exc}"
        if verdict is True:
            return None
        if verdict is False:
            return f"predicate {arg} returned False"
        return f"predicate {arg} returned {verdict!r}, expected True or False"
    raise ValueError(f"unknown assertion kind {kind!r}")


def failures(
    assertions: Sequence[Assertion],
    output: str,
    row: Mapping[str, Any],
    predicates: Mapping[str, Predicate] | None = None,
) -> list[dict[str, str]]:
    """Every assertion the output fails, each with its reason (all are evaluated)."""
    found = []
    for assertion in assertions:
        reason = check(assertion, output, row, predicates)
        if reason is not None:
            found.append({"assertion": assertion.describe(), "reason": reason})
    return found


def _short(value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=False)
    return shown if len(shown) <= 80 else shown[:77] + '…"'


# --- a JSON Schema subset ------------------------------------------------------------------------

_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
_ANNOTATIONS = frozenset({"title", "description", "$schema", "$id", "$comment", "default", "examples"})
_KEYWORDS = frozenset(
    {
        "type", "enum", "const", "properties", "required", "additionalProperties", "items",
        "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "minimum",
        "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf", "oneOf", "allOf", "not",
    }
)  # fmt: skip


def schema_problem(schema: Any, path: str = "schema") -> str | None:
    """Why `schema` is outside the supported JSON Schema subset, or None."""
    if isinstance(schema, bool):
        return None
    if not isinstance(schema, Mapping):
        return f"{path} must be a mapping"
    unknown = sorted(set(schema) - _KEYWORDS - _ANNOTATIONS)
    if unknown:
        return (
            f"{path} uses {', '.join(unknown)}, which charter does not support; supported keywords: "
            + ", ".join(sorted(_KEYWORDS))
        )
    kinds = schema.get("type")
    for kind in [kinds] if isinstance(kinds, str) else kinds or []:
        if kind not in _TYPES:
            return f"{path}.type {kind!r} is not one of {', '.join(_TYPES)}"
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except (re.error, TypeError):
            return f"{path}.pattern is not a regular expression"
    for key in ("properties",):
        for name, sub in (schema.get(key) or {}).items():
            problem = schema_problem(sub, f"{path}.{key}.{name}")
            if problem:
                return problem
    for key in ("items", "not", "additionalProperties"):
        if key in schema and not isinstance(schema[key], bool):
            problem = schema_problem(schema[key], f"{path}.{key}")
            if problem:
                return problem
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key) or []):
            problem = schema_problem(sub, f"{path}.{key}[{i}]")
            if problem:
                return problem
    return None


def validate_json(instance: Any, schema: Any, path: str = "$") -> str | None:
    """The first way `instance` breaks `schema`, or None."""
    if schema is True:
        return None
    if schema is False:
        return f"{path} is not allowed"
    kinds = schema.get("type")
    if kinds is not None:
        allowed = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_is_type(instance, k) for k in allowed):
            return f"{path} is {_type_name(instance)}, expected {' or '.join(allowed)}"
    if "enum" in schema and not any(_same(instance, v) for v in schema["enum"]):
        return f"{path} is not one of {schema['enum']}"
    if "const" in schema and not _same(instance, schema["const"]):
        return f"{path} is not {schema['const']!r}"
    problem = _check_string(instance, schema, path) or _check_number(instance, schema, path)
    problem = problem or _check_array(instance, schema, path) or _check_object(instance, schema, path)
    if problem:
        return problem
    for sub in schema.get("allOf", []):
        problem = validate_json(instance, sub, path)
        if problem:
            return problem
    if "anyOf" in schema and all(validate_json(instance, s, path) for s in schema["anyOf"]):
        return f"{path} matches none of anyOf"
    if "oneOf" in schema:
        matching = sum(1 for s in schema["oneOf"] if validate_json(instance, s, path) is None)
        if matching != 1:
            return f"{path} matches {matching} of oneOf, expected exactly 1"
    if "not" in schema and validate_json(instance, schema["not"], path) is None:
        return f"{path} matches a schema it must not"
    return None


def _check_string(instance: Any, schema: Mapping[str, Any], path: str) -> str | None:
    if not isinstance(instance, str):
        return None
    if "minLength" in schema and len(instance) < schema["minLength"]:
        return f"{path} is shorter than {schema['minLength']}"
    if "maxLength" in schema and len(instance) > schema["maxLength"]:
        return f"{path} is longer than {schema['maxLength']}"
    if "pattern" in schema and not re.search(schema["pattern"], instance):
        return f"{path} does not match /{schema['pattern']}/"
    return None


def _check_number(instance: Any, schema: Mapping[str, Any], path: str) -> str | None:
    if not _is_type(instance, "number"):
        return None
    bounds: tuple[tuple[str, Callable[[Any, Any], bool], str], ...] = (
        ("minimum", operator.ge, "<"),
        ("maximum", operator.le, ">"),
        ("exclusiveMinimum", operator.gt, "≤"),
        ("exclusiveMaximum", operator.lt, "≥"),
    )
    for key, ok, sign in bounds:
        if key in schema and not ok(instance, schema[key]):
            return f"{path} = {instance} {sign} {schema[key]} ({key})"
    return None


def _check_array(instance: Any, schema: Mapping[str, Any], path: str) -> str | None:
    if not isinstance(instance, list):
        return None
    if "minItems" in schema and len(instance) < schema["minItems"]:
        return f"{path} has fewer than {schema['minItems']} items"
    if "maxItems" in schema and len(instance) > schema["maxItems"]:
        return f"{path} has more than {schema['maxItems']} items"
    if schema.get("uniqueItems"):
        seen = [json.dumps(v, sort_keys=True) for v in instance]
        if len(set(seen)) != len(seen):
            return f"{path} has duplicate items"
    if "items" in schema:
        for i, item in enumerate(instance):
            problem = validate_json(item, schema["items"], f"{path}[{i}]")
            if problem:
                return problem
    return None


def _check_object(instance: Any, schema: Mapping[str, Any], path: str) -> str | None:
    if not isinstance(instance, dict):
        return None
    for name in schema.get("required", []):
        if name not in instance:
            return f"{path} lacks required property {name!r}"
    properties = schema.get("properties", {})
    for name, value in instance.items():
        if name in properties:
            problem = validate_json(value, properties[name], f"{path}.{name}")
        elif "additionalProperties" in schema:
            problem = validate_json(value, schema["additionalProperties"], f"{path}.{name}")
        else:
            problem = None
        if problem:
            return problem
    return None


def _is_type(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and math.isfinite(value) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def _type_name(value: Any) -> str:
    for kind in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, kind):
            return "an " + kind if kind[0] in "aeiou" else "a " + kind
    return type(value).__name__


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)
