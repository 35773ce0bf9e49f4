"""A deterministic, offline prompt runner: it answers with the prompt itself.

Use it to try the validation flow without a model or a network:

    charter prompt validate summarize-ticket-v1 --sample tickets@1 \
        --runner examples.runners.echo_runner:run
    charter prompt validate summarize-ticket-v1 --sample tickets@1 \
        --runner-cmd "python examples/runners/echo_runner.py"

The answer is the rendered prompt (for a chat prompt, the last user message), cut to
`params["max_tokens"]` words when that is set. Same input, same output, every time.

As a callable it follows charter's runner contract, `run(prompt, *, params, model, row) -> str`;
as a command it reads one JSON object `{"prompt", "params", "model", "row"}` on stdin and prints
the answer on stdout.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def run(
    prompt: str | list[dict[str, str]], *, params: dict[str, Any], model: str | None, row: dict[str, Any]
) -> str:
    """The prompt's text (last user message of a chat prompt), at most `max_tokens` words."""
    del model, row
    if isinstance(prompt, list):
        users = [m["content"] for m in prompt if m.get("role") == "user"]
        text = users[-1] if users else (prompt[-1]["content"] if prompt else "")
    else:
        text = prompt
    limit = params.get("max_tokens")
    if isinstance(limit, int) and limit > 0:
        words = text.split()
        if len(words) > limit:
            text = " ".join(words[:limit])
    return text.strip()


def main() -> None:
    request = json.load(sys.stdin)
    sys.stdout.write(
        run(
            request["prompt"],
            params=request.get("params") or {},
            model=request.get("model"),
            row=request.get("row") or {},
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
