"""What `trace` reads besides the transaction record, in one statement per dialect.

A trace needs the release, its model version, the release's chain of evidence (the version's
training datasets, evaluations, sign-offs, promotions and production metrics, the prompt versions
and their latest validations, the retrieval index), the slot's production periods and the rollout
with its transitions. Read one kind at a time, that was 10–12 statements, each a round trip on
PostgreSQL, and most of a trace's Python time went to executing them through SQLAlchemy and building
their results. Here the kinds a caller asks for are the columns of one `SELECT`: each a scalar
subquery aggregating its rows into a JSON array (`json_agg` of the whole row on PostgreSQL,
`json_group_array(json_object(…))` on SQLite), keyed by the release id and the rollout id only (the
model version, the slot and the prompt versions are reached through the release inside the
statement). A statement is compiled once per dialect and set of kinds, and run on the driver's
cursor.

The rows are the rows the per-kind repository reads return, decoded by the repositories' own
functions into the same records: timestamps and booleans are converted as SQLAlchemy converts them,
and a float on SQLite travels as 17 significant digits of text (SQLite's JSON writes 15, which do
not round-trip). `tests/test_trace_reads.py` checks every kind against the per-kind reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from charter.domain.semver import Version
from charter.storage.datasets import _SELECT as _DATASET_VERSIONS
from charter.storage.datasets import DatasetRepo, DatasetVersionRecord
from charter.storage.models import (
    _EVALUATIONS,
    EvaluationRecord,
    ModelVersionRecord,
    PromotionRecord,
    SignoffRecord,
    _evaluation,
    promotion_record,
)
from charter.storage.models import _VERSIONS as _MODEL_VERSIONS
from charter.storage.models import _version as _model_version
from charter.storage.prompts import (
    _TIME,
    _VALIDATIONS,
    PromptVersionRecord,
    ValidationRecord,
    _Row,
    _validation,
)
from charter.storage.prompts import _VERSIONS as _PROMPT_VERSIONS
from charter.storage.prompts import _version as _prompt_version
from charter.storage.rollouts import (
    _PRODUCTION_METRICS,
    _ROLLOUTS,
    RolloutRecord,
    TransitionRecord,
    _observed,
    _rollout,
    _transition,
)
from charter.storage.schema import (
    UTCDateTime,
    dataset_versions,
    datasets,
    evaluations,
    model_training_datasets,
    model_versions,
    models,
    production_metrics,
    production_periods,
    promotions,
    prompt_validations,
    prompt_versions,
    release_prompts,
    releases,
    rollout_transitions,
    rollouts,
    signoffs,
)
from charter.storage.slots import _PERIODS, _RELEASES, PeriodRecord, ReleaseRecord, _period, _release_record

RELEASE, VERSION, CHAIN, PERIODS, ROLLOUT = "release", "version", "chain", "periods", "rollout"
KINDS = (RELEASE, VERSION, CHAIN, PERIODS, ROLLOUT)


@dataclass(frozen=True)
class ChainRecords:
    """The records of a release's chain of evidence."""

    training: dict[str, DatasetVersionRecord]  # by ref: the versions linked to the model version
    prompts: list[PromptVersionRecord]  # in the release's order
    validations: dict[int, ValidationRecord]  # the latest of each prompt version that has one
    evaluations: list[EvaluationRecord]
    signoffs: list[SignoffRecord]
    promotions: list[PromotionRecord]
    production_metrics: list[dict[str, Any]]
    retrieval_index: DatasetVersionRecord | None


@dataclass(frozen=True)
class TraceReads:
    """What one `read_trace` call returned; a kind not asked for is None (and so is `rollout`
    when there is no such rollout)."""

    release: ReleaseRecord | None = None
    version: ModelVersionRecord | None = None
    chain: ChainRecords | None = None
    periods: list[PeriodRecord] | None = None
    rollout: tuple[RolloutRecord, list[TransitionRecord]] | None = None


