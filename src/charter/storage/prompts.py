"""Prompt library tables: prompts, versions, heads, environment pointers and their moves, validations."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from charter.domain.canonical import canonical_json
from charter.domain.refs import PromptRef
from charter.errors import NotFound
from charter.storage.schema import (
    UTCDateTime,
    dataset_versions,
    datasets,
    ledger_head,
    prompt_env_moves,
    prompt_env_pointers,
    prompt_heads,
    prompt_validations,
    prompt_versions,
    prompts,
)


@dataclass(frozen=True)
class PromptRecord:
    id: int
    name: str
    description: str
    tags: tuple[str, ...]
    head_version: int | None
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class PromptVersionRecord:
    id: int
    prompt_id: int
    name: str
    version: int
    content: dict[str, Any]
    content_hash: str
    source: dict[str, Any]
    created_at: datetime
    created_by: str
    description: str  # the prompt's current metadata
    tags: tuple[str, ...]

    @property
    def ref(self) -> str:
        return f"{self.name}-v{self.version}"

    @property
    def subject(self) -> str:
        return f"prompt:{self.ref}"


@dataclass(frozen=True)
class EnvMoveRecord:
    id: int
    name: str
    environment: str
    from_version: int | None
    to_version: int
    kind: str  # promote | rollback
    reason: str
    at: datetime
    actor: str
    audit_sequence: int | None


@dataclass(frozen=True)
class HeadRecord:
    name: str
    version: int
    source: dict[str, Any]
    at: datetime
    actor: str


@dataclass(frozen=True)
class ValidationRecord:
    id: int
    version_id: int
    ref: str  # prompt version, name-vN
    sample: str  # dataset version, name@N
    runner: dict[str, Any]
    sample_size: int
    passed_count: int
    pass_rate: float
    min_pass_rate: float
    min_samples: int
    passed: bool
    failures: list[dict[str, Any]]
    duration_s: float
    created_at: datetime
    created_by: str
    audit_sequence: int | None


_VERSIONS = sa.select(prompt_versions, prompts.c.name, prompts.c.description, prompts.c.tags).join(
    prompts, prompts.c.id == prompt_versions.c.prompt_id
)

# Precompiled lookups for the SDK's read path (one statement per kind of reference).
_BY_NUMBER = _VERSIONS.where(
    prompts.c.name == sa.bindparam("name"), prompt_versions.c.version == sa.bindparam("number")
)
_BY_HEAD = _VERSIONS.where(
    prompts.c.name == sa.bindparam("name"), prompt_versions.c.version == prompts.c.head_version
)
_BY_ENVIRONMENT = _VERSIONS.join(
    prompt_env_pointers,
    sa.and_(
        prompt_env_pointers.c.prompt_id == prompts.c.id,
        prompt_env_pointers.c.version_id == prompt_versions.c.id,
    ),
).where(prompts.c.name == sa.bindparam("name"), prompt_env_pointers.c.environment == sa.bindparam("env"))

_from_v = prompt_versions.alias("from_v")
_to_v = prompt_versions.alias("to_v")
_MOVES = (
    sa.select(
        prompt_env_moves,
        prompts.c.name,
        _from_v.c.version.label("from_number"),
        _to_v.c.version.label("to_number"),
    )
    .join(prompts, prompts.c.id == prompt_env_moves.c.prompt_id)
    .join(_to_v, _to_v.c.id == prompt_env_moves.c.to_version_id)
    .outerjoin(_from_v, _from_v.c.id == prompt_env_moves.c.from_version_id)
)

_VALIDATIONS = (
    sa.select(
        prompt_validations,
        prompts.c.name,
        prompt_versions.c.version,
        datasets.c.name.label("dataset_name"),
        dataset_versions.c.version.label("dataset_version"),
    )
    .join(prompt_versions, prompt_versions.c.id == prompt_validations.c.version_id)
    .join(prompts, prompts.c.id == prompt_versions.c.prompt_id)
    .join(dataset_versions, dataset_versions.c.id == prompt_validations.c.dataset_version_id)
    .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
)

# Precompiled reads for `trace`: a release's prompt versions and their latest validations.
_VERSIONS_IN = _VERSIONS.where(prompt_versions.c.id.in_(sa.bindparam("ids", expanding=True)))
_VALIDATIONS_IN = _VALIDATIONS.where(
    prompt_validations.c.version_id.in_(sa.bindparam("ids", expanding=True))
).order_by(prompt_validations.c.id)

_HEAD_SQL = f"SELECT {ledger_head.c.sequence.name} FROM {ledger_head.name} WHERE id = 1"
_RAW: dict[tuple[str, str], tuple[str, tuple[str, ...] | None]] = {}  # compiled SQL, per dialect


def _raw_sql(dialect: Dialect, key: str, statement: sa.Select[Any]) -> tuple[str, tuple[str, ...] | None]:
    """A statement compiled once per dialect: its SQL text and, for positional drivers, the order
    of its parameters. Executing it on the driver's cursor skips SQLAlchemy's per-call work."""
    found = _RAW.get((dialect.name, key))
    if found is None:
        compiled = statement.compile(dialect=dialect)
        order = tuple(compiled.positiontup or ()) if dialect.positional else None
        found = _RAW[(dialect.name, key)] = (str(compiled), order)
    return found


def _json(value: Any) -> str:
    return canonical_json(value).decode()


class PromptRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- prompts ------------------------------------------------------------------------------

    def prompt(self, name: str) -> PromptRecord | None:
        row = self.conn.execute(sa.select(prompts).where(prompts.c.name == name)).one_or_none()
        return None if row is None else _prompt(row)

    def require_prompt(self, name: str) -> PromptRecord:
        found = self.prompt(name)
        if found is None:
            raise NotFound(f"prompt {name!r}", "list prompts with `charter prompt list`")
        return found

    def all_prompts(self) -> list[PromptRecord]:
        return [_prompt(row) for row in self.conn.execute(sa.select(prompts).order_by(prompts.c.name))]

    def create_prompt(
        self, name: str, description: str, tags: Iterable[str], *, at: datetime, by: str
    ) -> int:
        key = self.conn.execute(
            sa.insert(prompts).values(
                name=name, description=description, tags=_json(list(tags)), created_at=at, created_by=by
            )
        ).inserted_primary_key
        assert key is not None
        return int(key[0])

    def set_metadata(self, prompt_id: int, description: str, tags: Iterable[str]) -> None:
        self.conn.execute(
            sa.update(prompts)
            .where(prompts.c.id == prompt_id)
            .values(description=description, tags=_json(list(tags)))
        )

    def move_head(
        self,
        prompt_id: int,
        version_id: int,
        version: int,
        source: Mapping[str, Any],
        *,
        at: datetime,
        by: str,
    ) -> None:
        self.conn.execute(sa.update(prompts).where(prompts.c.id == prompt_id).values(head_version=version))
        self.conn.execute(
            sa.insert(prompt_heads).values(
                prompt_id=prompt_id, version_id=version_id, source=_json(dict(source)), at=at, actor=by
            )
        )

    def heads(self, prompt_id: int) -> list[HeadRecord]:
        rows = self.conn.execute(
            sa.select(prompt_heads, prompts.c.name, prompt_versions.c.version)
            .join(prompts, prompts.c.id == prompt_heads.c.prompt_id)
            .join(prompt_versions, prompt_versions.c.id == prompt_heads.c.version_id)
            .where(prompt_heads.c.prompt_id == prompt_id)
            .order_by(prompt_heads.c.at, prompt_heads.c.id)
        )
        return [HeadRecord(r.name, r.version, json.loads(r.source), r.at, r.actor) for r in rows]

    # --- versions -----------------------------------------------------------------------------

    def resolve(self, ref: PromptRef) -> PromptVersionRecord | None:
        """The version a reference names now (None when there is none): one query."""
        if ref.version is not None:
            row = self.conn.execute(_BY_NUMBER, {"name": ref.name, "number": ref.version}).one_or_none()
        elif ref.environment is not None:
            row = self.conn.execute(_BY_ENVIRONMENT, {"name": ref.name, "env": ref.environment}).one_or_none()
        else:
            row = self.conn.execute(_BY_HEAD, {"name": ref.name}).one_or_none()
        return None if row is None else _version(row)

    def resolve_fast(self, ref: PromptRef) -> tuple[int, PromptVersionRecord | None]:
        """(ledger head sequence, `resolve(ref)`), read with two precompiled statements on the
        driver's cursor inside this transaction: the SDK's read path."""
        if ref.version is not None:
            key, statement, params = "number", _BY_NUMBER, {"name": ref.name, "number": ref.version}
        elif ref.environment is not None:
            key, statement, params = "env", _BY_ENVIRONMENT, {"name": ref.name, "env": ref.environment}
        else:
            key, statement, params = "head", _BY_HEAD, {"name": ref.name}
        dialect = self.conn.dialect
        sql, order = _raw_sql(dialect, key, statement)
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(_HEAD_SQL)
            head = cursor.fetchone()
            cursor.execute(sql, tuple(params[name] for name in order) if order is not None else params)
            row = cursor.fetchone()
            names = [d[0] for d in cursor.description] if row is not None else []
        finally:
            cursor.close()
        sequence = 0 if head is None else int(head[0])
        if row is None:
            return sequence, None
        values = dict(zip(names, row, strict=True))
        values["created_at"] = _TIME.process_result_value(values["created_at"], dialect)
        return sequence, _version(_Row(values))

    def resolve_at(self, ref: PromptRef, at: datetime) -> PromptVersionRecord | None:
        """The version a reference named at an instant."""
        prompt = self.prompt(ref.name)
        if prompt is None:
            return None
        if ref.version is not None:
            row = self.conn.execute(
                _BY_NUMBER.where(prompt_versions.c.created_at <= at),
                {"name": ref.name, "number": ref.version},
            ).one_or_none()
            return None if row is None else _version(row)
        if ref.environment is not None:
            query = (
                sa.select(prompt_env_moves.c.to_version_id)
                .where(
                    prompt_env_moves.c.prompt_id == prompt.id,
                    prompt_env_moves.c.environment == ref.environment,
                    prompt_env_moves.c.at <= at,
                )
                .order_by(prompt_env_moves.c.at.desc(), prompt_env_moves.c.id.desc())
                .limit(1)
            )
        else:
            query = (
                sa.select(prompt_heads.c.version_id)
                .where(prompt_heads.c.prompt_id == prompt.id, prompt_heads.c.at <= at)
                .order_by(prompt_heads.c.at.desc(), prompt_heads.c.id.desc())
                .limit(1)
            )
        version_id = self.conn.execute(query).scalar()
        return None if version_id is None else self.version_by_id(int(version_id))

    def version_by_id(self, version_id: int) -> PromptVersionRecord:
        return _version(self.conn.execute(_VERSIONS.where(prompt_versions.c.id == version_id)).one())

    def version_by_hash(self, prompt_id: int, content_hash: str) -> PromptVersionRecord | None:
        row = self.conn.execute(
            _VERSIONS.where(
                prompt_versions.c.prompt_id == prompt_id, prompt_versions.c.content_hash == content_hash
            )
        ).one_or_none()
        return None if row is None else _version(row)

    def versions(self, prompt_id: int) -> list[PromptVersionRecord]:
        rows = self.conn.execute(
            _VERSIONS.where(prompt_versions.c.prompt_id == prompt_id).order_by(prompt_versions.c.version)
        )
        return [_version(row) for row in rows]

    def versions_page(self, prompt_id: int, *, offset: int, limit: int) -> list[PromptVersionRecord]:
        """One page of a prompt's versions, newest first."""
        query = _VERSIONS.where(prompt_versions.c.prompt_id == prompt_id).order_by(
            prompt_versions.c.version.desc()
        )
        return [_version(row) for row in self.conn.execute(query.offset(offset).limit(limit))]

    def version_counts(self) -> dict[str, int]:
        rows = self.conn.execute(
            sa.select(prompts.c.name, sa.func.count(prompt_versions.c.id))
            .join(prompt_versions, prompt_versions.c.prompt_id == prompts.c.id)
            .group_by(prompts.c.name)
        )
        return {name: int(count) for name, count in rows}

    def heads_of_all(self) -> list[PromptVersionRecord]:
        """The latest version of every prompt, by name."""
        rows = self.conn.execute(
            _VERSIONS.where(prompt_versions.c.version == prompts.c.head_version).order_by(prompts.c.name)
        )
        return [_version(row) for row in rows]

    def insert_version(
        self,
        prompt_id: int,
        content: Mapping[str, Any],
        content_hash: str,
        source: Mapping[str, Any],
        *,
        at: datetime,
        by: str,
    ) -> PromptVersionRecord:
        latest = self.conn.execute(
            sa.select(sa.func.max(prompt_versions.c.version)).where(prompt_versions.c.prompt_id == prompt_id)
        ).scalar()
        key = self.conn.execute(
            sa.insert(prompt_versions).values(
                prompt_id=prompt_id,
                version=int(latest or 0) + 1,
                content=_json(dict(content)),
                content_hash=content_hash,
                source=_json(dict(source)),
                created_at=at,
                created_by=by,
            )
        ).inserted_primary_key
        assert key is not None
        return self.version_by_id(int(key[0]))

    # --- environments -------------------------------------------------------------------------

    def pointers(self, prompt_id: int) -> dict[str, int]:
        """environment → version number held, for one prompt."""
        rows = self.conn.execute(
            sa.select(prompt_env_pointers.c.environment, prompt_versions.c.version)
            .join(prompt_versions, prompt_versions.c.id == prompt_env_pointers.c.version_id)
            .where(prompt_env_pointers.c.prompt_id == prompt_id)
        )
        return {env: int(version) for env, version in rows}

    def all_pointers(self) -> dict[str, dict[str, int]]:
        """prompt name → environment → version number held."""
        rows = self.conn.execute(
            sa.select(prompts.c.name, prompt_env_pointers.c.environment, prompt_versions.c.version)
            .join(prompt_versions, prompt_versions.c.id == prompt_env_pointers.c.version_id)
            .join(prompts, prompts.c.id == prompt_env_pointers.c.prompt_id)
        )
        found: dict[str, dict[str, int]] = {}
        for name, env, version in rows:
            found.setdefault(name, {})[env] = int(version)
        return found

    def environment_holders(self, environment: str) -> list[PromptVersionRecord]:
        """Every version an environment holds, by prompt name."""
        rows = self.conn.execute(
            _VERSIONS.join(
                prompt_env_pointers,
                sa.and_(
                    prompt_env_pointers.c.prompt_id == prompts.c.id,
                    prompt_env_pointers.c.version_id == prompt_versions.c.id,
                ),
            )
            .where(prompt_env_pointers.c.environment == environment)
            .order_by(prompts.c.name)
        )
        return [_version(row) for row in rows]

    def move_pointer(
        self,
        prompt_id: int,
        environment: str,
        *,
        from_version_id: int | None,
        to_version_id: int,
        kind: str,
        reason: str,
        at: datetime,
        by: str,
        audit_sequence: int,
    ) -> None:
        if from_version_id is None:
            self.conn.execute(
                sa.insert(prompt_env_pointers).values(
                    prompt_id=prompt_id, environment=environment, version_id=to_version_id
                )
            )
        else:
            self.conn.execute(
                sa.update(prompt_env_pointers)
                .where(
                    prompt_env_pointers.c.prompt_id == prompt_id,
                    prompt_env_pointers.c.environment == environment,
                )
                .values(version_id=to_version_id)
            )
        self.conn.execute(
            sa.insert(prompt_env_moves).values(
                prompt_id=prompt_id,
                environment=environment,
                from_version_id=from_version_id,
                to_version_id=to_version_id,
                kind=kind,
                reason=reason,
                at=at,
                actor=by,
                audit_sequence=audit_sequence,
            )
        )

    def moves(self, prompt_id: int, environment: str | None = None) -> list[EnvMoveRecord]:
        query = _MOVES.where(prompt_env_moves.c.prompt_id == prompt_id)
        if environment is not None:
            query = query.where(prompt_env_moves.c.environment == environment)
        rows = self.conn.execute(query.order_by(prompt_env_moves.c.at, prompt_env_moves.c.id))
        return [
            EnvMoveRecord(
                r.id,
                r.name,
                r.environment,
                None if r.from_number is None else int(r.from_number),
                int(r.to_number),
                r.kind,
                r.reason,
                r.at,
                r.actor,
                r.audit_sequence,
            )
            for r in rows
        ]

    # --- validations --------------------------------------------------------------------------

    def add_validation(self, values: Mapping[str, Any]) -> ValidationRecord:
        row = dict(values)
        row["runner"] = _json(row["runner"])
        row["failures"] = _json(row["failures"])
        key = self.conn.execute(sa.insert(prompt_validations).values(**row)).inserted_primary_key
        assert key is not None
        return _validation(
            self.conn.execute(_VALIDATIONS.where(prompt_validations.c.id == int(key[0]))).one()
        )

    def validations(self, version_ids: Iterable[int]) -> list[ValidationRecord]:
        """Validations of these versions, oldest first."""
        ids = list(version_ids)
        if not ids:
            return []
        rows = self.conn.execute(
            _VALIDATIONS.where(prompt_validations.c.version_id.in_(ids)).order_by(prompt_validations.c.id)
        )
        return [_validation(row) for row in rows]

    def versions_by_ids(self, version_ids: Iterable[int]) -> list[PromptVersionRecord]:
        """`version_by_id` of each, in one precompiled statement, in the order given."""
        ids = list(version_ids)
        if not ids:
            return []
        found = {row.id: _version(row) for row in self.conn.execute(_VERSIONS_IN, {"ids": ids})}
        missing = [i for i in ids if i not in found]
        if missing:
            raise sa.exc.NoResultFound(f"no prompt version with id {missing[0]}")
        return [found[i] for i in ids]

    def latest_validations(self, version_ids: Iterable[int]) -> dict[int, ValidationRecord]:
        """`latest_validation` of each version that has one, in one precompiled statement."""
        ids = list(version_ids)
        if not ids:
            return {}
        latest: dict[int, ValidationRecord] = {}
        for row in self.conn.execute(_VALIDATIONS_IN, {"ids": ids}):  # oldest first: the last one wins
            record = _validation(row)
            latest[record.version_id] = record
        return latest

    def latest_validation(self, version_id: int) -> ValidationRecord | None:
        row = self.conn.execute(
            _VALIDATIONS.where(prompt_validations.c.version_id == version_id)
            .order_by(prompt_validations.c.id.desc())
            .limit(1)
        ).one_or_none()
        return None if row is None else _validation(row)


_TIME = UTCDateTime()


class _Row:
    """Attribute access over a driver row's values, like a SQLAlchemy row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _prompt(row: Any) -> PromptRecord:
    return PromptRecord(
        row.id,
        row.name,
        row.description,
        tuple(json.loads(row.tags)),
        row.head_version,
        row.created_at,
        row.created_by,
    )


def _version(row: Any) -> PromptVersionRecord:
    return PromptVersionRecord(
        row.id,
        row.prompt_id,
        row.name,
        row.version,
        json.loads(row.content),
        row.content_hash,
        json.loads(row.source),
        row.created_at,
        row.created_by,
        row.description,
        tuple(json.loads(row.tags)),
    )


def _validation(row: Any) -> ValidationRecord:
    return ValidationRecord(
        row.id,
        row.version_id,
        f"{row.name}-v{row.version}",
        f"{row.dataset_name}@{row.dataset_version}",
        json.loads(row.runner),
        row.sample_size,
        row.passed_count,
        float(row.pass_rate),
        float(row.min_pass_rate),
        row.min_samples,
        bool(row.passed),
        json.loads(row.failures),
        float(row.duration_s),
        row.created_at,
        row.created_by,
        row.audit_sequence,
    )
