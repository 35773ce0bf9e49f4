"""Blobs under any fsspec URL: `s3://bucket/prefix`, `gs://…`, `az://…`, `memory://…` and so on.

The layout is the local folder's, under the URL's path: `objects/<first two hex>/<digest>`, plus a
`CHARTER` marker written by `create()`. fsspec (and s3fs for `s3://`) are imported only when such
a store is opened, so the core install does not need them (`pip install 'charter[s3]'`).

- Object stores (S3, GCS, Azure, memory) replace an object atomically on PUT, so an object is
  written straight to its name; on other file systems it is written to `tmp/` and moved into place.
- `put` asks whether the object exists first: an existing object is never rewritten or re-sent.
- `sync()` does nothing: an object store acknowledges a PUT once the object is durable.
- Objects stay loose (no packs): a PUT per chunk runs concurrently anyway, and an object store has
  no per-file kernel cost to save; `writer()` writes loose objects and `collect` deletes them.
- Every request waits on a round trip, so callers run many at once: `parallelism` says how many,
  and `put_many` runs a batch on the store's own thread pool.
- Credentials and endpoints are the backend's own business: s3fs (through botocore) reads
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_DEFAULT_REGION,
  AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_S3 itself; `storage_options` can override them.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

from charter.errors import InvalidInput
from charter.storage.blobs import DIGEST, Buffer, LooseWriter, check_digest, collect_loose, missing_blob
from charter.storage.packs_gc import Collected

EXTRA = "pip install 'charter[s3]'"
MARKER = "CHARTER"
MARKER_TEXT = b"charter blob store: objects/<first two hex>/<BLAKE3 hex digest>\n"
DEFAULT_PARALLELISM = 16
# writing an object replaces it whole, never partly: no temporary name needed
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
# protocols fsspec knows that cannot hold a writable store
READ_ONLY = frozenset(
    {"http", "https", "zip", "tar", "libarchive", "github", "git", "gist", "data", "reference"}
)


class UnsupportedBlobUrl(InvalidInput):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"blob store {url!r}: {reason}. Accepted: a local folder path, file:///path, or an fsspec "
            "URL of a writable store such as s3://bucket/prefix (with "
            f"{EXTRA}), gs://bucket/prefix, az://container/prefix or memory://name",
            url=url,
        )


class BlobStoreUnavailable(InvalidInput):
    """The backend failed (unreachable, refused credentials, missing bucket); nothing was committed."""

    def __init__(self, location: str, operation: str, reason: str) -> None:
        super().__init__(
            f"the blob store {location} failed to {operation}: {reason}. Check CHARTER_BLOB_URL and the "
            "store's credentials and endpoint (for s3://, the AWS_* environment variables)",
            location=location,
            operation=operation,
            reason=reason,
        )


class FsspecBlobStore:
    """Blobs under an fsspec URL; `storage_options` go to the fsspec file system as they are."""

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        parallelism: int = DEFAULT_PARALLELISM,
    ) -> None:
        scheme, sep, path = url.partition("://")
        self.url = scheme + sep + path.rstrip("/")
        self.fs, root, self.protocol = _filesystem(self.url, dict(storage_options or {}))
        self.root = root.rstrip("/")
        self._atomic = self.protocol in ATOMIC_PUT
        self._parallelism = max(1, parallelism)
        self._failures = _backend_errors()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @property
    def location(self) -> str:
        return _redacted(self.url)

    @property
    def parallelism(self) -> int:
        return self._parallelism

    def create(self) -> None:
        marker = f"{self.root}/{MARKER}"
        with self._failing("create the store"):
            self.fs.makedirs(self.root, exist_ok=True)
            if not self._atomic:  # a file system with real folders: lay them out like the local store
                for folder in ["tmp", *(f"objects/{i:02x}" for i in range(256))]:
                    self.fs.makedirs(f"{self.root}/{folder}", exist_ok=True)
            if not self.fs.exists(marker):
                self.fs.pipe_file(marker, MARKER_TEXT)

    def exists(self) -> bool:
        with self._failing("look for the store"):
            return bool(self.fs.exists(f"{self.root}/{MARKER}"))

    def _path(self, digest: str) -> str:
        check_digest(digest)
        return f"{self.root}/objects/{digest[:2]}/{digest}"

    def has(self, digest: str) -> bool:
        path = self._path(digest)
        with self._failing(f"look up blob {digest}"):
            return bool(self.fs.exists(path))

    def put(self, digest: str, data: Buffer) -> bool:
        final = self._path(digest)
        with self._failing(f"store blob {digest}"):
            if self.fs.exists(final):
                return False
            # a private copy: the caller may reuse its buffer, and S3 takes bytes, not memoryviews
            body = bytes(data)
            if self._atomic:
                self.fs.pipe_file(final, body)
            else:
                temp = f"{self.root}/tmp/{digest[:16]}.{secrets.token_hex(6)}"
                self.fs.pipe_file(temp, body)
                self.fs.mv(temp, final)
        return True

    def put_many(self, items: Iterable[tuple[str, Buffer]]) -> list[bool]:
        batch = list(items)
        if len(batch) <= 1:
            return [self.put(digest, data) for digest, data in batch]
        return list(self._threads().map(lambda item: self.put(*item), batch))

    def get(self, digest: str) -> bytes:
        path = self._path(digest)
        with self._failing(f"read blob {digest}", missing=digest):
            return bytes(self.fs.cat_file(path))

    def open(self, digest: str) -> BinaryIO:
        path = self._path(digest)
        with self._failing(f"read blob {digest}", missing=digest):
            handle: BinaryIO = self.fs.open(path, "rb")
            return handle

    def size(self, digest: str) -> int:
        path = self._path(digest)
        with self._failing(f"look up blob {digest}", missing=digest):
            return int(self.fs.size(path))

    def delete(self, digest: str) -> None:
        path = self._path(digest)
        with self._failing(f"delete blob {digest}"), contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def digests(self) -> Iterator[tuple[str, float, int]]:
        """One listing of the whole prefix (paginated by the backend). An object whose age the
        backend does not report counts as written now, so `gc` never collects it."""
        with self._failing("list the stored objects"):
            found = self.fs.find(f"{self.root}/objects", detail=True)
        now = time.time()
        for name, info in sorted(found.items()):
            shard, _, digest = str(name).rpartition("/")
            if DIGEST.match(digest) and shard.endswith(f"/{digest[:2]}"):
                mtime = _mtime(info)
                yield digest, now if mtime is None else mtime, int(info.get("size") or 0)

    def clean_temporary(self, older_than: float) -> int:
        if self._atomic:
            return 0  # nothing is ever written under a temporary name
        removed = 0
        with self._failing("clean temporary objects"):
            for name, info in self.fs.find(f"{self.root}/tmp", detail=True).items():
                mtime = _mtime(info)
                if mtime is not None and mtime < older_than:
                    self.fs.rm_file(name)
                    removed += 1
        return removed

    def sync(self) -> None:
        """Nothing to do: every `put` returned after the backend acknowledged the object."""

    def writer(self) -> LooseWriter:
        return LooseWriter(self)

    def collect(self, live: AbstractSet[str], older_than: float, *, dry_run: bool = False) -> Collected:
        return collect_loose(self, self.digests(), live, older_than, dry_run=dry_run)

    # --- helpers ---------------------------------------------------------------------------------

    def _threads(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._parallelism, thread_name_prefix="charter-blobs")
            return self._pool

    @contextlib.contextmanager
    def _failing(self, operation: str, *, missing: str | None = None) -> Iterator[None]:
        """Backend failures become BlobStoreUnavailable; a missing object, when `missing` names its
        digest, becomes NotFound."""
        try:
            yield
        except FileNotFoundError as exc:
            if missing is not None:
                raise missing_blob(missing) from None
            raise BlobStoreUnavailable(self.location, operation, str(exc) or "not found") from exc
        except self._failures as exc:
            raise BlobStoreUnavailable(self.location, operation, str(exc) or type(exc).__name__) from exc


def _filesystem(url: str, options: dict[str, Any]) -> tuple[Any, str, str]:
    """(file system, root path inside it, protocol) for `url`."""
    protocol = url.split("://", 1)[0].lower() if "://" in url else ""
    try:
        import fsspec  # type: ignore[import-untyped]
    except ImportError:
        raise UnsupportedBlobUrl(url, f"fsspec is not installed; install the s3 extra: {EXTRA}") from None
    if not protocol or "::" in protocol:
        raise UnsupportedBlobUrl(url, "give one URL with a protocol (chained fsspec URLs are not supported)")
    if protocol not in fsspec.available_protocols():
        raise UnsupportedBlobUrl(url, f"fsspec knows no protocol {protocol!r}")
    if protocol in READ_ONLY:
        raise UnsupportedBlobUrl(url, f"{protocol}:// is read-only")
    # listings are never cached: another process may add or collect objects at any time
    options.setdefault("use_listings_cache", False)
    if protocol in ("s3", "s3a"):
        # one GET per object, without a HEAD first to split it: objects are small (chunks are at
        # most 1 MiB) and charter fetches many at once
        options.setdefault("max_concurrency", 1)
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        hint = EXTRA if protocol in ("s3", "s3a") else "install the fsspec implementation it names"
        raise UnsupportedBlobUrl(url, f"{exc}; {hint}") from None
    if not root.strip("/"):
        raise UnsupportedBlobUrl(url, "give a bucket or folder (and optionally a prefix) after the protocol")
    return fs, str(root), protocol


def _backend_errors() -> tuple[type[BaseException], ...]:
    """OSError, plus botocore's own failures (a refused connection is not an OSError there)."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
    except ImportError:
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)


def _mtime(info: Mapping[str, Any]) -> float | None:
    """The modification time in a listing entry, whichever key the backend uses."""
    for key in ("LastModified", "last_modified", "mtime", "updated", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