def read_trace(
    conn: Connection,
    kinds: Iterable[str],
    *,
    release_id: int,
    rollout_id: str | None = None,
    prompt_version_ids: tuple[int, ...] = (),
) -> TraceReads:
    """Read `kinds` (a subset of `KINDS`) of release `release_id` and rollout `rollout_id` in one
    statement. `prompt_version_ids` orders the chain's prompts when the release is not read too."""
    wanted = frozenset(kinds)
    if ROLLOUT in wanted and rollout_id is None:
        raise ValueError("reading a rollout needs its id")
    if not wanted:
        return TraceReads()
    statement = _statement(conn.dialect, wanted)
    params = {"release_id": release_id, "rollout_id": rollout_id}
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement.sql, statement.bind(params))
        row = cursor.fetchone()
    finally:
        cursor.close()
    assert row is not None  # a SELECT without FROM: one row
    values = dict(zip(statement.columns, row, strict=True))
    rows = {name: statement.decoders[name](values[name]) for name in statement.columns}
    return _records(conn, wanted, rows, prompt_version_ids)


# --- the statement ------------------------------------------------------------------------------

_RELEASE_ID = sa.bindparam("release_id", type_=sa.Integer)
_ROLLOUT_ID = sa.bindparam("rollout_id", type_=sa.String)


def _of_release(column: sa.Column[Any]) -> Any:
    """A column of the release, as a scalar subquery (never correlated: other parts join releases)."""
    return sa.select(column).where(releases.c.id == _RELEASE_ID).correlate(None).scalar_subquery()


_VERSION_ID = _of_release(releases.c.model_version_id)
_SLOT_ID = _of_release(releases.c.slot_id)
_INDEX_ID = _of_release(releases.c.retrieval_index_id)
_PROMPT_IDS = (
    sa.select(release_prompts.c.prompt_version_id)
    .where(release_prompts.c.release_id == _RELEASE_ID)
    .correlate(None)
)
_PARENT, _PARENT_DATASET = dataset_versions.alias("parent"), datasets.alias("parent_dataset")
_DATASETS = (  # with the ref of the version each is derived from (the repository reads it apart)
    _DATASET_VERSIONS.add_columns(
        _PARENT_DATASET.c.name.label("parent_name"), _PARENT.c.version.label("parent_version")
    )
    .outerjoin(_PARENT, _PARENT.c.id == dataset_versions.c.derived_from_id)
    .outerjoin(_PARENT_DATASET, _PARENT_DATASET.c.id == _PARENT.c.dataset_id)
)
_TRAINING_IDS = (
    sa.select(model_training_datasets.c.dataset_version_id)
    .where(model_training_datasets.c.model_version_id == _VERSION_ID)
    .correlate(None)
)
_TARGET, _TARGET_MODEL = model_versions.alias("target"), models.alias("target_model")

# Each column of the statement: the rows of one kind of record (the plain reads' selects).
_PARTS: Mapping[str, tuple[str, sa.Select[Any]]] = {
    "release": (RELEASE, _RELEASES.where(releases.c.id == _RELEASE_ID)),
    "release_prompts": (
        RELEASE,
        sa.select(release_prompts.c.prompt_version_id, release_prompts.c.position).where(
            release_prompts.c.release_id == _RELEASE_ID
        ),
    ),
    "version": (VERSION, _MODEL_VERSIONS.where(model_versions.c.id == _VERSION_ID)),
    "training": (CHAIN, _DATASETS.where(dataset_versions.c.id.in_(_TRAINING_IDS))),
    "prompts": (CHAIN, _PROMPT_VERSIONS.where(prompt_versions.c.id.in_(_PROMPT_IDS))),
    "validations": (CHAIN, _VALIDATIONS.where(prompt_validations.c.version_id.in_(_PROMPT_IDS))),
    "evaluations": (CHAIN, _EVALUATIONS.where(evaluations.c.model_version_id == _VERSION_ID)),
    "signoffs": (CHAIN, sa.select(signoffs).where(signoffs.c.model_version_id == _VERSION_ID)),
    "promotions": (
        CHAIN,
        sa.select(
            promotions,
            _TARGET_MODEL.c.name.label("target_name"),
            _TARGET.c.major.label("target_major"),
            _TARGET.c.minor.label("target_minor"),
            _TARGET.c.patch.label("target_patch"),
        )
        .outerjoin(_TARGET, _TARGET.c.id == promotions.c.rollback_to_id)
        .outerjoin(_TARGET_MODEL, _TARGET_MODEL.c.id == _TARGET.c.model_id)
        .where(promotions.c.model_version_id == _VERSION_ID),
    ),
    "production_metrics": (
        CHAIN,
        _PRODUCTION_METRICS.where(production_metrics.c.model_version_id == _VERSION_ID),
    ),
    "retrieval_index": (CHAIN, _DATASETS.where(dataset_versions.c.id == _INDEX_ID)),
    "periods": (PERIODS, _PERIODS.where(production_periods.c.slot_id == _SLOT_ID)),
    "rollout": (ROLLOUT, _ROLLOUTS.where(rollouts.c.id == _ROLLOUT_ID)),
    "transitions": (
        ROLLOUT,
        sa.select(rollout_transitions).where(rollout_transitions.c.rollout_id == _ROLLOUT_ID),
    ),
}


