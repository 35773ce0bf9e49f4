"""`charter prompt check`: lint a folder of prompt files (for CI).

Errors (the check fails): a file that cannot be read (invalid YAML, unknown keys, …), template
syntax errors, variables the template uses but does not declare, a model reference that is not
pinned to one version or not registered, a prompt without tests, two files with one name.
Warnings: declared variables the template never uses, a `name` that differs from the file name,
no model named.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from charter.service.prompt_files import LoadedPrompt, load_folder
from charter.service.prompt_results import ERROR, WARNING, CheckReport, Finding

__all__ = ["CheckReport", "Finding", "lint_folder"]  # the report's types live with the other results


def lint_folder(folder: Path, model_registered: Callable[[str], bool] | None = None) -> CheckReport:
    """Every finding for every prompt file under `folder`. `model_registered` answers whether a
    pinned model version exists; without it (offline) registration is not checked."""
    loaded = load_folder(folder)
    findings: list[Finding] = []
    for item in loaded:
        findings.extend(_findings(item, model_registered))
    return CheckReport(str(folder), len(loaded), tuple(findings), model_registered is not None)


def _findings(item: LoadedPrompt, model_registered: Callable[[str], bool] | None) -> list[Finding]:
    name = item.file.name if item.file is not None else None
    found = [Finding(item.path, name, ERROR, code, message) for code, message in item.errors]
    prompt = item.file
    if prompt is None:
        return found
    content = prompt.content
    codes = {code for code, _ in item.errors}
    if "template-syntax" not in codes:
        unused = sorted({v.name for v in content.variables} - item.used_variables)
        if unused:
            found.append(
                Finding(
                    item.path,
                    name,
                    WARNING,
                    "unused-variable",
                    f"declared but never used by the template: {', '.join(unused)}",
                )
            )
    if not content.tests:
        found.append(
            Finding(
                item.path,
                name,
                ERROR,
                "missing-tests",
                "no tests: add assertions under `tests:` (for example - {kind: contains, value: …}); "
                "a prompt without tests cannot be validated for production",
            )
        )
    if not prompt.name_matches_file:
        found.append(
            Finding(
                item.path,
                name,
                WARNING,
                "name-mismatch",
                f"the prompt is named {prompt.name!r} but the file suggests {prompt.stem!r}",
            )
        )
    if content.model is None:
        found.append(
            Finding(
                item.path, name, WARNING, "no-model", "no `model`: name the pinned model version it is for"
            )
        )
    elif (
        model_registered is not None
        and "model-not-pinned" not in codes
        and not model_registered(content.model)
    ):
        found.append(
            Finding(
                item.path,
                name,
                ERROR,
                "model-not-registered",
                f"model {content.model} is not registered; register it with `charter model register` or "
                "point the prompt at a registered version",
            )
        )
    return found
