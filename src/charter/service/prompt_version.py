"""What `reg.prompts.get(...)` returns: one prompt version, ready to render.

The same type comes from the registry, from the SDK's cache (with `fallback=True` when the store
was unreachable and the last known version stood in) and from a lockfile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from charter.domain.assertions import Assertion
from charter.domain.prompts import Message, PromptContent, Variable, bind
from charter.service.prompt_templates import CompiledPrompt, Rendered


@dataclass(frozen=True)
class PromptVersion:
    name: str
    version: int
    content: PromptContent
    content_hash: str
    description: str = ""
    tags: tuple[str, ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)  # path, format, git commit, git path, dirty
    created_at: datetime | None = None
    created_by: str | None = None
    environment: str | None = None  # set when the reference named an environment
    fallback: bool = False  # True: the store was unreachable and this is the last version known
    _compiled: list[CompiledPrompt] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.name}-v{self.version}"

    @property
    def subject(self) -> str:
        return f"prompt:{self.ref}"

    @property
    def model(self) -> str | None:
        """The pinned model reference the prompt is written for (`support-llm@1.2.0`)."""
        return self.content.model

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.content.params)

    @property
    def template(self) -> str | None:
        return self.content.template

    @property
    def messages(self) -> tuple[Message, ...] | None:
        return self.content.messages

    @property
    def variables(self) -> tuple[Variable, ...]:
        return self.content.variables

    @property
    def tests(self) -> tuple[Assertion, ...]:
        return self.content.tests

    def render(self, **values: Any) -> Rendered:
        """The prompt text (or chat message list) for these variables. Missing, undeclared or
        mistyped variables are refused (`PromptVariablesInvalid`)."""
        return self.render_values(values)

    def render_values(self, values: Mapping[str, Any]) -> Rendered:
        bound = bind(self.content.variables, values, ref=self.ref)
        if not self._compiled:
            self._compiled.append(CompiledPrompt(self.content, self.ref))
        return self._compiled[0].render(bound)

    def marked(self, *, environment: str | None = None, fallback: bool = False) -> PromptVersion:
        """The same version, reached through `environment`, possibly as a fallback."""
        copy = dataclasses.replace(self, environment=environment, fallback=fallback)
        copy._compiled.extend(self._compiled)
        return copy

    def as_dict(self) -> dict[str, Any]:
        document = self.content.as_document()
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "content_hash": self.content_hash,
            "template": self.content.template,
            "messages": document.get("messages"),
            "variables": document["variables"],
            "model": self.content.model,
            "params": document["params"],
            "tests": document["tests"],
            "description": self.description,
            "tags": list(self.tags),
            "source": dict(self.source),
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "created_by": self.created_by,
            "environment": self.environment,
            "fallback": self.fallback,
        }