@dataclass(frozen=True)
class _Part:
    """One column of the statement: its SQL, its parameters in order (positional drivers) and
    the function that turns its value back into rows."""

    sql: str
    order: tuple[str, ...]
    decode: Callable[[Any], list[_Row]]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    order: tuple[str, ...] | None  # positional drivers: the parameters' names, in order
    columns: tuple[str, ...]
    decoders: Mapping[str, Callable[[Any], list[_Row]]]

    def bind(self, params: Mapping[str, Any]) -> Any:
        return params if self.order is None else tuple(params[name] for name in self.order)


_COMPILED: dict[tuple[str, frozenset[str]], _Compiled] = {}
_COMPILED_PARTS: dict[tuple[str, str], _Part] = {}


def _statement(dialect: Dialect, kinds: frozenset[str]) -> _Compiled:
    """The statement for `kinds`: the parts' SQL put together as text (each part's select is
    compiled once; wrapping them as SQLAlchemy subqueries cost three times as much to compile,
    which a new process, such as `charter trace`, pays)."""
    found = _COMPILED.get((dialect.name, kinds))
    if found is None:
        columns = tuple(name for name, (kind, _) in _PARTS.items() if kind in kinds)
        parts = [_part(dialect, name) for name in columns]
        quote = dialect.identifier_preparer.quote
        sql = "SELECT " + ", ".join(f"({p.sql}) AS {quote(n)}" for n, p in zip(columns, parts, strict=True))
        order = tuple(name for p in parts for name in p.order) if dialect.positional else None
        decoders = {n: p.decode for n, p in zip(columns, parts, strict=True)}
        found = _COMPILED[(dialect.name, kinds)] = _Compiled(sql, order, columns, decoders)
    return found


def _part(dialect: Dialect, name: str) -> _Part:
    """A part as SQL: its select's rows aggregated into a JSON array of objects keyed by column
    name, and the function that turns that back into rows with the values SQLAlchemy would give."""
    found = _COMPILED_PARTS.get((dialect.name, name))
    if found is not None:
        return found
    select = _PARTS[name][1]
    compiled = select.compile(dialect=dialect)
    quote = dialect.identifier_preparer.quote
    pairs: list[str] = []
    converters: list[tuple[str, Callable[[Any], Any]]] = []
    sqlite = dialect.name == "sqlite"
    columns = [(str(column.key), column.type) for column in select.selected_columns]
    if len({key for key, _ in columns}) != len(columns):
        raise ValueError(f"the {name} part names a column twice")
    for key, type_ in columns:
        value = f"r.{quote(key)}"
        if isinstance(type_, sa.Float) and sqlite:
            value = f"printf('%!.17g', {value})"  # exact, as text
            converters.append((key, float))
        elif isinstance(type_, UTCDateTime):
            converters.append((key, lambda v: _TIME.process_result_value(v, dialect)))
        elif isinstance(type_, sa.Boolean):
            converters.append((key, bool))
        pairs.append(f"'{key}', {value}")
    if sqlite:
        aggregate = f"json_group_array(json_object({', '.join(pairs)}))"
    else:  # each row whole, as an object keyed by column name (cheaper to plan and to build)
        aggregate = "json_agg(r)"
    sql = f"SELECT {aggregate} FROM ({compiled}) AS r"

    def decode(value: Any) -> list[_Row]:
        items = json.loads(value) if isinstance(value, str) else (value or [])
        for item in items:
            for key, convert in converters:
                if item[key] is not None:
                    item[key] = convert(item[key])
        return [_Row(item) for item in items]

    order = tuple(compiled.positiontup or ()) if dialect.positional else ()
    found = _COMPILED_PARTS[(dialect.name, name)] = _Part(sql, order, decode)
    return found


