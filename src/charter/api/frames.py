"""The body of `POST /api/v1/blobs/batch`: several chunks in one request.

Each chunk is a frame: its BLAKE3 digest as 64 ASCII hex characters, its length as 4 bytes
(big-endian), then that many bytes. Frames follow each other to the end of the body. One request
of a few megabytes costs the server far less than a request per chunk of a few hundred kilobytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from charter.data.chunking import MAX_CHUNK
from charter.errors import InvalidInput

HEADER = 68  # digest + length


class MalformedBatch(InvalidInput):
    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the batch of chunks is malformed: {reason}; a batch is frames of a 64-character hex digest, "
            "a 4-byte big-endian length and that many bytes",
            reason=reason,
        )


def encode(chunks: Sequence[tuple[str, bytes]]) -> bytes:
    parts: list[bytes] = []
    for digest, data in chunks:
        parts.append(digest.encode("ascii") + len(data).to_bytes(4, "big"))
        parts.append(data)
    return b"".join(parts)


def decode(body: bytes, *, max_chunks: int) -> list[tuple[str, bytes]]:
    view = memoryview(body)
    chunks: list[tuple[str, bytes]] = []
    at = 0
    while at < len(body):
        if len(chunks) >= max_chunks:
            raise MalformedBatch(f"it holds more than {max_chunks} chunks")
        if len(body) - at < HEADER:
            raise MalformedBatch(f"it ends inside the header of frame {len(chunks) + 1}")
        try:
            digest = bytes(view[at : at + 64]).decode("ascii")
        except UnicodeDecodeError:
            raise MalformedBatch(f"frame {len(chunks) + 1} does not start with a hex digest") from None
        size = int.from_bytes(view[at + 64 : at + HEADER], "big")
        if size > MAX_CHUNK:
            raise MalformedBatch(
                f"frame {len(chunks) + 1} claims {size} bytes; a chunk has at most {MAX_CHUNK}"
            )
        at += HEADER
        if len(body) - at < size:
            raise MalformedBatch(f"it ends inside the bytes of frame {len(chunks) + 1}")
        chunks.append((digest, bytes(view[at : at + size])))
        at += size
    return chunks
