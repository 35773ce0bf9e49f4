"""The server's half of `dataset drift` for a remote client.

Production inputs named by a reference (`DS@N`, `slot:NAME`) are read on the server, as embedded.
A local file or folder of the client is uploaded: the server writes the files into a temporary
folder under their relative names and compares them there, describing them by the client's path.
A reference is never taken for a path on the server: a client names its own files by uploading
them, and cannot make the server read one of its files.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from charter.data.manifest import validate_relative_path
from charter.data.tabular import table_format
from charter.domain.refs import parse_dataset_ref
from charter.domain.roles import Action
from charter.errors import CharterError, InvalidInput
from charter.service.access import authorize

if TYPE_CHECKING:
    from charter.data.drift import DriftReport
    from charter.service.registry import Registry

MAX_FILES = 1_000


@dataclass(frozen=True)
class _Described:
    """A drift source read from the server's copy, described by the client's path."""

    source: Any
    label: str

    def describe(self) -> str:
        return self.label

    def read(self) -> tuple[dict[str, str], list[Any]]:
        return self.source.read()  # type: ignore[no-any-return]


def drift_named(registry: Registry, ref: str, against: str, since: datetime | None = None) -> DriftReport:
    """Drift of `ref` against production inputs the server holds: a dataset version or a source
    with a registered prefix (`slot:NAME`, with `since`)."""
    from charter.service.dataset_analysis import DatasetVersionSource, drift_source
    from charter.service.datasets import DRIFT_SOURCES

    if since is not None or any(against.startswith(prefix) for prefix in DRIFT_SOURCES):
        return registry.datasets.drift(ref, against, since=since)  # type: ignore[no-any-return]

    def source() -> Any:
        if "@" in against:
            parsed = parse_dataset_ref(against)
            with registry.store.read() as tx:
                authorize(tx, registry.actor, Action.READ)
                return DatasetVersionSource(registry.store.blobs, tx.datasets.get_version(parsed))
        if Path(against).exists():
            raise InvalidInput(
                f"{against} is not a dataset version DS@N; a file of yours is compared by uploading it "
                "(charter's client does that when the path exists on your side)",
                against=against,
            )
        return drift_source(registry, against)  # says what would be accepted

    return registry.datasets.drift_from(ref, source)  # type: ignore[no-any-return]


def drift_uploaded(
    registry: Registry, ref: str, files: Iterable[tuple[str, BinaryIO]], *, folder: bool, label: str
) -> DriftReport:
    """Drift of `ref` against files the client uploaded: one file, or a folder of tables (each
    named by its path relative to the folder); `label` is the client's path, for the report."""
    from charter.data.drift import FileSource

    with tempfile.TemporaryDirectory(prefix="charter-drift-") as temporary:
        root = Path(temporary) / "inputs"
        names = _write(root, files, folder=folder)
        target = root if folder else root / names[0]
        try:
            return registry.datasets.drift_from(  # type: ignore[no-any-return]
                ref, lambda: _Described(FileSource(target), label)
            )
        except CharterError as exc:
            raise _relabelled(exc, str(target), label) from None


def _write(root: Path, files: Iterable[tuple[str, BinaryIO]], *, folder: bool) -> list[str]:
    root.mkdir()
    names: list[str] = []
    for name, content in files:
        path = validate_relative_path(name)
        if len(names) >= MAX_FILES:
            raise InvalidInput(f"send at most {MAX_FILES} files to compare, in one folder")
        if not folder and "/" in path:
            raise InvalidInput(f"a single file is sent under its own name, not {path!r}")
        if table_format(path) is None:
            raise InvalidInput(
                f"{path} is not a table file; drift compares Parquet, CSV or JSON Lines files", path=path
            )
        if path in names:
            raise InvalidInput(f"{path} is sent twice; send each file once", path=path)
        names.append(path)
        target = root.joinpath(*path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as out:
            shutil.copyfileobj(content, out, 1024 * 1024)
    if not names or (not folder and len(names) != 1):
        raise InvalidInput("send the file to compare (a folder: one or more table files)")
    return names


def _relabelled(error: CharterError, server_path: str, label: str) -> CharterError:
    """The same error, naming the client's path where it named the server's temporary copy."""
    if server_path in error.message:
        error.message = error.message.replace(server_path, label)
        error.args = (error.message, *error.args[1:])
    return error