# --- the records ----------------------------------------------------------------------------------


def _records(
    conn: Connection, kinds: frozenset[str], rows: Mapping[str, list[Any]], prompt_ids: tuple[int, ...]
) -> TraceReads:
    release = version = chain = periods = rollout = None
    if RELEASE in kinds:
        if not rows["release"]:
            raise sa.exc.NoResultFound("no such release")
        ordered = sorted(rows["release_prompts"], key=lambda r: r.position)
        release = _release_record(rows["release"][0], [r.prompt_version_id for r in ordered])
        prompt_ids = release.prompt_version_ids
    if VERSION in kinds:
        version = _model_version(_one(rows["version"]))
    if CHAIN in kinds:
        chain = _chain(conn, rows, prompt_ids)
    if PERIODS in kinds:
        periods = [_period(r) for r in sorted(rows["periods"], key=lambda r: (r.started_at, r.id))]
    if ROLLOUT in kinds and rows["rollout"]:
        steps = sorted(rows["transitions"], key=lambda r: r.revision)
        rollout = (_rollout(rows["rollout"][0]), [_transition(r) for r in steps])
    return TraceReads(release, version, chain, periods, rollout)


def _chain(conn: Connection, rows: Mapping[str, list[Any]], prompt_ids: tuple[int, ...]) -> ChainRecords:
    prompts = {r.id: _prompt_version(r) for r in rows["prompts"]}
    missing = [i for i in prompt_ids if i not in prompts]
    if missing:
        raise sa.exc.NoResultFound(f"no prompt version with id {missing[0]}")
    validations = {r.version_id: _validation(r) for r in _by_id(rows["validations"])}  # the last wins
    index = rows["retrieval_index"]
    training = (_dataset(conn, r) for r in rows["training"])
    return ChainRecords(
        training={d.ref: d for d in training},
        prompts=[prompts[i] for i in prompt_ids],
        validations={i: validations[i] for i in dict.fromkeys(prompt_ids) if i in validations},
        evaluations=[_evaluation(r) for r in _by_id(rows["evaluations"])],
        signoffs=[
            SignoffRecord(r.id, r.model_version_id, r.note, r.created_at, r.created_by)
            for r in _by_id(rows["signoffs"])
        ],
        promotions=[_promotion(r) for r in _by_id(rows["promotions"])],
        production_metrics=[_observed(r) for r in _by_id(rows["production_metrics"])],
        retrieval_index=_dataset(conn, index[0]) if index else None,
    )


def _dataset(conn: Connection, row: Any) -> DatasetVersionRecord:
    """The repository's record of a dataset version, with the parent's ref read in the statement."""
    values = {**vars(row), "derived_from_id": None}  # (the repository would read the parent)
    record = DatasetRepo(conn)._record(_Row(values))
    if row.parent_name is None:
        return record
    return replace(record, derived_from=f"{row.parent_name}@{row.parent_version}")


def _promotion(row: Any) -> PromotionRecord:
    target = None
    if row.target_name is not None:
        target = f"{row.target_name}@{Version(row.target_major, row.target_minor, row.target_patch)}"
    return promotion_record(row, target)


def _by_id(rows: list[Any]) -> list[Any]:
    return sorted(rows, key=lambda r: r.id)


def _one(rows: list[Any]) -> Any:
    if len(rows) != 1:
        raise sa.exc.NoResultFound("no such record") if not rows else sa.exc.MultipleResultsFound()
    return rows[0]
