"""Chunks over the wire: which ones the server lacks, storing one, reading one back.

A remote `dataset add` (or model registration with weights) cuts and hashes its files on the
client, asks `missing` which chunks the store does not hold, and sends only those (`put_chunk`,
or several in one request with `put_chunks`). Each chunk is checked against its digest before it
is stored, and is at most one chunk long
(`MAX_CHUNK`): nothing else can enter the store this way. A chunk stored but never named by a
committed version is an orphan that a later upload reuses (that is what makes uploads resumable)
and `gc` removes after its grace period. Sending chunks needs a role that may add datasets or
register models; reading them back needs only read access, like every other read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, BinaryIO

from charter.data.chunking import MAX_CHUNK, content_digest
from charter.domain.roles import PERMISSIONS, Action, may
from charter.errors import InvalidInput, MissingRole
from charter.service.access import authorize
from charter.storage.blobs import DIGEST

if TYPE_CHECKING:
    from charter.service.registry import Registry

MAX_DIGESTS = 10_000  # digests per `missing` question
MAX_BATCH_CHUNKS = 256  # chunks per batch sent at once
MAX_BATCH_BYTES = 16 * 1024 * 1024
UPLOAD_ACTIONS = (Action.ADD_DATASET, Action.REGISTER_MODEL)


class ChunkTooLarge(InvalidInput):
    def __init__(self, size: int) -> None:
        super().__init__(
            f"a chunk is at most {MAX_CHUNK} bytes, this one has {size} or more; files are sent cut into "
            "content-defined chunks (charter's client does it)",
            limit=MAX_CHUNK,
        )


class DigestMismatch(InvalidInput):
    def __init__(self, digest: str, actual: str) -> None:
        super().__init__(
            f"the chunk sent as {digest} hashes to {actual} (BLAKE3); it was not stored. Send each chunk "
            "under the digest of its content",
            digest=digest,
            actual=actual,
        )


def check_digest(digest: str) -> str:
    """`digest` if it is a BLAKE3 hex digest, else InvalidInput."""
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise InvalidInput(
            f"{str(digest)[:80]!r} is not a BLAKE3 digest; expected 64 lower-case hexadecimal characters",
            digest=str(digest)[:80],
        )
    return digest


def authorize_upload(registry: Registry) -> None:
    """Refuse unless the actor may add datasets or register models (the two things chunks are for)."""
    with registry.store.read() as tx:
        user = authorize(tx, registry.actor, Action.READ)
        if not any(may(user.roles, action) for action in UPLOAD_ACTIONS):
            roles = sorted({role.value for action in UPLOAD_ACTIONS for role in PERMISSIONS[action]})
            raise MissingRole(registry.actor, "upload dataset files or model weights", tuple(roles))


def authorize_read(registry: Registry) -> None:
    with registry.store.read() as tx:
        authorize(tx, registry.actor, Action.READ)


def missing(registry: Registry, digests: Iterable[str]) -> list[str]:
    """The digests among `digests` the blob store does not hold, in the order given, each once."""
    wanted = list(dict.fromkeys(digests))
    if len(wanted) > MAX_DIGESTS:
        raise InvalidInput(
            f"ask about at most {MAX_DIGESTS} digests at a time, not {len(wanted)}", limit=MAX_DIGESTS
        )
    for digest in wanted:
        check_digest(digest)
    authorize_upload(registry)
    blobs = registry.store.blobs
    return [digest for digest in wanted if not blobs.has(digest)]


def put_chunk(registry: Registry, digest: str, data: bytes) -> bool:
    """Store one chunk, checked against its digest; True if it was not in the store before.
    The caller has authorised the upload (`authorize_upload`) before reading the body."""
    return put_chunks(registry, [(digest, data)]) == 1


def put_chunks(registry: Registry, chunks: Sequence[tuple[str, bytes]]) -> int:
    """Store several chunks, each checked against its digest before any is stored; the number that
    were not in the store before. The caller has authorised the upload."""
    if len(chunks) > MAX_BATCH_CHUNKS:
        raise InvalidInput(f"send at most {MAX_BATCH_CHUNKS} chunks at a time, not {len(chunks)}")
    for digest, data in chunks:
        check_digest(digest)
        if len(data) > MAX_CHUNK:
            raise ChunkTooLarge(len(data))
        actual = content_digest(data)
        if actual != digest:
            raise DigestMismatch(digest, actual)
    blobs = registry.store.blobs
    return sum(1 for digest, data in chunks if blobs.put(digest, data))


def open_blob(registry: Registry, digest: str) -> BinaryIO:
    """A stored object to stream (NotFound if the store lacks it); needs read access."""
    check_digest(digest)
    authorize_read(registry)
    return registry.store.blobs.open(digest)
