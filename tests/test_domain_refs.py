"""Names, references and times as the interface contract defines them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from charter.domain.refs import check_name, parse_dataset_ref, parse_model_ref, parse_prompt_ref
from charter.domain.semver import Version
from charter.domain.times import parse_duration, parse_time
from charter.errors import InvalidName, InvalidReference


@pytest.mark.parametrize("name", ["support-llm", "a", "tickets.v2", "x_1", "0abc"])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Support", "-x", "a b", "summarize-v3", "a/b", "x" * 101])
def test_invalid_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidName, match="slugs"):
        check_name(name)


def test_model_references() -> None:
    assert parse_model_ref("m@1.2.3").version == Version(1, 2, 3)
    assert parse_model_ref("m@production").alias == "production"
    assert parse_model_ref("m") == parse_model_ref("m")
    assert parse_model_ref("m").version is None and parse_model_ref("m").alias is None


@pytest.mark.parametrize("ref", ["m@1.2", "m@01.2.3", "m@", "@1.0.0", "M@1.0.0", "m@1.0.0-rc1", "m@42"])
def test_bad_model_references_name_the_accepted_forms(ref: str) -> None:
    with pytest.raises(InvalidReference, match=r"NAME@MAJOR\.MINOR\.PATCH"):
        parse_model_ref(ref)


def test_dataset_and_prompt_references() -> None:
    assert parse_dataset_ref("tickets@4").version == 4
    assert parse_dataset_ref("tickets").version is None
    assert parse_prompt_ref("summarize-ticket-v3").version == 3
    assert parse_prompt_ref("summarize-ticket@3").version == 3
    assert parse_prompt_ref("summarize-ticket@staging").environment == "staging"
    assert parse_prompt_ref("summarize-ticket").name == "summarize-ticket"
    for bad in ("tickets@0", "tickets@x1", "tickets@-1"):
        with pytest.raises(InvalidReference):
            parse_dataset_ref(bad)


def test_times_without_a_zone_mean_utc() -> None:
    assert parse_time("2026-03-01T14:30") == datetime(2026, 3, 1, 14, 30, tzinfo=UTC)
    assert parse_time("2026-03-01T14:30:00+01:00") == datetime(2026, 3, 1, 13, 30, tzinfo=UTC)
    assert parse_time("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_duration("3d") == timedelta(days=3)
    with pytest.raises(Exception, match="ISO 8601"):
        parse_time("yesterday")
