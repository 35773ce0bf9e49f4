"""Validation evidence: the thresholds in force, and whether a version's evidence lets it into production."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charter.domain.policy import tighten_minimum
from charter.errors import InvalidInput, PolicyViolation, ValidationMissing
from charter.service.policies import current_policy
from charter.service.prompt_results import Validation
from charter.service.prompt_version import PromptVersion
from charter.storage.prompts import PromptVersionRecord
from charter.storage.store import Tx


def thresholds(tx: Tx, min_pass_rate: float | None, min_samples: int | None) -> tuple[float, int]:
    policy = current_policy(tx).section("validation")
    rate = tighten_minimum("min_pass_rate", float(policy["min_pass_rate"]), min_pass_rate)
    if not 0 <= rate <= 1:
        raise InvalidInput(f"min_pass_rate is a fraction between 0 and 1, not {rate}")
    samples = tighten_minimum("min_samples", int(policy["min_samples"]), min_samples)
    return rate, int(samples)


def passing_validation(tx: Tx, record: PromptVersionRecord, policy: Mapping[str, Any]) -> Validation:
    """The version's latest validation, if it passes the policy in force now; else refused."""
    latest = tx.prompts.latest_validation(record.id)
    how = (
        f"run `charter prompt validate {record.ref} --sample DATASET@N --runner module:function` "
        f"(policy: pass rate ≥ {policy['min_pass_rate']:.0%}, ≥ {policy['min_samples']} rows)"
    )
    if latest is None:
        raise ValidationMissing(
            f"{record.ref} cannot enter production: it has no staging validation; {how}", ref=record.ref
        )
    found = Validation.of(latest)
    problems = []
    if found.pass_rate < policy["min_pass_rate"]:
        problems.append(f"pass rate {found.pass_rate:.1%} < {policy['min_pass_rate']:.0%}")
    if found.sample_size < policy["min_samples"]:
        problems.append(f"{found.sample_size} rows < {policy['min_samples']}")
    if not found.passed and not problems:
        problems.append(
            f"it did not pass its own thresholds ({found.min_pass_rate:.0%}, {found.min_samples} rows)"
        )
    if problems:
        raise ValidationMissing(
            f"{record.ref} cannot enter production: its latest validation (on {found.sample}, "
            f"{found.created_at.isoformat(timespec='seconds')}) does not pass: {'; '.join(problems)}; {how}",
            ref=record.ref,
        )
    return found


def require_columns(sample: str, columns: list[str], version: PromptVersion) -> None:
    from charter.service.prompt_validation import missing_columns  # the runners: not for every read

    missing = missing_columns(columns, version.variables)
    if missing:
        raise InvalidInput(
            f"sample {sample} has no column for variable(s) {', '.join(missing)} of {version.ref}; "
            f"its columns are {', '.join(columns) or 'none'}. Columns map to variables by name"
        )


def require_samples(sample: str, rows: int, needed: int) -> None:
    if rows < needed:
        raise PolicyViolation(
            f"sample {sample} has {rows} rows but a validation needs at least {needed} (the `validation` "
            "policy's min_samples, or --min-samples); use a larger sample",
            rows=rows,
            needed=needed,
        )
