"""Assertions over outputs, one kind at a time, and the JSON Schema subset."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from charter.domain.assertions import check, failures, parse_assertions, schema_problem, validate_json


def _one(**fields: Any) -> Any:
    return parse_assertions([fields])[0]


@pytest.mark.parametrize(
    ("assertion", "passing", "failing"),
    [
        ({"kind": "equals", "value": "yes"}, "yes", "yes "),
        ({"kind": "equals", "value": "YES", "ignore_case": True}, "yes", "no"),
        ({"kind": "contains", "value": "Summary"}, "A Summary:", "a summary"),
        ({"kind": "contains", "value": "summary", "ignore_case": True}, "A SUMMARY", "nothing"),
        ({"kind": "not_contains", "value": "sorry"}, "fine", "I am sorry"),
        ({"kind": "regex", "value": r"^\d{3}-\d{4}$"}, "555-1234", "5551234"),
        ({"kind": "json"}, '{"a": 1}', "{a: 1}"),
        ({"kind": "max_length", "value": 5}, "12345", "123456"),
        ({"kind": "one_of", "values": ["positive", "negative"]}, " positive\n", "neutral"),
        ({"kind": "one_of", "values": ["Positive"], "ignore_case": True}, "POSITIVE", "neutral"),
        (
            {"kind": "json_schema", "schema": {"type": "object", "required": ["label"]}},
            '{"label": "x"}',
            '{"other": 1}',
        ),
    ],
)
def test_each_kind_passes_and_fails(assertion: dict[str, Any], passing: str, failing: str) -> None:
    parsed = _one(**assertion)
    assert check(parsed, passing, {}) is None
    assert check(parsed, failing, {}) is not None


def test_python_predicates_get_the_output_and_the_row() -> None:
    parsed = _one(kind="python", function="checks:polite")
    predicates = {
        "checks:polite": lambda output, row: row["lang"] == "en" and "please" in output,
    }
    assert check(parsed, "please", {"lang": "en"}, predicates) is None
    assert "returned False" in (check(parsed, "no", {"lang": "en"}, predicates) or "")
    raising = {"checks:polite": lambda output, row: 1 / 0}
    assert "raised ZeroDivisionError" in (check(parsed, "x", {}, raising) or "")
    vague = {"checks:polite": lambda output, row: "yes"}
    assert "expected True or False" in (check(parsed, "x", {}, vague) or "")


def test_every_failing_assertion_is_reported() -> None:
    tests = parse_assertions([{"kind": "contains", "value": "a"}, {"kind": "max_length", "value": 1}])
    found = failures(tests, "bbb", {})
    assert [f["assertion"] for f in found] == ['contains "a"', "max_length 1"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("contains", "must be a list"),
        ([{"value": "x"}], "with a `kind`"),
        ([{"kind": "smells_like"}], "kind 'smells_like'"),
        ([{"kind": "contains"}], "needs `value`"),
        ([{"kind": "contains", "value": "x", "case": True}], "unknown key"),
        ([{"kind": "regex", "value": "("}], "not a regular expression"),
        ([{"kind": "max_length", "value": -1}], "whole number"),
        ([{"kind": "one_of", "values": []}], "non-empty list"),
        ([{"kind": "python", "function": "no_colon"}], "module:function"),
        ([{"kind": "json_schema", "schema": {"$ref": "#/x"}}], "does not support"),
        ([{"kind": "json", "ignore_case": True}], "unknown key"),
    ],
)
def test_bad_assertions_say_what_is_accepted(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_assertions(raw)


SCHEMA = {
    "type": "object",
    "required": ["label", "score"],
    "additionalProperties": False,
    "properties": {
        "label": {"enum": ["good", "bad"]},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 3},
    },
}


@pytest.mark.parametrize(
    ("instance", "problem"),
    [
        ({"label": "good", "score": 0.5}, None),
        ({"label": "good", "score": 1, "tags": ["a"]}, None),
        ({"label": "meh", "score": 0.5}, "not one of"),
        ({"label": "good", "score": 2}, "maximum"),
        ({"label": "good"}, "required property 'score'"),
        ({"label": "good", "score": 0.1, "extra": 1}, "not allowed"),
        ({"label": "good", "score": 0.1, "tags": [""]}, "shorter than 1"),
        ({"label": "good", "score": 0.1, "tags": ["a", "b", "c", "d"]}, "more than 3"),
        ({"label": "good", "score": True}, "expected number"),
        ([], "expected object"),
    ],
)
def test_json_schema_subset(instance: Any, problem: str | None) -> None:
    found = validate_json(instance, SCHEMA)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_combinators() -> None:
    schema = {"anyOf": [{"type": "string"}, {"type": "integer"}], "not": {"const": 3}}
    assert validate_json("x", schema) is None and validate_json(4, schema) is None
    assert validate_json(3, schema) is not None and validate_json(1.5, schema) is not None
    assert validate_json(2, {"oneOf": [{"type": "integer"}, {"type": "number"}]}) is not None
    assert schema_problem({"type": "strng"}) is not None


@given(st.text())
def test_contains_and_not_contains_are_opposites(output: str) -> None:
    has = _one(kind="contains", value="x")
    lacks = _one(kind="not_contains", value="x")
    assert (check(has, output, {}) is None) != (check(lacks, output, {}) is None)
