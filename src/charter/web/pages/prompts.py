"""Prompts: the list with environment pointers, a prompt's versions and pointer history, a version
with its validations and failing samples, and a side-by-side diff of any two versions."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from charter.service.prompt_version import PromptVersion
from charter.web.site import PAGE_SIZE, Site, integer, page_links

HISTORY = 50
FAILURES_SHOWN = 25


@dataclass(frozen=True)
class DiffRow:
    kind: str  # same | changed | removed | added | label
    left_no: int | None
    left: str
    right_no: int | None
    right: str


def text_lines(version: PromptVersion) -> list[str]:
    """The version's text as lines; chat messages each under a `# messages[i] (role)` line."""
    lines: list[str] = []
    for label, text in version.content.texts:
        if version.messages is not None:
            lines.append(f"# {label}")
        lines.extend(text.splitlines() or [""])
    return lines


def side_by_side(left: list[str], right: list[str]) -> list[DiffRow]:
    """Aligned rows of two texts: equal lines side by side, changed lines paired, others alone."""
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            rows.extend(
                DiffRow("same", i + 1, left[i], j + 1, right[j])
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            )
            continue
        width = max(i2 - i1, j2 - j1)
        for k in range(width):
            i, j = i1 + k, j1 + k
            has_left, has_right = i < i2, j < j2
            kind = "changed" if has_left and has_right else ("removed" if has_left else "added")
            rows.append(
                DiffRow(
                    kind,
                    i + 1 if has_left else None,
                    left[i] if has_left else "",
                    j + 1 if has_right else None,
                    right[j] if has_right else "",
                )
            )
    return rows


def param_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any, bool]]:
    """(parameter, value in a, value in b, changed) over both versions' parameters."""
    missing = object()
    rows = []
    for key in sorted(a.keys() | b.keys()):
        va, vb = a.get(key, missing), b.get(key, missing)
        rows.append((key, "–" if va is missing else va, "–" if vb is missing else vb, va != vb))
    return rows


def add(router: APIRouter, site: Site) -> None:
    @router.get("/prompts")
    def prompts(request: Request, offset: str = "") -> Response:
        viewer = site.viewer(request)
        page = viewer.registry.catalog.prompts(offset=integer(offset, "offset", 0), limit=PAGE_SIZE)
        environments = list(page.items[0].environments) if page.items else []
        return site.render(
            request,
            "prompts.html",
            section="prompts",
            title="Prompts",
            page=page,
            environments=environments,
            links=page_links(request, page),
        )

    @router.get("/prompts/{name}")
    def prompt(request: Request, name: str, offset: str = "") -> Response:
        viewer = site.viewer(request)
        reg = viewer.registry
        versions = reg.catalog.prompt_versions(name, offset=integer(offset, "offset", 0), limit=PAGE_SIZE)
        history = reg.prompts.history(name)[-HISTORY:][::-1]
        latest = versions.total
        return site.render(
            request,
            "prompt.html",
            section="prompts",
            title=f"Prompt {name}",
            name=name,
            versions=versions,
            links=page_links(request, versions),
            history=history,
            diff_a=max(latest - 1, 1),
            diff_b=latest,
        )

    @router.get("/prompts/{name}/diff")
    def prompt_diff(request: Request, name: str, a: str = "", b: str = "") -> Response:
        viewer = site.viewer(request)
        reg = viewer.registry
        ref_a = f"{name}-v{integer(a, 'version a', 1, low=1)}"
        ref_b = f"{name}-v{integer(b, 'version b', 1, low=1)}"
        diff = reg.prompts.diff(ref_a, ref_b)
        va, vb = reg.prompts.get(ref_a), reg.prompts.get(ref_b)
        return site.render(
            request,
            "prompt_diff.html",
            section="prompts",
            title=f"{ref_a} → {ref_b}",
            name=name,
            diff=diff.as_dict(),
            a=va,
            b=vb,
            rows=side_by_side(text_lines(va), text_lines(vb)),
            params=param_rows(va.params, vb.params),
        )

    @router.get("/prompts/{name}/{number}")
    def prompt_version(request: Request, name: str, number: str) -> Response:
        viewer = site.viewer(request)
        reg = viewer.registry
        ref = f"{name}-v{integer(number, 'version', 1, low=1)}"
        details = reg.prompts.show(ref)
        validations = reg.prompts.validations(ref)[::-1]
        moves = [m for m in reg.prompts.history(name) if ref in (m.from_ref, m.to_ref)][::-1]
        return site.render(
            request,
            "prompt_version.html",
            section="prompts",
            title=ref,
            ref=ref,
            details=details,
            version=details.version,
            document=details.version.as_dict(),
            validations=validations,
            failures_shown=FAILURES_SHOWN,
            moves=moves,
        )
