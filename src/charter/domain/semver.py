"""Semantic versions and bumps."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

_VERSION = re.compile(r"^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$")


class Bump(enum.IntEnum):
    PATCH = 1
    MINOR = 2
    MAJOR = 3

    @property
    def word(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        """`MAJOR.MINOR.PATCH`, no leading zeros, no pre-release tags; ValueError otherwise."""
        match = _VERSION.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a version; expected MAJOR.MINOR.PATCH such as 1.4.0")
        return cls(int(match[1]), int(match[2]), int(match[3]))

    @classmethod
    def is_version(cls, text: str) -> bool:
        return bool(_VERSION.match(text))

    def bumped(self, bump: Bump) -> Version:
        """The smallest version that is `bump` above this one."""
        if bump is Bump.MAJOR:
            return Version(self.major + 1, 0, 0)
        if bump is Bump.MINOR:
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)

    def bump_to(self, other: Version) -> Bump | None:
        """The size of the step from this version up to `other`; None if `other` is not above."""
        if other <= self:
            return None
        if other.major != self.major:
            return Bump.MAJOR
        if other.minor != self.minor:
            return Bump.MINOR
        return Bump.PATCH

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"
