"""Prompt files and the registry: sync a folder in, export the registry out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.domain import prompts as rules
from charter.domain.prompt_files import PromptFile
from charter.domain.prompts import PromptContent, content_hash
from charter.domain.roles import Action
from charter.errors import InvalidInput, PromptFileError
from charter.service.access import authorize
from charter.service.policies import current_policy
from charter.service.prompt_files import (
    LoadedPrompt,
    export_path,
    git_info,
    load_folder,
    render_file,
    source_of,
)
from charter.service.prompt_results import ExportReport, SyncItem, SyncReport
from charter.storage.prompts import PromptVersionRecord
from charter.storage.store import Tx

if TYPE_CHECKING:
    from charter.service.registry import Registry


def sync_folder(registry: Registry, root: Path, model_registered: Callable[[str], bool]) -> SyncReport:
    """Register a new version of every prompt file whose content changed (same content ⇒ no new
    version), record its path and git commit, and report registered prompts missing from the
    folder (they are kept). Any bad file refuses the whole sync; nothing is written."""
    files = checked_files(registry, load_folder(root), model_registered)
    git = git_info(root)
    return register_files(
        registry,
        str(root),
        files,
        lambda path, prompt: source_of(root, path, prompt, git),
        None if git is None else git.commit,
    )


def checked_files(
    registry: Registry, loaded: list[LoadedPrompt], model_registered: Callable[[str], bool]
) -> list[tuple[str, PromptFile]]:
    """The parsed files of a folder if every one can be synced (and the actor may sync); else
    `PromptFileError` naming each bad file."""
    problems = [(item.path, message) for item in loaded for _, message in item.errors]
    if problems:
        raise PromptFileError(problems)
    files = [(item.path, item.file) for item in loaded if item.file is not None]
    with registry.store.read() as tx:
        authorize(tx, registry.actor, Action.SYNC_PROMPTS)
    models = {p.content.model for _, p in files if p.content.model is not None}
    missing_models = {m for m in models if not model_registered(m)}
    unregistered = [
        (path, f"model {prompt.content.model} is not registered; register it or pin a registered version")
        for path, prompt in files
        if prompt.content.model in missing_models
    ]
    if unregistered:
        raise PromptFileError(unregistered)
    return files


def register_files(
    registry: Registry,
    folder: str,
    files: list[tuple[str, PromptFile]],
    source_for: Callable[[str, PromptFile], Mapping[str, Any]],
    commit: str | None,
) -> SyncReport:
    """Register checked files in one transaction; `source_for(path, prompt)` is what is recorded of
    where each came from (path, format, git commit and path)."""
    with registry.store.write() as tx:
        authorize(tx, registry.actor, Action.SYNC_PROMPTS)
        items = [
            sync_one(tx, registry.actor, path, prompt, source_for(path, prompt)) for path, prompt in files
        ]
        synced = {prompt.name for _, prompt in files}
        missing = tuple(p.name for p in tx.prompts.all_prompts() if p.name not in synced)
    return SyncReport(folder, commit, tuple(items), missing)


def sync_one(tx: Tx, actor: str, path: str, prompt: PromptFile, source: Mapping[str, Any]) -> SyncItem:
    """Register one parsed prompt file: a new prompt, a new version, a return to an earlier
    version, or nothing; metadata changes are applied either way."""
    now = tx.clock.now()
    document = prompt.content.as_document()
    digest = content_hash(document)
    record = tx.prompts.prompt(prompt.name)
    if record is None:
        prompt_id = tx.prompts.create_prompt(prompt.name, prompt.description, prompt.tags, at=now, by=actor)
        added = tx.prompts.insert_version(prompt_id, document, digest, source, at=now, by=actor)
        tx.prompts.move_head(prompt_id, added.id, added.version, source, at=now, by=actor)
        tx.ledger.append(
            actor,
            "prompt.version_added",
            added.subject,
            {"content_hash": digest, "previous": None, "source": dict(source), "content": document,
             "description": prompt.description, "tags": list(prompt.tags)},
        )  # fmt: skip
        return SyncItem(prompt.name, "added", added.ref, None, path)
    previous = f"{record.name}-v{record.head_version}" if record.head_version else None
    metadata_changed = (prompt.description, prompt.tags) != (record.description, record.tags)
    if metadata_changed:
        tx.prompts.set_metadata(record.id, prompt.description, prompt.tags)
        tx.ledger.append(
            actor,
            "prompt.metadata_changed",
            f"prompt:{record.name}",
            {"description": prompt.description, "tags": list(prompt.tags),
             "previous": {"description": record.description, "tags": list(record.tags)}},
        )  # fmt: skip
    existing = tx.prompts.version_by_hash(record.id, digest)
    if existing is None:
        added = tx.prompts.insert_version(record.id, document, digest, source, at=now, by=actor)
        tx.prompts.move_head(record.id, added.id, added.version, source, at=now, by=actor)
        tx.ledger.append(
            actor,
            "prompt.version_added",
            added.subject,
            {"content_hash": digest, "previous": previous, "source": dict(source), "content": document},
        )
        return SyncItem(prompt.name, "changed", added.ref, previous, path, metadata_changed)
    if existing.version != record.head_version:
        tx.prompts.move_head(record.id, existing.id, existing.version, source, at=now, by=actor)
        tx.ledger.append(
            actor,
            "prompt.reverted",
            existing.subject,
            {"content_hash": digest, "previous": previous, "source": dict(source)},
        )
        return SyncItem(prompt.name, "reverted", existing.ref, previous, path, metadata_changed)
    return SyncItem(prompt.name, "unchanged", existing.ref, previous, path, metadata_changed)


def export_folder(registry: Registry, root: Path, *, environment: str | None, force: bool) -> ExportReport:
    """Write each prompt's latest version (or the version `environment` holds) as a prompt file,
    at the path it was synced from. A differing existing file is overwritten only with `force`."""
    return write_export(root, export_plan(registry, environment), environment=environment, force=force)


def export_plan(registry: Registry, environment: str | None) -> dict[str, str]:
    """Relative path → text of every prompt file an export writes."""
    with registry.store.read() as tx:
        authorize(tx, registry.actor, Action.READ)
        if environment is not None:
            rules.environment_index(current_policy(tx).section("environments")["order"], environment)
            records = tx.prompts.environment_holders(environment)
        else:
            records = tx.prompts.heads_of_all()
    planned: dict[str, str] = {}
    for record in records:
        prompt = prompt_file(record)
        path = export_path(prompt, record.source.get("path"))
        if path in planned:
            path = export_path(prompt, None)
        planned[path] = render_file(prompt)
    return planned


def write_export(
    root: Path, planned: Mapping[str, str], *, environment: str | None, force: bool
) -> ExportReport:
    """Write the planned files under `root`: all of them, or none when one would overwrite a
    differing file without `force`."""
    written, unchanged, conflicts = [], [], []
    for path, text in sorted(planned.items()):
        target = root / path
        if target.exists():
            if target.read_text(encoding="utf-8") == text:
                unchanged.append(path)
                continue
            if not force:
                conflicts.append(path)
                continue
        written.append(path)
    if conflicts:
        raise InvalidInput(
            f"{len(conflicts)} file(s) in {root} differ from the registry: {', '.join(conflicts[:10])}; "
            "nothing was written. Export into another folder, or pass --force to overwrite them"
        )
    for path in written:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(planned[path], encoding="utf-8")
    return ExportReport(str(root), environment, tuple(written), tuple(unchanged))


def prompt_file(record: PromptVersionRecord) -> PromptFile:
    """The version as a prompt file, in the format it was synced from — except that a template
    with a bare carriage return is written as YAML (a Markdown body cannot keep one)."""
    content = PromptContent.from_document(record.content)
    markdown = record.source.get("format") == "md" and "\r" not in (content.template or "")
    return PromptFile(
        record.name, content, record.description, record.tags, "md" if markdown else "yaml", record.name
    )
