"""Prompt library use cases: sync and export of prompt files, reads, environments, validation, lock.

Every write is one transaction: authorise, check the rules (pure functions in
`charter.domain.prompts`), change the rows, append the audit event. The SDK read
`reg.prompts.get(ref)` is served from an in-process cache with a bounded TTL, revalidated by the
ledger head, and falls back to the last version known when the store cannot be reached.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from charter.domain import prompts as rules
from charter.domain.prompts import PromptContent, coerce_text
from charter.domain.refs import PromptRef, check_name, parse_dataset_ref, parse_prompt_ref
from charter.domain.roles import Action, may, require
from charter.errors import (
    InvalidInput,
    NotFound,
    StoreUnavailable,
)
from charter.service.access import authorize
from charter.service.policies import current_policy
from charter.service.prompt_environments import environment_order, in_order
from charter.service.prompt_evidence import passing_validation, thresholds
from charter.service.prompt_lock import Lockfile
from charter.service.prompt_results import (
    CheckReport,
    EnvMove,
    ExportReport,
    MoveResult,
    PromptDetails,
    PromptDiff,
    PromptSummary,
    SyncReport,
    Validation,
    VersionEntry,
)
from charter.service.prompt_run import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_S, RunnerFunction, ValidationRun
from charter.service.prompt_templates import Rendered
from charter.service.prompt_version import PromptVersion
from charter.service.txn_context import note_fallback
from charter.storage.prompts import PromptVersionRecord
from charter.storage.store import Tx

if TYPE_CHECKING:
    from charter.service.registry import Registry

log = logging.getLogger("charter.prompts")

DEFAULT_CACHE_TTL_S = 30.0
DEFAULT_CACHE_SIZE = 4096
MAX_FAILURES_STORED = 200  # failed rows kept with a validation (the count is always exact)
MAX_FAILURES_AUDITED = 20  # of those, copied into the audit event's evidence
_UNREACHABLE = (sa.exc.DBAPIError, sa.exc.TimeoutError)
_HEAD_SQL = "SELECT sequence FROM ledger_head WHERE id = 1"


class _Entry:
    __slots__ = ("expires", "sequence", "value")

    def __init__(self, value: PromptVersion, sequence: int, expires: float) -> None:
        self.value, self.sequence, self.expires = value, sequence, expires


class PromptService:
    """`reg.prompts`. `cache_ttl` bounds how long `get` serves a version without asking the store
    (0 disables the cache; the last known versions are still kept for the fallback). With
    `revalidate`, every `get` checks the ledger head first (one primary-key read) and reuses the
    cached version only if nothing changed: what the server does, so that a change made by another
    user or process is served at once rather than up to `cache_ttl` later."""

    def __init__(
        self,
        registry: Registry,
        *,
        cache_ttl: float = DEFAULT_CACHE_TTL_S,
        cache_size: int = DEFAULT_CACHE_SIZE,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.cache_ttl, self.cache_size, self._timer = cache_ttl, cache_size, timer
        self.revalidate = False
        self._cache: dict[str, _Entry] = {}
        self._contents: dict[str, PromptContent] = {}  # content hash → parsed content (immutable)
        self._authorized_at = -1  # ledger sequence at which the actor last passed the READ check

    # --- the SDK read path --------------------------------------------------------------------

    def get(self, ref: str, *, at: datetime | None = None) -> PromptVersion:
        """A version by `name-vN`, `name@N`, `name@ENV` or `name` (the latest); with `at`, the one
        the reference named at that time. Cached for `cache_ttl` seconds; when the store cannot be
        reached, the last version known for `ref` is returned with `fallback=True`."""
        if at is not None:
            parsed = parse_prompt_ref(ref)
            with self.registry.store.read() as tx:
                authorize(tx, self.registry.actor, Action.READ)
                return _view(_resolve(tx, parsed, at), parsed)
        entry = self._cache.get(ref)
        if entry is not None and not self.revalidate and self._timer() < entry.expires:
            return entry.value
        return self._refresh(ref, entry)

    def configure_cache(
        self, *, ttl: float | None = None, size: int | None = None, revalidate: bool | None = None
    ) -> None:
        if ttl is not None:
            if ttl < 0:
                raise InvalidInput(f"a cache TTL is ≥ 0 seconds, not {ttl}")
            self.cache_ttl = ttl
            self._expire()
        if size is not None:
            if size < 1:
                raise InvalidInput(f"a cache holds at least 1 entry, not {size}")
            self.cache_size = size
        if revalidate is not None:
            self.revalidate = revalidate

    def clear_cache(self) -> None:
        self._cache.clear()

    def _expire(self) -> None:
        """Make every cached version ask the store again (it is kept for the fallback)."""
        for entry in self._cache.values():
            entry.expires = 0.0

    def _refresh(self, ref: str, entry: _Entry | None) -> PromptVersion:
        parsed = parse_prompt_ref(ref)
        try:
            if entry is not None and self.cache_ttl > 0 and self._head() == entry.sequence:
                entry.expires = self._timer() + self.cache_ttl  # nothing changed since it was read
                return entry.value
            with self.registry.store.read() as tx:
                sequence, record = tx.prompts.resolve_fast(parsed)
                if self._authorized_at != sequence:  # roles change only with a ledger event
                    authorize(tx, self.registry.actor, Action.READ)
                    self._authorized_at = sequence
                value = self._view(record if record is not None else _resolve(tx, parsed), parsed)
        except (*_UNREACHABLE, self._driver_error()) as exc:
            if entry is None:
                raise StoreUnavailable(f"prompt {ref}", _reason(exc)) from None
            log.warning(
                "the store is unreachable (%s); serving the last known %s", _reason(exc), entry.value.ref
            )
            note_fallback()  # the request being served, if any, records it (`stale`)
            return entry.value.marked(environment=entry.value.environment, fallback=True)
        if len(self._cache) >= self.cache_size and ref not in self._cache:
            self._cache.pop(next(iter(self._cache)))
        self._cache[ref] = _Entry(value, sequence, self._timer() + self.cache_ttl)
        return value

    def _view(self, record: PromptVersionRecord, ref: PromptRef) -> PromptVersion:
        content = self._contents.get(record.content_hash)
        if content is None:
            if len(self._contents) >= self.cache_size:
                self._contents.clear()
            content = self._contents[record.content_hash] = PromptContent.from_document(record.content)
        return PromptVersion(
            record.name,
            record.version,
            content,
            record.content_hash,
            record.description,
            record.tags,
            record.source,
            record.created_at,
            record.created_by,
            ref.environment,
        )

    def _driver_error(self) -> type[Exception]:
        """The database driver's own error class (raw connections raise it unwrapped)."""
        error: type[Exception] = self.registry.store.engine.dialect.loaded_dbapi.Error
        return error

    def _head(self) -> int:
        """The ledger head's sequence, read on a raw pooled connection (a few microseconds)."""
        conn = self.registry.store.engine.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute(_HEAD_SQL)
            row = cursor.fetchone()
            cursor.close()
        finally:
            conn.close()
        return -2 if row is None else int(row[0])

    # --- files --------------------------------------------------------------------------------

    def sync(self, folder: str | Path) -> SyncReport:
        """Register a new version of every prompt file whose content changed (same content ⇒ no new
        version), record its path and git commit, and report registered prompts missing from the
        folder (they are kept). Any bad file refuses the whole sync; nothing is written."""
        from charter.service.prompt_sync import sync_folder

        report = sync_folder(self.registry, Path(folder), self._model_registered)
        self._expire()
        return report

    def _model_registered(self, model: str) -> bool:
        try:
            self.registry.models.get(model)
        except NotFound:
            return False
        return True

    def export(
        self, folder: str | Path, *, environment: str | None = None, force: bool = False
    ) -> ExportReport:
        """Write each prompt's latest version (or the version `environment` holds) as a prompt file,
        at the path it was synced from. A differing existing file is overwritten only with `force`."""
        from charter.service.prompt_sync import export_folder

        return export_folder(self.registry, Path(folder), environment=environment, force=force)

    def check(self, folder: str | Path) -> CheckReport:
        """Lint a folder of prompt files, checking model references against the registry."""
        from charter.service.prompt_check import lint_folder

        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
        return lint_folder(Path(folder), self._model_registered)

    # --- reads --------------------------------------------------------------------------------

    def list(self) -> builtins.list[PromptSummary]:
        """Every prompt: its latest version and what each environment holds."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            heads = {r.name: r for r in tx.prompts.heads_of_all()}
            pointers = tx.prompts.all_pointers()
            counts = tx.prompts.version_counts()
            order = environment_order(tx)
            return [
                PromptSummary(
                    p.name,
                    heads[p.name].ref if p.name in heads else None,
                    counts.get(p.name, 0),
                    {env: None for env in order}
                    | {env: f"{p.name}-v{n}" for env, n in in_order(pointers.get(p.name, {}), order)},
                    p.description,
                    p.tags,
                    heads[p.name].created_at if p.name in heads else None,
                )
                for p in tx.prompts.all_prompts()
            ]

    def versions(self, name: str) -> builtins.list[VersionEntry]:
        """Every version of a prompt, oldest first, with the environments holding it and its latest
        validation."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            prompt = tx.prompts.require_prompt(name)
            records = tx.prompts.versions(prompt.id)
            holding: dict[int, builtins.list[str]] = {}
            for env, number in in_order(tx.prompts.pointers(prompt.id), environment_order(tx)):
                holding.setdefault(number, []).append(env)
            latest: dict[str, Validation] = {}
            for v in tx.prompts.validations(r.id for r in records):
                latest[v.ref] = Validation.of(v)
            return [
                VersionEntry(
                    _view(r),
                    r.version == prompt.head_version,
                    tuple(holding.get(r.version, ())),
                    latest.get(r.ref),
                )
                for r in records
            ]

    def show(self, ref: str, *, at: datetime | None = None) -> PromptDetails:
        """A version (the one the reference named at `at`, if given), the environments holding it
        and its validations."""
        parsed = parse_prompt_ref(ref)
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            record = _resolve(tx, parsed, at)
            pointers = in_order(tx.prompts.pointers(record.prompt_id), environment_order(tx))
            holding = tuple(env for env, n in pointers if n == record.version)
            validations = tuple(Validation.of(v) for v in tx.prompts.validations([record.id]))
            return PromptDetails(_view(record, parsed), at, holding, validations)

    def validations(self, ref: str) -> builtins.list[Validation]:
        """Every validation of a version, oldest first, with its failed rows."""
        parsed = parse_prompt_ref(ref)
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return [Validation.of(v) for v in tx.prompts.validations([_resolve(tx, parsed).id])]

    def diff(self, a: str, b: str) -> PromptDiff:
        """Text, variable, model, parameter and test changes from `a` to `b`, with each version's
        latest validation and production metrics side by side."""
        from charter.service.prompt_diff import compare
        from charter.service.prompt_metrics import production_metrics

        pa, pb = parse_prompt_ref(a), parse_prompt_ref(b)
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            ra, rb = _resolve(tx, pa), _resolve(tx, pb)
            validations = (tx.prompts.latest_validation(ra.id), tx.prompts.latest_validation(rb.id))
            metrics = {"a": production_metrics(tx, ra.id), "b": production_metrics(tx, rb.id)}
        return compare(ra, rb, validations, metrics)

    def render(self, ref: str, variables: Mapping[str, Any], *, as_text: bool = False) -> Rendered:
        """Render a version with strict variable checking. With `as_text`, values are strings typed
        by a person (`--var k=v`) and are converted to the declared types first."""
        version = self.get(ref)
        values = dict(variables)
        if as_text:
            declared = {v.name: v for v in version.variables}
            values = {k: coerce_text(declared[k], v) if k in declared else v for k, v in values.items()}
        return version.render_values(values)

    def history(self, name: str, *, environment: str | None = None) -> builtins.list[EnvMove]:
        """Every environment move of a prompt (of one environment, if given), oldest first."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            prompt = tx.prompts.require_prompt(name)
            return [EnvMove.of(m) for m in tx.prompts.moves(prompt.id, environment)]

    # --- environments -------------------------------------------------------------------------

    def promote(self, ref: str, *, to: str, reason: str = "") -> MoveResult:
        """Move environment `to` to this version. It must come from the environment before `to`
        (no skipping); the last environment (production) also needs a passing validation of this
        exact version under the current `validation` policy."""
        parsed = parse_prompt_ref(ref)
        with self.registry.store.write() as tx:
            user = authorize(tx, self.registry.actor, Action.READ)
            policy = current_policy(tx)
            order = policy.section("environments")["order"]
            rules.environment_index(order, to)
            production = rules.needs_validation(order, to)
            action = Action.PROMOTE_PROMPT_PRODUCTION if production else Action.PROMOTE_PROMPT_PRE_PRODUCTION
            require(self.registry.actor, user.roles, action)
            record = _resolve(tx, parsed)
            holders = tx.prompts.pointers(record.prompt_id)
            if holders.get(to) == record.version:
                return MoveResult(record.ref, to, None)
            rules.check_promotion(order, to, record.name, record.version, holders)
            validation = passing_validation(tx, record, policy.section("validation")) if production else None
            held = holders.get(to)
            event = tx.ledger.append(
                self.registry.actor,
                "prompt.promoted",
                record.subject,
                {"environment": to, "from": None if held is None else f"{record.name}-v{held}",
                 "to": record.ref, "reason": reason},
                {"validation": validation.summary()} if validation is not None else None,
            )  # fmt: skip
            tx.prompts.move_pointer(
                record.prompt_id,
                to,
                from_version_id=None if held is None else _version_id(tx, record.name, held),
                to_version_id=record.id,
                kind="promote",
                reason=reason,
                at=tx.clock.now(),
                by=self.registry.actor,
                audit_sequence=event.sequence,
            )
            result = MoveResult(
                record.ref, to, EnvMove.of(tx.prompts.moves(record.prompt_id, to)[-1]), validation
            )
        self._expire()
        return result

    def rollback(self, name: str, *, environment: str, reason: str = "") -> MoveResult:
        """Move an environment back to the version it held before the current one was promoted."""
        check_name(name, "prompt")
        with self.registry.store.write() as tx:
            user = authorize(tx, self.registry.actor, Action.READ)
            order = current_policy(tx).section("environments")["order"]
            rules.environment_index(order, environment)
            if rules.needs_validation(order, environment) or not may(
                user.roles, Action.PROMOTE_PROMPT_PRE_PRODUCTION
            ):
                require(self.registry.actor, user.roles, Action.ROLL_BACK)
            prompt = tx.prompts.require_prompt(name)
            moves = tx.prompts.moves(prompt.id, environment)
            target = rules.rollback_target(
                [rules.EnvMove(m.kind, m.from_version, m.to_version) for m in moves],
                name=name,
                environment=environment,
            )
            current = tx.prompts.pointers(prompt.id)[environment]
            to_id = _version_id(tx, name, target)
            event = tx.ledger.append(
                self.registry.actor,
                "prompt.rolled_back",
                f"prompt:{name}-v{target}",
                {"environment": environment, "from": f"{name}-v{current}", "to": f"{name}-v{target}",
                 "reason": reason},
            )  # fmt: skip
            tx.prompts.move_pointer(
                prompt.id,
                environment,
                from_version_id=_version_id(tx, name, current),
                to_version_id=to_id,
                kind="rollback",
                reason=reason,
                at=tx.clock.now(),
                by=self.registry.actor,
                audit_sequence=event.sequence,
            )
            result = MoveResult(
                f"{name}-v{target}", environment, EnvMove.of(tx.prompts.moves(prompt.id, environment)[-1])
            )
        self._expire()
        return result

    # --- validation ---------------------------------------------------------------------------

    def validate(
        self,
        ref: str,
        *,
        sample: str,
        runner: str | RunnerFunction | None = None,
        runner_cmd: str | None = None,
        min_pass_rate: float | None = None,
        min_samples: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        progress: Callable[[int, int], None] | None = None,
    ) -> Validation:
        """Run the version's tests over every row of a dataset version and record the result as
        evidence (passing or not). The runner runs here, in this process."""
        from charter.service.prompt_validation import load_predicates, make_runner, run_rows
        from charter.service.validation_plan import plan_validation, sample_rows

        plan = plan_validation(self.registry, ref, sample, min_pass_rate, min_samples)
        run_with = make_runner(runner, runner_cmd)
        predicates = load_predicates(plan.version)
        rows = sample_rows(plan, self.registry.datasets.checkout)
        run = run_rows(
            plan.version,
            rows,
            run_with,
            predicates=predicates,
            concurrency=concurrency,
            timeout_s=timeout_s,
            progress=progress,
        )
        return self.record_validation(
            plan.version.ref,
            sample=plan.sample.ref,
            run=run,
            min_pass_rate=min_pass_rate,
            min_samples=min_samples,
        )

    def record_validation(
        self,
        ref: str,
        *,
        sample: str,
        run: ValidationRun,
        min_pass_rate: float | None = None,
        min_samples: int | None = None,
    ) -> Validation:
        """Store a validation's result as evidence, as reported by the acting user (what a server
        does with a run made where the command ran)."""
        parsed, sample_ref = parse_prompt_ref(ref), parse_dataset_ref(sample)
        with self.registry.store.write() as tx:
            authorize(tx, self.registry.actor, Action.VALIDATE_PROMPT)
            record = _resolve(tx, parsed)
            dataset = tx.datasets.get_version(sample_ref)
            needed_rate, needed_samples = thresholds(tx, min_pass_rate, min_samples)
            passed = run.sample_size >= needed_samples and run.pass_rate >= needed_rate
            summary = {
                "sample": dataset.ref,
                "sample_size": run.sample_size,
                "passed_count": run.passed_count,
                "pass_rate": run.pass_rate,
                "min_pass_rate": needed_rate,
                "min_samples": needed_samples,
                "passed": passed,
                "runner": run.runner,
                "duration_s": round(run.duration_s, 3),
            }
            failures = [dict(f) for f in run.failures]
            event = tx.ledger.append(
                self.registry.actor,
                "prompt.validated",
                record.subject,
                summary,
                {"failure_count": len(failures), "failures": failures[:MAX_FAILURES_AUDITED]},
            )
            stored = tx.prompts.add_validation(
                {
                    "version_id": record.id,
                    "dataset_version_id": dataset.id,
                    "runner": run.runner,
                    "sample_size": run.sample_size,
                    "passed_count": run.passed_count,
                    "pass_rate": run.pass_rate,
                    "min_pass_rate": needed_rate,
                    "min_samples": needed_samples,
                    "passed": passed,
                    "failures": failures[:MAX_FAILURES_STORED],
                    "duration_s": run.duration_s,
                    "created_at": tx.clock.now(),
                    "created_by": self.registry.actor,
                    "audit_sequence": event.sequence,
                }
            )
            return Validation.of(stored)

    # --- lockfile -----------------------------------------------------------------------------

    def lock(self, environment: str) -> Lockfile:
        """Every prompt version `environment` holds, with its full content (`charter prompt lock`)."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            rules.environment_index(current_policy(tx).section("environments")["order"], environment)
            sequence = tx.ledger.head()[0]
            records = tx.prompts.environment_holders(environment)
            return Lockfile(
                environment,
                {r.name: _view(r, PromptRef(r.name, environment=environment)) for r in records},
                tx.clock.now(),
                sequence,
            )


