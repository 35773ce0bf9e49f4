"""Prompts for applications, without a database: run from a lockfile.

    import charter.prompts
    prompts = charter.prompts.from_lockfile("prompts.lock")   # written by `charter prompt lock production`
    summarize = prompts.get("summarize-ticket@production")
    text = summarize.render(ticket=ticket_text)
    call_model(summarize.model, text, **summarize.params)

`get` returns the same `PromptVersion` type as `charter.open().prompts.get(...)`.
"""

from __future__ import annotations

from charter.service.prompt_lock import Lockfile, from_lockfile, parse_lockfile
from charter.service.prompt_version import PromptVersion

__all__ = ["Lockfile", "PromptVersion", "from_lockfile", "parse_lockfile"]
