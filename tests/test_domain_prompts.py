"""The prompt rules as pure functions: file format, content hash, variables, environments."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.domain import prompts as rules
from charter.domain.prompt_files import duplicate_names, prompt_from_mapping, split_front_matter
from charter.domain.prompts import ContentError, PromptContent, Variable, bind, coerce_text, content_hash
from charter.errors import EnvironmentSkipped, InvalidInput, NothingToRollBack, PromptVariablesInvalid

ORDER = ("development", "staging", "production")


def _file(**fields: Any) -> Any:
    base = {"name": "p", "template": "Hi {{ who }}", "variables": {"who": "string"}}
    return prompt_from_mapping({**base, **fields}, format="yaml", stem="p")


# --- the file format -----------------------------------------------------------------------------


def test_unknown_keys_are_refused_naming_them() -> None:
    with pytest.raises(ContentError, match=r"unknown key\(s\) temprature; accepted: name"):
        _file(temprature=0.2)


def test_exactly_one_of_template_and_messages() -> None:
    with pytest.raises(ContentError, match="exactly one of `template`"):
        prompt_from_mapping({"name": "p"}, format="yaml", stem="p")
    with pytest.raises(ContentError, match="exactly one"):
        _file(messages=[{"role": "user", "content": "x"}])


def test_messages_need_known_roles_and_exact_keys() -> None:
    doc = {"name": "p", "messages": [{"role": "wizard", "content": "x"}]}
    with pytest.raises(ContentError, match="role 'wizard'"):
        prompt_from_mapping(doc, format="yaml", stem="p")
    doc = {"name": "p", "messages": [{"role": "user", "content": "x", "name": "n"}]}
    with pytest.raises(ContentError, match="exactly the keys role and content"):
        prompt_from_mapping(doc, format="yaml", stem="p")


def test_variables_are_typed_and_defaults_checked() -> None:
    with pytest.raises(ContentError, match="type 'text'"):
        _file(variables={"who": "text"})
    with pytest.raises(ContentError, match="default 'five' is not a integer"):
        _file(variables={"n": {"type": "integer", "default": "five"}})
    with pytest.raises(ContentError, match="not an identifier"):
        _file(variables={"my-var": "string"})
    found = _file(variables={"who": "string", "n": {"type": "integer", "default": 3}}).content.variables
    assert found == (Variable("n", "integer", 3, True), Variable("who", "string"))


def test_the_name_defaults_to_the_file_name_and_must_be_a_slug() -> None:
    parsed = prompt_from_mapping({"template": "x"}, format="yaml", stem="from-file")
    assert parsed.name == "from-file" and parsed.name_matches_file
    with pytest.raises(ContentError, match="not valid"):
        _file(name="Bad Name")
    assert not _file(name="other").name_matches_file


def test_a_model_reference_must_parse_and_pinning_is_judged_separately() -> None:
    with pytest.raises(ContentError, match="not a valid reference"):
        _file(model="m@@1")
    assert rules.model_pin_problem("m@1.2.0") is None
    assert rules.model_pin_problem(None) is None
    assert "not pinned" in (rules.model_pin_problem("m@production") or "")
    assert "not pinned" in (rules.model_pin_problem("m") or "")


def test_markdown_front_matter() -> None:
    front, body = split_front_matter("---\nname: x\n---\nHello\n\nthere\n")
    assert front == "name: x\n" and body == "Hello\n\nthere\n"
    with pytest.raises(ContentError, match="must start with YAML front matter"):
        split_front_matter("Hello")
    with pytest.raises(ContentError, match="not closed"):
        split_front_matter("---\nname: x\nHello")
    with pytest.raises(ContentError, match="does not belong in the front matter"):
        prompt_from_mapping({"template": "x"}, format="md", stem="p", body="Hello")


def test_duplicate_names_name_every_file() -> None:
    problems = duplicate_names([("a.prompt.yaml", "x"), ("b.prompt.md", "x"), ("c.prompt.yaml", "y")])
    assert [p for p, _ in problems] == ["a.prompt.yaml", "b.prompt.md"]
    assert "also used by b.prompt.md" in problems[0][1]


# --- the content hash ------------------------------------------------------------------------------


def test_the_hash_covers_content_not_metadata() -> None:
    base = _file()
    assert _file(description="new words", tags=["a"]).content.content_hash == base.content.content_hash
    for change in (
        {"template": "Hello {{ who }}"},
        {"variables": {"who": {"type": "string", "default": "you"}}},
        {"model": "m@1.0.0"},
        {"params": {"temperature": 0.1}},
        {"tests": [{"kind": "contains", "value": "Hi"}]},
    ):
        assert _file(**change).content.content_hash != base.content.content_hash, change


def test_equivalent_spellings_hash_the_same() -> None:
    short = _file(
        variables={"who": "string"}, tests=[{"kind": "contains", "value": "x", "ignore_case": False}]
    )
    full = _file(variables={"who": {"type": "string"}}, tests=[{"kind": "contains", "value": "x"}])
    assert short.content.content_hash == full.content.content_hash


@given(
    template=st.text(min_size=1).filter(lambda s: s.strip()),
    params=st.dictionaries(st.text(min_size=1), st.integers(-1000, 1000) | st.booleans() | st.text()),
)
def test_a_document_round_trips_to_the_same_hash(template: str, params: dict[str, Any]) -> None:
    content = PromptContent.from_document({"template": template, "params": params})
    again = PromptContent.from_document(content.as_document())
    assert again == content and content_hash(again.as_document()) == content.content_hash


# --- variables -----------------------------------------------------------------------------------


def test_bind_names_every_problem_at_once() -> None:
    variables = (Variable("n", "integer"), Variable("who", "string"), Variable("x", "number", 1.5, True))
    with pytest.raises(PromptVariablesInvalid) as caught:
        bind(variables, {"n": "three", "extra": 1}, ref="p-v1")
    message = caught.value.message
    assert "missing: who" in message and "not declared: extra" in message and "wrong type: n" in message
    assert bind(variables, {"n": 2, "who": "a"}, ref="p-v1") == {"n": 2, "who": "a", "x": 1.5}


def test_booleans_are_not_numbers() -> None:
    with pytest.raises(PromptVariablesInvalid):
        bind((Variable("n", "integer"),), {"n": True}, ref="p-v1")


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("string", "007", "007"),
        ("integer", "7", 7),
        ("number", "2.5", 2.5),
        ("number", "3", 3),
        ("boolean", "yes", True),
        ("boolean", "false", False),
        ("list", "[1, 2]", [1, 2]),
        ("object", '{"a": 1}', {"a": 1}),
    ],
)
def test_command_line_values_take_the_declared_type(kind: str, text: str, value: Any) -> None:
    assert coerce_text(Variable("v", kind), text) == value


@pytest.mark.parametrize(
    ("kind", "text"), [("integer", "2.5"), ("boolean", "maybe"), ("list", "{}"), ("number", "nan")]
)
def test_values_that_do_not_fit_are_refused(kind: str, text: str) -> None:
    with pytest.raises(PromptVariablesInvalid, match=f"is a {kind}"):
        coerce_text(Variable("v", kind), text)


# --- environments ----------------------------------------------------------------------------------


def test_promotion_follows_the_order() -> None:
    rules.check_promotion(ORDER, "development", "p", 3, {})
    rules.check_promotion(ORDER, "staging", "p", 3, {"development": 3})
    with pytest.raises(EnvironmentSkipped, match="it is not in staging"):
        rules.check_promotion(ORDER, "production", "p", 3, {"development": 3})
    with pytest.raises(EnvironmentSkipped, match="staging holds p-v2"):
        rules.check_promotion(ORDER, "production", "p", 3, {"staging": 2})
    with pytest.raises(InvalidInput, match="not an environment"):
        rules.check_promotion(ORDER, "prod", "p", 3, {})
    assert rules.needs_validation(ORDER, "production") and not rules.needs_validation(ORDER, "staging")


def _moves(kinds: list[tuple[str, int]]) -> list[rules.EnvMove]:
    return [rules.EnvMove(kind, None, to) for kind, to in kinds]


def test_rollback_walks_back_the_promotions() -> None:
    moves = _moves([("promote", 1), ("promote", 2), ("promote", 3)])
    assert rules.rollback_target(moves, name="p", environment="production") == 2
    moves.append(rules.EnvMove("rollback", 3, 2))
    assert rules.rollback_target(moves, name="p", environment="production") == 1
    moves.append(rules.EnvMove("rollback", 2, 1))
    with pytest.raises(NothingToRollBack, match="production holds p-v1"):
        rules.rollback_target(moves, name="p", environment="production")
    with pytest.raises(NothingToRollBack, match="holds nothing"):
        rules.rollback_target([], name="p", environment="production")


@settings(max_examples=200)
@given(
    st.lists(
        st.one_of(st.tuples(st.just("promote"), st.integers(1, 5)), st.just(("rollback", 0))), max_size=30
    )
)
def test_rollback_returns_to_the_holder_before_the_current_promotion(steps: list[tuple[str, int]]) -> None:
    """Model: a stack of holders. Rollback pops; its target is the holder the pointer had before."""
    history: list[rules.EnvMove] = []
    holders: list[int] = []
    for kind, version in steps:
        if kind == "promote":
            if holders and holders[-1] == version:
                continue  # promoting the holder again is a no-op, not a move
            history.append(rules.EnvMove("promote", holders[-1] if holders else None, version))
            holders.append(version)
        elif len(holders) >= 2:
            target = rules.rollback_target(history, name="p", environment="production")
            assert target == holders[-2]
            history.append(rules.EnvMove("rollback", holders[-1], target))
            holders.pop()
        else:
            with pytest.raises(NothingToRollBack):
                rules.rollback_target(history, name="p", environment="production")
        assert rules.holder_stack(history) == holders
