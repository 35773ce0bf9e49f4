"""Reading what users give the model registry: spec documents, versions, rollback targets."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.domain.refs import ModelRef, is_word, parse_model_ref
from charter.domain.semver import Version
from charter.errors import InvalidInput, InvalidReference, InvalidSpec

if TYPE_CHECKING:
    from charter.data.manifest import Manifest

WEIGHTS_FILE = "weights"  # the one file of a weights manifest: it must not depend on the file's name


def rollback_target(name: str, text: str) -> ModelRef:
    """A rollback target: `1.2.0`, an alias, or the same with the model's name."""
    expected = f"a version of {name}: X.Y.Z, an alias, or {name}@X.Y.Z"
    text = text.strip()
    if "@" in text:
        ref = parse_model_ref(text)
        if ref.name != name or (ref.version is None and ref.alias is None):
            raise InvalidReference(text, expected)
        return ref
    if Version.is_version(text):
        return ModelRef(name, version=Version.parse(text))
    if is_word(text):
        return ModelRef(name, alias=text)
    raise InvalidReference(text, expected)


def version_argument(text: str | None) -> Version | None:
    """An explicitly requested version, or None."""
    if text is None:
        return None
    try:
        return Version.parse(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def load_spec_document(spec: Mapping[str, Any] | str | PathLike[str]) -> tuple[dict[str, Any], Path]:
    """The spec as a mapping, and the folder relative weights paths are read from."""
    if isinstance(spec, Mapping):
        return dict(spec), Path.cwd()
    import yaml

    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read spec file {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidSpec(f"spec file {path} is not valid YAML: {exc}") from None
    if not isinstance(document, Mapping):
        raise InvalidSpec(f"spec file {path} must hold a mapping of spec keys (family, weights, …)")
    return dict(document), path.absolute().parent


def local_weights(document: Mapping[str, Any], base: Path) -> Path | None:
    """The local file a spec's `weights` names (relative paths are read from `base`); None when
    `weights` is absent or already a mapping (digest, size, manifest)."""
    weights = document.get("weights")
    if not isinstance(weights, str):
        return None
    if "://" in weights and not weights.startswith("file://"):
        raise InvalidSpec(
            f"weights {weights!r} is a URI: give its digest as well, as "
            f"`weights: {{uri: {weights}, digest: sha256:<hex>}}`, or give a local file path"
        )
    path = Path(weights.removeprefix("file://")).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise InvalidSpec(f"weights file {path} does not exist or is not a file")
    return path


def weights_reference(manifest: Manifest) -> dict[str, Any]:
    """The spec's `weights` for weights stored in the blob store as `manifest`."""
    return {
        "digest": f"blake3:{manifest.files[0].digest}",
        "size": manifest.total_bytes,
        "manifest": manifest.digest,
    }
