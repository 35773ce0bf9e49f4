"""Policy documents: their sections, defaults and validation.

A policy document has up to six sections (`pins`, `contamination`, `environments`,
`validation`, `drift`, `tracks`). Applying a file replaces the sections it names; the rest keep
their current values. Flags on a command may tighten a policy minimum, never loosen it
(`tighten_minimum`, `tighten_maximum`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from charter.errors import InvalidSpec, PolicyViolation

SECTIONS = ("pins", "contamination", "environments", "validation", "drift", "tracks")

DEFAULTS: Mapping[str, Any] = {
    # Extra regular expressions a provider model string may match to count as pinned.
    "pins": {"allow": []},
    # Near-duplicate overlap between an eval set and training data that the gate tolerates.
    "contamination": {"max_near_duplicate_ratio": 0.01, "near_duplicate_threshold": 0.8},
    "environments": {"order": ["development", "staging", "production"]},
    "validation": {"min_pass_rate": 0.95, "min_samples": 50},
    # input_sample_rate: the share of transactions whose input features are recorded (for drift).
    "drift": {"psi_moderate": 0.1, "psi_significant": 0.25, "input_sample_rate": 0.1},
    "tracks": {},
}

_KEYS: Mapping[str, Mapping[str, type | tuple[type, ...]]] = {
    "pins": {"allow": list},
    "contamination": {"max_near_duplicate_ratio": (int, float), "near_duplicate_threshold": (int, float)},
    "environments": {"order": list},
    "validation": {"min_pass_rate": (int, float), "min_samples": int},
    "drift": {
        "psi_moderate": (int, float),
        "psi_significant": (int, float),
        "input_sample_rate": (int, float),
    },
}


def defaults() -> dict[str, Any]:
    return copy.deepcopy(dict(DEFAULTS))


def merge(current: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """The document after applying `update`: named sections replace the current ones (with the
    section's defaults filling keys the update leaves out)."""
    if not isinstance(update, Mapping) or not update:
        raise InvalidSpec(f"a policy file must be a mapping with one or more of: {', '.join(SECTIONS)}")
    unknown = sorted(set(update) - set(SECTIONS))
    if unknown:
        raise InvalidSpec(f"unknown policy section(s) {', '.join(unknown)}; accepted: {', '.join(SECTIONS)}")
    result = {**defaults(), **copy.deepcopy(dict(current))}
    for section, body in update.items():
        result[section] = validate_section(section, body)
    return result


def validate_section(section: str, body: Any) -> Any:
    if not isinstance(body, Mapping):
        raise InvalidSpec(f"policy section {section!r} must be a mapping")
    if section == "tracks":
        from charter.domain.tracks import validate_tracks_section

        return validate_tracks_section(body)
    accepted = _KEYS[section]
    unknown = sorted(set(body) - set(accepted))
    if unknown:
        raise InvalidSpec(
            f"policy section {section!r} has unknown key(s) {', '.join(unknown)}; accepted: "
            + ", ".join(accepted)
        )
    merged = {**DEFAULTS[section], **body}
    for key, kind in accepted.items():
        value = merged[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidSpec(f"policy {section}.{key} has the wrong type: {value!r}")
    if section == "pins":
        for pattern in merged["allow"]:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise InvalidSpec(
                    f"policy pins.allow pattern {pattern!r} is not a regular expression: {exc}"
                ) from None
    if section == "contamination":
        _fraction(section, "max_near_duplicate_ratio", merged)
        _fraction(section, "near_duplicate_threshold", merged)
    if section == "validation":
        _fraction(section, "min_pass_rate", merged)
        if merged["min_samples"] < 1:
            raise InvalidSpec("policy validation.min_samples must be at least 1")
    if section == "environments":
        order = merged["order"]
        if len(order) < 2 or len(set(order)) != len(order) or not all(isinstance(e, str) for e in order):
            raise InvalidSpec("policy environments.order must list two or more distinct environment names")
        if order[-1] != "production":
            raise InvalidSpec("policy environments.order must end with production")
    if section == "drift" and not 0 < merged["psi_moderate"] < merged["psi_significant"]:
        raise InvalidSpec("policy drift needs 0 < psi_moderate < psi_significant")
    if section == "drift":
        _fraction(section, "input_sample_rate", merged)
    return merged


def _fraction(section: str, key: str, body: Mapping[str, Any]) -> None:
    if not 0 <= body[key] <= 1:
        raise InvalidSpec(f"policy {section}.{key} must be between 0 and 1, not {body[key]}")


def tighten_minimum(name: str, policy_value: float, flag: float | None) -> float:
    """A flag may raise a policy minimum, never lower it."""
    if flag is None:
        return policy_value
    if flag < policy_value:
        raise PolicyViolation(
            f"{name} {flag} is below the policy minimum {policy_value}; flags may only tighten a "
            f"policy (use a value ≥ {policy_value}, or change the policy)",
            name=name,
        )
    return flag


def tighten_maximum(name: str, policy_value: float, flag: float | None) -> float:
    """A flag may lower a policy maximum, never raise it."""
    if flag is None:
        return policy_value
    if flag > policy_value:
        raise PolicyViolation(
            f"{name} {flag} is above the policy maximum {policy_value}; flags may only tighten a "
            f"policy (use a value ≤ {policy_value}, or change the policy)",
            name=name,
        )
    return flag
