"""Chunks between this process and a charter server.

The snapshot and checkout engines (`charter.data.snapshot`, `charter.data.checkout`) talk to a
blob store. In remote mode they are given one of these instead:

- `UploadSink` takes the chunks `snapshot` cuts and hashes, asks the server in batches which ones
  it lacks (`POST /blobs/missing`) and sends only those, a batch in one request (`POST
  /blobs/batch`, framed as `charter.api.frames` says). Chunks the server holds already — from an
  earlier version, or from an upload that was interrupted — cost one digest in a question, not
  their bytes. The engine calls `parallelism`, `put`, `put_many` and
  `sync`.
- `BlobReader` fetches the chunks `checkout` asks for (`GET /blobs/DIGEST`), streamed and capped
  at one chunk's size; checkout checks each against its digest. The engine calls `parallelism`
  and `get`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from charter.data.chunking import MAX_CHUNK
from charter.errors import InvalidInput

if TYPE_CHECKING:
    import httpx

    from charter.storage.blobs import BlobStore, Buffer


class Remote(Protocol):
    """What these helpers need of `charter.client.remote.RemoteRegistry`."""

    url: str
    http: httpx.Client

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any: ...


@dataclass
class UploadStats:
    asked: int = 0  # distinct chunks the server was asked about
    sent: int = 0  # chunk bodies sent
    bytes_sent: int = 0
    requests: int = 0  # requests that carried chunk bodies


class UploadSink:
    """A write-only stand-in for the blob store that uploads what the server lacks (see the module
    docstring). `finish(manifest_digest)` sends what is still pending, except the manifest itself,
    which the commit carries."""

    BATCH_CHUNKS = 64
    BATCH_BYTES = 8 * 1024 * 1024  # with the chunk that tips it over, within the server's 16 MiB
    parallelism = 4  # snapshot workers: each sends the batches it fills

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.stats = UploadStats()
        self._lock = threading.Lock()
        self._batch: list[tuple[str, bytes]] = []
        self._bytes = 0

    def as_blob_store(self) -> BlobStore:
        return cast("BlobStore", self)

    def put(self, digest: str, data: Buffer) -> bool:
        chunk = bytes(data)  # the engine reuses its buffers once put returns
        with self._lock:
            full: list[tuple[str, bytes]] = []
            # a full batch is sent before the new chunk joins: the last put (the manifest's)
            # therefore always waits for `finish`
            if len(self._batch) >= self.BATCH_CHUNKS or self._bytes >= self.BATCH_BYTES:
                full, self._batch, self._bytes = self._batch, [], 0
            self._batch.append((digest, chunk))
            self._bytes += len(chunk)
        if full:
            self._send(full)
        return True

    def put_many(self, items: Iterable[tuple[str, Buffer]]) -> list[bool]:
        return [self.put(digest, data) for digest, data in items]

    def sync(self) -> None:
        """Nothing to make durable here: the server makes each chunk durable before commit."""

    def finish(self, manifest_digest: str) -> UploadStats:
        with self._lock:
            batch, self._batch, self._bytes = self._batch, [], 0
        self._send([(digest, chunk) for digest, chunk in batch if digest != manifest_digest])
        return self.stats

    def _send(self, batch: list[tuple[str, bytes]]) -> None:
        from charter.api import frames

        if not batch:
            return
        response = self.remote.request("POST", "/blobs/missing", json={"digests": [d for d, _ in batch]})
        lacking = set(response.json()["missing"])
        sending = []
        for digest, chunk in batch:
            if digest in lacking:
                lacking.discard(digest)  # a chunk repeated in the batch is sent once
                sending.append((digest, chunk))
        if sending:
            self.remote.request(
                "POST",
                "/blobs/batch",
                content=frames.encode(sending),
                headers={"Content-Type": "application/octet-stream"},
            )
        with self._lock:
            self.stats.asked += len(batch)
            self.stats.sent += len(sending)
            self.stats.bytes_sent += sum(len(chunk) for _, chunk in sending)
            self.stats.requests += 1 if sending else 0


class BlobReader:
    """A read-only stand-in for the blob store that fetches chunks from the server."""

    parallelism = 8  # chunks fetched at once by checkout: each waits on a round trip

    def __init__(self, remote: Remote, *, limit: int = MAX_CHUNK) -> None:
        self.remote = remote
        self.limit = limit

    def as_blob_store(self) -> BlobStore:
        return cast("BlobStore", self)

    def get(self, digest: str) -> bytes:
        import httpx

        from charter.client.errors import error_from_response, unreachable

        try:
            with self.remote.http.stream("GET", f"/blobs/{digest}") as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                data = bytearray()
                for piece in response.iter_bytes():
                    data += piece
                    if len(data) > self.limit:
                        raise InvalidInput(
                            f"the server sent more than {self.limit} bytes for chunk {digest}; a chunk is "
                            "never that long, so the answer is not one",
                            digest=digest,
                        )
        except httpx.TransportError as exc:
            raise unreachable(self.remote.url, exc) from None
        return bytes(data)
