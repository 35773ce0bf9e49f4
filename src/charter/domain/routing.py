"""Routing: which release serves a request, decided in-process from a cached routing table.

    bucket = xxh3_64(slot + "\\x1f" + salt + "\\x1f" + key) mod 10,000      (UTF-8 bytes)

A request goes to the candidate iff bucket < traffic × 100 (traffic in percent, two decimals).
The salt is fixed for the whole rollout, so a key routed to the candidate at 5 % (bucket < 500)
is still routed there at 20 % (bucket < 2,000) and 50 %: stages only ever add buckets. During a
shadow stage (traffic 0) every request is served by the baseline, and requests with
bucket < shadow_sample × 10,000 also name the candidate as a *shadow* release: the application
runs it beside the served one and records its metrics with arm `shadow`; its output is never
served. Requests without a key should be given a random bucket (`route_bucket`) by the caller.

`RoutingTable` is a value with a version number; it precomputes the hash prefix, the thresholds
and every possible `Decision`, so `route` is one hash, two comparisons and a tuple lookup. Whether
a decision is stale (the router could not refresh its table) is the caller's knowledge, passed in.
The hash is part of the rule, which is why this module (alone in `domain/`) uses `xxhash`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import xxhash

BUCKETS = 10_000
SEPARATOR = "\x1f"
_hash = xxhash.xxh3_64_intdigest


class Arm(enum.StrEnum):
    """The arm a transaction record belongs to."""

    BASELINE = "baseline"  # served by the slot's production release
    CANDIDATE = "candidate"  # served by the rollout's candidate release
    SHADOW = "shadow"  # the candidate's side run during shadow: logged, never served


def bucket(slot: str, salt: str, key: str) -> int:
    """The routing bucket, 0 … 9,999, of `key` in `slot` under `salt`."""
    return _hash(f"{slot}{SEPARATOR}{salt}{SEPARATOR}{key}".encode()) % BUCKETS


def candidate_buckets(traffic: float) -> int:
    """How many buckets (from 0 up) the candidate gets at `traffic` percent."""
    return round(traffic * 100)


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one request goes. `release` serves it; `shadow`, when set, is the candidate release to
    run beside it (log its output, never serve it)."""

    release: str
    arm: Arm
    shadow: str | None
    stage: str | None
    table_version: int
    stale: bool
    rollout: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "arm": self.arm.value,
            "shadow": self.shadow,
            "stage": self.stage,
            "table_version": self.table_version,
            "stale": self.stale,
            "rollout": self.rollout,
        }


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """A slot's routing at one moment: its production release and, during a rollout, the candidate
    with its traffic share (percent) or, in shadow, the share of requests mirrored to it.
    `version` increases with every change; decisions carry it into the transaction records."""

    slot: str
    version: int
    production: str
    candidate: str | None = None
    rollout: str | None = None
    stage: str | None = None
    traffic: float = 0.0
    shadow_sample: float = 0.0
    salt: str = ""
    _prefix: bytes = field(init=False, repr=False, compare=False)
    _candidate_below: int = field(init=False, repr=False, compare=False)
    _shadow_below: int = field(init=False, repr=False, compare=False)
    _decisions: tuple[tuple[Decision, Decision], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.traffic <= 100 or not 0 <= self.shadow_sample <= 1:
            raise ValueError("traffic is a percentage (0–100) and shadow_sample a share (0–1)")
        if self.candidate is None and (self.traffic or self.shadow_sample):
            raise ValueError("a routing table without a candidate cannot send it traffic or shadow runs")
        if self.traffic and self.shadow_sample:
            raise ValueError("shadow runs happen only in a shadow stage (traffic 0)")
        candidate = self.candidate or self.production

        def both(release: str, arm: Arm, shadow: str | None) -> tuple[Decision, Decision]:
            return (
                Decision(release, arm, shadow, self.stage, self.version, False, self.rollout),
                Decision(release, arm, shadow, self.stage, self.version, True, self.rollout),
            )

        set_ = object.__setattr__
        set_(self, "_prefix", f"{self.slot}{SEPARATOR}{self.salt}{SEPARATOR}".encode())
        set_(self, "_candidate_below", candidate_buckets(self.traffic))
        set_(self, "_shadow_below", round(self.shadow_sample * BUCKETS))
        set_(
            self,
            "_decisions",
            (
                both(self.production, Arm.BASELINE, None),
                both(self.production, Arm.BASELINE, candidate),
                both(candidate, Arm.CANDIDATE, None),
            ),
        )

    @classmethod
    def production_only(cls, slot: str, version: int, production: str) -> RoutingTable:
        """The table of a slot without an active rollout: every request to production."""
        return cls(slot, version, production)

    def decide(self, key: str, stale: bool = False) -> Decision:
        # decide_bucket, inlined: this is the hot path (one hash, two comparisons, a lookup)
        bucket = _hash(self._prefix + key.encode()) % BUCKETS
        if bucket < self._candidate_below:
            return self._decisions[2][stale]
        if bucket < self._shadow_below:
            return self._decisions[1][stale]
        return self._decisions[0][stale]

    def decide_bucket(self, bucket: int, stale: bool = False) -> Decision:
        if bucket < self._candidate_below:
            return self._decisions[2][stale]
        if bucket < self._shadow_below:
            return self._decisions[1][stale]
        return self._decisions[0][stale]

    def bucket(self, key: str) -> int:
        return _hash(self._prefix + key.encode()) % BUCKETS

    def explain(self, key: str) -> dict[str, Any]:
        """A decision with its arithmetic, for `charter route SLOT KEY`."""
        b = self.bucket(key)
        return {
            "slot": self.slot,
            "key": key,
            "bucket": b,
            "candidate_buckets": self._candidate_below,
            "shadow_buckets": self._shadow_below,
            "decision": self.decide_bucket(b).as_dict(),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "version": self.version,
            "production": self.production,
            "candidate": self.candidate,
            "rollout": self.rollout,
            "stage": self.stage,
            "traffic": self.traffic,
            "shadow_sample": self.shadow_sample,
            "salt": self.salt,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoutingTable:
        return cls(
            slot=data["slot"],
            version=int(data["version"]),
            production=data["production"],
            candidate=data.get("candidate"),
            rollout=data.get("rollout"),
            stage=data.get("stage"),
            traffic=float(data.get("traffic", 0.0)),
            shadow_sample=float(data.get("shadow_sample", 0.0)),
            salt=data.get("salt", ""),
        )


def route(table: RoutingTable, key: str, *, stale: bool = False) -> Decision:
    """Route the request identified by `key` (a user, session or conversation id)."""
    return table.decide(key, stale)


def route_bucket(table: RoutingTable, bucket: int, *, stale: bool = False) -> Decision:
    """Route a request without a key: the caller draws `bucket` uniformly from 0 … 9,999."""
    if not 0 <= bucket < BUCKETS:
        raise ValueError(f"a bucket is between 0 and {BUCKETS - 1}, not {bucket}")
    return table.decide_bucket(bucket, stale)
