"""What a staging validation will run, decided before anything runs.

`plan_validation` reads the store (authorised for running validations): the prompt version, the
sample dataset version and the thresholds in force, and refuses at once what cannot pass — a
version without tests, a sample without a column per variable, a sample smaller than the minimum.
`sample_rows` then checks the sample out and reads its rows. The embedded `prompts.validate`
runs both here; a remote client gets the plan from the server, checks the sample out and runs
the user's runner on its own side, and sends the run to be recorded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.domain.refs import parse_dataset_ref, parse_prompt_ref
from charter.domain.roles import Action
from charter.errors import Refused
from charter.service.access import authorize
from charter.service.dataset_results import DatasetVersion
from charter.service.prompt_evidence import require_columns, require_samples, thresholds
from charter.service.prompt_validation import read_sample
from charter.service.prompt_version import PromptVersion

if TYPE_CHECKING:
    from charter.service.registry import Registry


@dataclass(frozen=True)
class ValidationPlan:
    version: PromptVersion
    sample: DatasetVersion
    min_pass_rate: float  # the thresholds in force (policy, tightened by the command's own)
    min_samples: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.as_dict(),
            "sample": self.sample.as_dict(),
            "min_pass_rate": self.min_pass_rate,
            "min_samples": self.min_samples,
        }


def plan_validation(
    registry: Registry, ref: str, sample: str, min_pass_rate: float | None, min_samples: int | None
) -> ValidationPlan:
    from charter.service.prompts import resolve_version, version_view

    parsed, sample_ref = parse_prompt_ref(ref), parse_dataset_ref(sample)
    with registry.store.read() as tx:
        authorize(tx, registry.actor, Action.VALIDATE_PROMPT)
        record = resolve_version(tx, parsed)
        needed_rate, needed_samples = thresholds(tx, min_pass_rate, min_samples)
        dataset = DatasetVersion.of(tx.datasets.get_version(sample_ref))
    version = version_view(record)
    if not version.tests:
        raise Refused(
            f"{version.ref} has no tests, so a validation would prove nothing; add assertions under "
            "`tests:` in its prompt file and sync it",
            ref=version.ref,
        )
    if dataset.schema is not None:
        require_columns(dataset.ref, [c["name"] for c in dataset.schema], version)
    if dataset.row_count is not None:
        require_samples(dataset.ref, dataset.row_count, needed_samples)
    return ValidationPlan(version, dataset, needed_rate, needed_samples)


def sample_rows(plan: ValidationPlan, checkout: Callable[[str, Path], Any]) -> list[dict[str, Any]]:
    """The sample's rows, read from a temporary checkout made by `checkout(ref, folder)`."""
    with tempfile.TemporaryDirectory(prefix="charter-sample-") as folder:
        target = Path(folder) / "sample"
        checkout(plan.sample.ref, target)
        rows = read_sample(target, plan.version.variables)
    if plan.sample.schema is None:
        require_columns(plan.sample.ref, sorted({k for row in rows for k in row}), plan.version)
    require_samples(plan.sample.ref, len(rows), plan.min_samples)
    return rows
