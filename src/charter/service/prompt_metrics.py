"""Production metrics of prompt versions, as the deployment tracks record them.

Rollouts store the metrics they observe on the model and prompt versions they promote (DESIGN §1,
"Production records"): when a rollout reaches production, the candidate release's metrics over
the whole rollout (count, mean and standard deviation per arm and metric) are stored on each of
its prompt versions. `charter prompt diff` shows them beside each version's validation results.
None means "not recorded" (the version never reached production through a rollout) — never an
invented value.
"""

from __future__ import annotations

from typing import Any

from charter.storage.store import Tx


def production_metrics(tx: Tx, version_id: int) -> dict[str, Any] | None:
    """What rollouts observed for the prompt version `version_id` on its way to production: the
    latest observation and every one (oldest first, one per rollout), or None when none was recorded."""
    found = tx.rollouts.production_metrics(prompt_version_id=version_id)
    if not found:
        return None
    return {"latest": found[-1], "rollouts": found}
