"""The SQL store: transactions over one engine, each with the repositories and the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection, Engine

from charter.clock import Clock
from charter.storage.engine import WRITE
from charter.storage.users import UserRepo

if TYPE_CHECKING:
    from charter.storage.blobs import BlobStore
    from charter.storage.datasets import DatasetRepo
    from charter.storage.ledger import Ledger
    from charter.storage.models import ModelRepo
    from charter.storage.policies import PolicyRepo
    from charter.storage.prompts import PromptRepo
    from charter.storage.rollouts import RolloutRepo
    from charter.storage.slots import SlotRepo
    from charter.storage.transactions import TransactionRepo


@dataclass
class Tx:
    """One database transaction and everything that works inside it. The ledger and the repositories
    are made (and their modules imported) on first use, so a command pays only for what it reads."""

    conn: Connection
    clock: Clock
    writable: bool
    users: UserRepo = field(init=False)

    def __post_init__(self) -> None:
        self.users = UserRepo(self.conn)

    @cached_property
    def ledger(self) -> Ledger:
        from charter.storage.ledger import Ledger

        return Ledger(self.conn, self.clock)

    @cached_property
    def policies(self) -> PolicyRepo:
        from charter.storage.policies import PolicyRepo

        return PolicyRepo(self.conn)

    @cached_property
    def models(self) -> ModelRepo:
        from charter.storage.models import ModelRepo

        return ModelRepo(self.conn)

    @cached_property
    def datasets(self) -> DatasetRepo:
        from charter.storage.datasets import DatasetRepo

        return DatasetRepo(self.conn)

    @cached_property
    def prompts(self) -> PromptRepo:
        from charter.storage.prompts import PromptRepo

        return PromptRepo(self.conn)

    @cached_property
    def slots(self) -> SlotRepo:
        from charter.storage.slots import SlotRepo

        return SlotRepo(self.conn)

    @cached_property
    def rollouts(self) -> RolloutRepo:
        from charter.storage.rollouts import RolloutRepo

        return RolloutRepo(self.conn)

    @cached_property
    def transactions(self) -> TransactionRepo:
        from charter.storage.transactions import TransactionRepo

        return TransactionRepo(self.conn)


class Store:
    def __init__(self, engine: Engine, blobs: BlobStore, clock: Clock) -> None:
        self.engine, self.blobs, self.clock = engine, blobs, clock

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction. Writers are serialised: SQLite takes its write lock at BEGIN, and on
        PostgreSQL the ledger head row is locked first, so every check a use case makes still holds
        when it commits, and the ledger never forks."""
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            tx = Tx(conn, self.clock, writable=True)
            tx.ledger.lock_head()
            yield tx

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.engine.connect() as conn, conn.begin():
            yield Tx(conn, self.clock, writable=False)

    @contextmanager
    def read_each(self) -> Iterator[Tx]:
        """Reads that need no snapshot in common. On PostgreSQL the connection is in autocommit
        mode: no BEGIN and COMMIT, two round trips fewer, and each statement still has a snapshot
        of its own, as it has in a transaction at the default READ COMMITTED level. On SQLite (no
        round trips) this is `read()`."""
        if self.dialect != "postgresql":
            with self.read() as tx:
                yield tx
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield Tx(conn, self.clock, writable=False)

    def close(self) -> None:
        self.engine.dispose()
