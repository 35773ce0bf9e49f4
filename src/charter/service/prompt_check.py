"""`charter prompt check`: lint a folder of prompt files (for CI).

Errors (the check fails): a file that cannot be read (invalid YAML, unknown keys, …), template
syntax errors, variables the template uses but does not declare, a model reference that is not
pinned to one version or not registered, a prompt without tests, two files with one name.
Warnings: declared variables the template never uses, a `name` that differs from the file name,
no model named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charter.service.prompt_files import LoadedPrompt, load_folder

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Finding:
    file: str
    prompt: str | None
    severity: str  # error | warning
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CheckReport:
    folder: str
    files: int
    findings: tuple[Finding, ...]
    registry_checked: bool  # False: model registration was not checked (offline)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == WARNING)

    def ok(self, *, strict: bool = False) -> bool:
        return self.errors == 0 and (not strict or self.warnings == 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "files": self.files,
            "errors": self.errors,
            "warnings": self.warnings,
            "registry_checked": self.registry_checked,
            "findings": [f.as_dict() for f in self.findings],
        }


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
