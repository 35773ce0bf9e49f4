"""A validation run as the prompt service's signatures name it: the runner's type, the defaults,
and what a run found before it is recorded.

Light on purpose: `PromptService.validate` and `record_validation` take these types, the server
reads them from those signatures, and every prompt command imports the service; the runners and
the row machinery that need subprocesses and threads stay in `charter.service.prompt_validation`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CONCURRENCY = 8

RunnerFunction = Callable[..., Any]


@dataclass(frozen=True)
class ValidationRun:
    """What running a validation found, before it is recorded."""

    sample_size: int
    passed_count: int
    failures: tuple[dict[str, Any], ...]  # every failed row, in row order
    duration_s: float
    runner: dict[str, Any]

    @property
    def pass_rate(self) -> float:
        return self.passed_count / self.sample_size if self.sample_size else 0.0
