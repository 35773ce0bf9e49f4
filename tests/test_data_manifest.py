"""Manifests: canonical bytes, a stable identity, and paths that cannot escape."""

from __future__ import annotations

import json

import pytest

from charter.data.chunking import content_digest
from charter.data.manifest import FileEntry, InvalidManifest, Manifest, UnsafePath, validate_relative_path
from charter.domain.canonical import canonical_json
from charter.errors import InvalidInput

A = "a" * 64
B = "b" * 64
C = "c" * 64


def manifest() -> Manifest:
    return Manifest(
        (
            FileEntry("data/part-0.csv", 10, A, (A,)),
            FileEntry("data/é.csv", 20, B, (B, C)),
            FileEntry("empty.txt", 0, content_digest(b""), ()),
        )
    )


def test_bytes_are_rfc8785_canonical_json() -> None:
    m = manifest()
    assert m.to_bytes() == canonical_json(json.loads(m.to_bytes()))
    assert b" " not in m.to_bytes()


def test_round_trip_and_identity() -> None:
    m = manifest()
    again = Manifest.from_bytes(m.to_bytes())
    assert again == m
    assert again.digest == m.digest == content_digest(m.to_bytes())


def test_the_digest_is_stable_across_runs_and_machines() -> None:
    m = Manifest((FileEntry("x.bin", 3, A, (A,)),))
    assert m.to_bytes() == (
        b'{"files":[{"chunks":["'
        + A.encode()
        + b'"],"digest":"'
        + A.encode()
        + b'","path":"x.bin","size":3}],'
        b'"format":"charter.manifest/1"}'
    )
    assert m.digest == content_digest(m.to_bytes())


def test_totals() -> None:
    m = manifest()
    assert m.total_bytes == 30
    assert m.chunk_digests() == {A, B, C}


@pytest.mark.parametrize(
    "path",
    ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", "a\\..\\b", "a\x00b", "a/"],
)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafePath):
        validate_relative_path(path)
    with pytest.raises(InvalidInput):
        FileEntry(path, 1, A, (A,))


@pytest.mark.parametrize("path", ["a", "a/b/c.csv", ".hidden", "a b/ü.txt", "..a", "a..b"])
def test_ordinary_paths_are_accepted(path: str) -> None:
    assert validate_relative_path(path) == path


def test_files_must_be_sorted_and_unique() -> None:
    with pytest.raises(InvalidManifest, match="sorted"):
        Manifest((FileEntry("b", 1, A, (A,)), FileEntry("a", 1, A, (A,))))
    with pytest.raises(InvalidManifest, match="sorted"):
        Manifest((FileEntry("a", 1, A, (A,)), FileEntry("a", 1, A, (A,))))


def test_a_path_cannot_be_both_file_and_folder() -> None:
    with pytest.raises(InvalidManifest, match="both a file and a folder"):
        Manifest((FileEntry("a", 1, A, (A,)), FileEntry("a/b", 1, A, (A,))))


def test_entries_are_checked() -> None:
    with pytest.raises(InvalidManifest, match="digest"):
        FileEntry("a", 1, "xyz", (A,))
    with pytest.raises(InvalidManifest, match="chunks exactly when"):
        FileEntry("a", 1, A, ())
    with pytest.raises(InvalidManifest, match="negative"):
        FileEntry("a", -1, A, (A,))


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"format":"other","files":[]}',
        b'{"format":"charter.manifest/1","files":{}}',
        b'{"format":"charter.manifest/1","files":[{"path":"a"}]}',
        b'{"format":"charter.manifest/1","files":[{"chunks":[],"digest":"'
        + A.encode()
        + b'","path":"a","size":true}]}',
        b'{"files":[],"format":"charter.manifest/1"}  ',
        b'{"files":[{"chunks":["'
        + A.encode()
        + b'"],"digest":"'
        + A.encode()
        + b'","path":"../evil","size":1}],"format":"charter.manifest/1"}',
    ],
)
def test_malformed_or_non_canonical_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        Manifest.from_bytes(data)