# --- functions over a transaction ----------------------------------------------------------------


def _resolve(tx: Tx, ref: PromptRef, at: datetime | None = None) -> PromptVersionRecord:
    record = tx.prompts.resolve(ref) if at is None else tx.prompts.resolve_at(ref, at)
    if record is not None:
        return record
    if tx.prompts.prompt(ref.name) is None:
        raise NotFound(f"prompt {ref.name!r}", "list prompts with `charter prompt list`")
    when = "" if at is None else f" at {at.isoformat()}"
    if ref.environment is not None:
        raise NotFound(
            f"a version of {ref.name} in {ref.environment}{when}",
            f"see `charter prompt history {ref.name} --env {ref.environment}`",
        )
    if ref.version is not None:
        raise NotFound(
            f"prompt version {ref}{when}", f"list versions with `charter prompt versions {ref.name}`"
        )
    raise NotFound(
        f"a version of {ref.name}{when}", f"list versions with `charter prompt versions {ref.name}`"
    )


def _view(record: PromptVersionRecord, ref: PromptRef | None = None) -> PromptVersion:
    return PromptVersion(
        record.name,
        record.version,
        PromptContent.from_document(record.content),
        record.content_hash,
        record.description,
        record.tags,
        record.source,
        record.created_at,
        record.created_by,
        None if ref is None else ref.environment,
    )


def _version_id(tx: Tx, name: str, number: int) -> int:
    found = tx.prompts.resolve(PromptRef(name, version=number))
    assert found is not None
    return found.id


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0][:200]


# --- for the deployment tracks (releases pin prompt versions; rollouts check their validation) -----

resolve_version = _resolve  # a PromptRef → its version record (NotFound saying what exists)
version_view = _view  # a version record → the PromptVersion result; passing_validation: prompt_evidence

__all__ = ["DEFAULT_CACHE_TTL_S", "PromptService", "passing_validation", "resolve_version", "version_view"]
