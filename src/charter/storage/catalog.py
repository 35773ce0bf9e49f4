"""Paged reads over the registries' tables: counts, and one page of names at a time.

The repositories read whole lists (every version of a model, every version of a prompt); a
browser of a store with thousands of versions needs one page and a count instead. Each query here
counts with SQL or reads one page of names; the pages of versions themselves are read by the
repositories (`versions_page`), which own each table's row format.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.storage.schema import (
    dataset_versions,
    datasets,
    model_aliases,
    model_versions,
    models,
    prompt_versions,
    prompts,
)


class CatalogQueries:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- models -----------------------------------------------------------------------------

    def count_models(self) -> int:
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(models)).scalar_one())

    def model_names(self, offset: int, limit: int) -> list[str]:
        query = sa.select(models.c.name).order_by(models.c.name).offset(offset).limit(limit)
        return [str(n) for n in self.conn.execute(query).scalars()]

    def model_version_counts(self, model_ids: list[int]) -> dict[int, int]:
        query = (
            sa.select(model_versions.c.model_id, sa.func.count())
            .where(model_versions.c.model_id.in_(model_ids))
            .group_by(model_versions.c.model_id)
        )
        return {int(m): int(n) for m, n in self.conn.execute(query)}

    def alias_versions(self, model_id: int) -> dict[str, str]:
        """alias → version text (`1.2.0`), without reading the versions' specs."""
        query = (
            sa.select(
                model_aliases.c.alias, model_versions.c.major, model_versions.c.minor, model_versions.c.patch
            )
            .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
            .where(model_aliases.c.model_id == model_id)
            .order_by(model_aliases.c.alias)
        )
        return {str(a): f"{x}.{y}.{z}" for a, x, y, z in self.conn.execute(query)}

    def count_model_versions(self, model_id: int) -> int:
        query = sa.select(sa.func.count()).where(model_versions.c.model_id == model_id)
        return int(self.conn.execute(query).scalar_one())

    # --- prompts ----------------------------------------------------------------------------

    def count_prompts(self) -> int:
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(prompts)).scalar_one())

    def prompt_names(self, offset: int, limit: int) -> list[str]:
        query = sa.select(prompts.c.name).order_by(prompts.c.name).offset(offset).limit(limit)
        return [str(n) for n in self.conn.execute(query).scalars()]

    def count_prompt_versions(self, prompt_id: int) -> int:
        query = sa.select(sa.func.count()).where(prompt_versions.c.prompt_id == prompt_id)
        return int(self.conn.execute(query).scalar_one())

    # --- datasets ---------------------------------------------------------------------------

    def count_dataset_versions(self, dataset_id: int) -> int:
        query = sa.select(sa.func.count()).where(dataset_versions.c.dataset_id == dataset_id)
        return int(self.conn.execute(query).scalar_one())

    def count_datasets(self) -> int:
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(datasets)).scalar_one())

    def dataset_names(self, offset: int, limit: int) -> list[str]:
        query = sa.select(datasets.c.name).order_by(datasets.c.name).offset(offset).limit(limit)
        return [str(n) for n in self.conn.execute(query).scalars()]
