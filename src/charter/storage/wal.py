"""SQLite's write-ahead log after a large write: checkpointed by a background thread.

A commit in WAL mode appends the transaction's pages to the log; once the log holds more than
`AUTOCHECKPOINT` pages, the committing connection copies them into the database file and syncs it
(the autocheckpoint), inside its commit. After a batch of 100,000 transaction records that copy is
about a tenth of the batch's time, and the writer waits for it. `WalCheckpointer.deferred(conn)`
turns the autocheckpoint off for one write transaction and, once it has committed, wakes a thread
that runs `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own: SQLite copies the pages in
C without the GIL, beside whatever Python runs next.

What this keeps: the log stays bounded (every deferred commit is followed at once by a checkpoint of
everything committed so far; a commit that arrives while one runs is covered by the next), and a
commit is as durable as before (WAL with `synchronous=NORMAL`: committed transactions survive a
process crash at once, and reach the disk with the checkpoint that follows them). A passive
checkpoint never blocks readers or writers. On PostgreSQL `deferred` does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("charter.wal")

AUTOCHECKPOINT = 1000  # pages: SQLite's default, restored after each deferred transaction


class WalCheckpointer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.enabled = engine.dialect.name == "sqlite"
        self._wanted = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def deferred(self, conn: Connection) -> Iterator[None]:
        """No autocheckpoint on `conn` inside the block (enter it before the transaction begins,
        leave it after the commit); then the background thread checkpoints."""
        if not self.enabled:
            yield
            return
        dbapi: Any = conn.connection.dbapi_connection
        dbapi.execute("PRAGMA wal_autocheckpoint=0")  # not transactional: on the driver, no BEGIN
        try:
            yield
        finally:
            dbapi.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT}")
        self._request()

    def _request(self) -> None:
        with self._lock:
            if self._stop:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="charter-wal-checkpoint", daemon=True)
                self._thread.start()
            self._idle.clear()
            self._wanted.set()  # under the lock: `_run` sees either the request or the idle state

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stop:
                self._idle.set()
                return
            try:
                self.checkpoint()
            except Exception:  # the next commit asks again; SQLite's own checkpoints still run
                log.exception("charter: checkpointing the SQLite write-ahead log failed")
            with self._lock:
                if not self._wanted.is_set():
                    self._idle.set()

    def checkpoint(self) -> tuple[int, int, int]:
        """Run a passive checkpoint now: (busy, pages in the log, pages checkpointed)."""
        with self.engine.connect() as conn:
            dbapi: Any = conn.connection.dbapi_connection
            busy, logged, copied = dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(busy), int(logged), int(copied)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no checkpoint is pending or running; False on timeout."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        """Stop the thread (after the checkpoint it is running, if any)."""
        with self._lock:
            self._stop = True
            thread, self._thread = self._thread, None
        self._wanted.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
