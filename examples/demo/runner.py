"""The demo's prompt runner: a deterministic stand-in for the model, offline and instant.

It follows charter's runner contract, `run(prompt, *, params, model, row) -> str`, and answers the
way a decent model would for the demo's prompts: the right label for a classification (wrong on
about one ticket in thirty, as real models are), a greeting reply, a summary, JSON for an
extraction. Anything else is echoed back, like `examples/runners/echo_runner.py`.

    charter prompt validate classify-ticket-v1 --sample tickets-sample@1 \
        --runner examples.demo.runner:run
"""

from __future__ import annotations

import json
import re
from typing import Any

_OPTIONS = re.compile(r"Answer with one of: ([^.\n]+)\.")


def run(
    prompt: str | list[dict[str, str]], *, params: dict[str, Any], model: str | None, row: dict[str, Any]
) -> str:
    del params, model
    text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
    ticket_id = int(row.get("ticket_id") or 0)
    options = _OPTIONS.search(text)
    if options:
        choices = [c.strip() for c in options.group(1).split(",")]
        if ticket_id % 29 == 0:
            return "unsure"  # a miss: the prompt's tests catch it
        for key in ("label", "language", "priority"):
            if row.get(key) in choices:
                return str(row[key])
        return choices[ticket_id % len(choices)]
    if "first reply" in text:
        name = row.get("customer") or "there"
        return (
            f"Hi {name}, thank you for letting us know. We are looking into it now and will update "
            "this ticket as soon as we know more."
        )
    if text.startswith("Summarise"):
        words = str(row.get("ticket", "")).split()[:40]
        return "Summary: " + " ".join(words)
    if '"orders"' in text:
        ticket = str(row.get("ticket", ""))
        return json.dumps(
            {
                "orders": re.findall(r"SO-\d+", ticket),
                "error_codes": re.findall(r"E\d{4}-\w+", ticket),
                "products": [],
            }
        )
    return text.strip()
