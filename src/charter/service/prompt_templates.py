"""Jinja2 templates, sandboxed and strict: syntax checks, the variables a template uses, rendering.

Templates run in Jinja2's `SandboxedEnvironment` with `StrictUndefined` (an unknown name is an
error, never an empty string), no HTML escaping, and trailing newlines kept as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from charter.domain.prompts import PromptContent
from charter.errors import InvalidInput

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

Rendered = str | list[dict[str, str]]


def environment() -> SandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def syntax_problem(env: SandboxedEnvironment, text: str) -> str | None:
    """Why `text` is not a valid template (with its line), or None."""
    from jinja2 import TemplateSyntaxError

    try:
        env.parse(text)
    except TemplateSyntaxError as exc:
        return f"template syntax error on line {exc.lineno}: {exc.message}"
    return None


def used_variables(env: SandboxedEnvironment, text: str) -> set[str]:
    """Names the template reads from its context (globals such as `range` excluded)."""
    from jinja2 import meta

    return set(meta.find_undeclared_variables(env.parse(text))) - set(env.globals)


def content_problems(env: SandboxedEnvironment, content: PromptContent) -> tuple[list[str], set[str]]:
    """(syntax problems, variables used) over every template text of a prompt."""
    problems: list[str] = []
    used: set[str] = set()
    for label, text in content.texts:
        problem = syntax_problem(env, text)
        if problem:
            problems.append(problem if label == "template" else f"{label}: {problem}")
        else:
            used |= used_variables(env, text)
    return problems, used


class CompiledPrompt:
    """A prompt's templates, compiled once and rendered many times (thread-safe)."""

    def __init__(self, content: PromptContent, ref: str) -> None:
        env = environment()
        self.ref = ref
        self._messages = content.messages
        try:
            self._templates: list[Template] = [env.from_string(text) for _, text in content.texts]
        except Exception as exc:  # jinja2.TemplateSyntaxError; stored versions were checked at sync
            raise InvalidInput(f"{ref}: the template does not compile: {exc}") from None

    def render(self, values: Mapping[str, Any]) -> Rendered:
        from jinja2 import TemplateError

        try:
            texts = [t.render(values) for t in self._templates]
        except TemplateError as exc:
            raise InvalidInput(f"{self.ref}: rendering failed: {exc}") from None
        if self._messages is None:
            return texts[0]
        return [{"role": m.role, "content": text} for m, text in zip(self._messages, texts, strict=True)]
