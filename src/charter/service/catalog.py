"""Browsing the registries a page at a time: `reg.catalog`.

The registries' own list reads (`reg.models.versions(name)`, `reg.prompts.versions(name)`, …) return
everything, which is what a command line wants. A browser of a store with thousands of versions
wants one page and a total instead: these reads count with SQL, fetch one page of ids in the natural
order (newest version first; names alphabetically) and build the same result types the registries
return for just those rows. Each call is one read transaction, authorised for READ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from charter.domain.refs import DatasetRef, PromptRef
from charter.domain.roles import Action
from charter.errors import InvalidInput, NotFound
from charter.service.access import authorize
from charter.service.dataset_results import DatasetVersion
from charter.service.model_results import ModelVersion, jsonable
from charter.service.prompt_environments import environment_order, in_order
from charter.service.prompt_results import PromptSummary, Validation, VersionEntry
from charter.service.prompts import version_view as prompt_view
from charter.storage.catalog import CatalogQueries
from charter.storage.store import Tx

if TYPE_CHECKING:
    from charter.service.registry import Registry

T = TypeVar("T")
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    """`items` at positions offset … offset + len(items) − 1 of `total`."""

    items: tuple[T, ...]
    offset: int
    limit: int
    total: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total

    @property
    def has_previous(self) -> bool:
        return self.offset > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": [jsonable(i) for i in self.items],
            "offset": self.offset,
            "limit": self.limit,
            "total": self.total,
        }


@dataclass(frozen=True)
class ModelRow:
    """A model as a row of a list: no version specs are read."""

    name: str
    primary_metrics: Mapping[str, str]
    aliases: Mapping[str, str]  # alias → version
    versions: int
    latest: str | None
    created_at: datetime
    created_by: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "primary_metrics": dict(self.primary_metrics),
            "aliases": dict(self.aliases),
            "versions": self.versions,
            "latest": self.latest,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


class CatalogService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _read(self, offset: int, limit: int, compute: Callable[[Tx, CatalogQueries], Page[T]]) -> Page[T]:
        if offset < 0:
            raise InvalidInput(f"offset {offset} is negative; pages start at offset 0")
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit {limit} is out of range; accepted: 1 to {MAX_LIMIT}")
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return compute(tx, CatalogQueries(tx.conn))

    # --- models -----------------------------------------------------------------------------

    def models(self, *, offset: int = 0, limit: int = 50) -> Page[ModelRow]:
        """Models by name, with their version count, highest version and aliases."""

        def page(tx: Tx, q: CatalogQueries) -> Page[ModelRow]:
            records = [tx.models.model(n) for n in q.model_names(offset, limit)]
            found = [r for r in records if r is not None]
            counts = q.model_version_counts([r.id for r in found]) if found else {}
            rows = []
            for record in found:
                highest = tx.models.highest(record.id)
                rows.append(
                    ModelRow(
                        record.name,
                        record.primary_metrics,
                        q.alias_versions(record.id),
                        counts.get(record.id, 0),
                        None if highest is None else str(highest.version),
                        record.created_at,
                        record.created_by,
                    )
                )
            return Page(tuple(rows), offset, limit, q.count_models())

        return self._read(offset, limit, page)

    def model_versions(self, name: str, *, offset: int = 0, limit: int = 50) -> Page[ModelVersion]:
        """A model's versions, highest first."""

        def page(tx: Tx, q: CatalogQueries) -> Page[ModelVersion]:
            model = tx.models.model(name)
            if model is None:
                raise NotFound(f"model {name!r}", "list models with `charter model list`")
            aliases = tx.models.aliases(model.id)
            items = tuple(
                ModelVersion(
                    r.name, r.version, r.spec, r.spec_digest, r.description, r.tags,
                    tuple(sorted(a for a, v in aliases.items() if v == r.id)), r.created_at, r.created_by,
                )
                for r in tx.models.versions_page(model.id, offset=offset, limit=limit)
            )  # fmt: skip
            return Page(items, offset, limit, q.count_model_versions(model.id))

        return self._read(offset, limit, page)

    # --- prompts ----------------------------------------------------------------------------

    def prompts(self, *, offset: int = 0, limit: int = 50) -> Page[PromptSummary]:
        """Prompts by name, with their latest version and what each environment holds."""

        def page(tx: Tx, q: CatalogQueries) -> Page[PromptSummary]:
            order = environment_order(tx)
            rows = []
            for name in q.prompt_names(offset, limit):
                record = tx.prompts.prompt(name)
                if record is None:
                    continue
                head = tx.prompts.resolve(PromptRef(name))
                pointers = in_order(tx.prompts.pointers(record.id), order)
                rows.append(
                    PromptSummary(
                        name,
                        None if head is None else head.ref,
                        q.count_prompt_versions(record.id),
                        {env: None for env in order} | {env: f"{name}-v{n}" for env, n in pointers},
                        record.description,
                        record.tags,
                        None if head is None else head.created_at,
                    )
                )
            return Page(tuple(rows), offset, limit, q.count_prompts())

        return self._read(offset, limit, page)

    def prompt_versions(self, name: str, *, offset: int = 0, limit: int = 50) -> Page[VersionEntry]:
        """A prompt's versions, newest first, with the environments holding each and its latest
        validation."""

        def page(tx: Tx, q: CatalogQueries) -> Page[VersionEntry]:
            prompt = tx.prompts.require_prompt(name)
            holding: dict[int, list[str]] = {}
            for env, number in in_order(tx.prompts.pointers(prompt.id), environment_order(tx)):
                holding.setdefault(number, []).append(env)
            records = tx.prompts.versions_page(prompt.id, offset=offset, limit=limit)
            latest = {v.version_id: v for v in tx.prompts.validations(r.id for r in records)}  # oldest first
            items = tuple(
                VersionEntry(
                    prompt_view(r),
                    r.version == prompt.head_version,
                    tuple(holding.get(r.version, ())),
                    None if r.id not in latest else Validation.of(latest[r.id]),
                )
                for r in records
            )
            return Page(items, offset, limit, q.count_prompt_versions(prompt.id))

        return self._read(offset, limit, page)

    # --- datasets ---------------------------------------------------------------------------

    def datasets(self, *, offset: int = 0, limit: int = 50) -> Page[DatasetVersion]:
        """The latest version of each dataset, by name."""

        def page(tx: Tx, q: CatalogQueries) -> Page[DatasetVersion]:
            items = tuple(
                DatasetVersion.of(tx.datasets.get_version(DatasetRef(n)))
                for n in q.dataset_names(offset, limit)
            )
            return Page(items, offset, limit, q.count_datasets())

        return self._read(offset, limit, page)

    def dataset_versions(self, name: str, *, offset: int = 0, limit: int = 50) -> Page[DatasetVersion]:
        """A dataset's versions, newest first."""

        def page(tx: Tx, q: CatalogQueries) -> Page[DatasetVersion]:
            dataset_id = tx.datasets.dataset_id(name)
            if dataset_id is None:
                raise NotFound(f"dataset {name!r}", "list datasets with `charter dataset list`")
            records = tx.datasets.versions_page(dataset_id, offset=offset, limit=limit)
            items = tuple(DatasetVersion.of(r) for r in records)
            return Page(items, offset, limit, q.count_dataset_versions(dataset_id))

        return self._read(offset, limit, page)
