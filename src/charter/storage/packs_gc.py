"""Collecting packed objects: drop dead packs, repack mostly-dead ones, remove crash leftovers.

An object in a pack is as old as its pack. A pack none of whose objects is reachable is deleted; a
pack whose unreachable objects make up at least `REPACK_WHEN_DEAD` of its bytes is repacked (its
live objects are copied into a new pack, which is committed durably before the old one is deleted,
so a reader always finds every live object in one of them); a pack with less garbage is left as it
is until more of it dies. A pack younger than the grace period is never touched, whatever it holds:
it may belong to a snapshot whose version is not committed yet. Files in `packs/` that no readable
index accounts for (a pack whose index was never written, because the process died between the two
renames) are removed once they are older than the grace period.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from charter.storage.packs import PackInfo, PackSet, PackWriter, orphans

REPACK_WHEN_DEAD = 0.5


@dataclass
class Collected:
    """What a collection removed (or would remove, in a dry run)."""

    removed: int = 0  # unreachable objects removed
    freed: int = 0  # bytes freed
    kept_recent: int = 0  # unreachable objects kept because they are younger than the grace period
    left_in_packs: int = 0  # bytes of unreachable objects left in packs that are mostly live
    leftovers: int = 0  # files of interrupted writes removed

    def add(self, other: Collected) -> None:
        self.removed += other.removed
        self.freed += other.freed
        self.kept_recent += other.kept_recent
        self.left_in_packs += other.left_in_packs
        self.leftovers += other.leftovers


def collect_packs(
    packs: PackSet,
    new_writer: Callable[[], PackWriter],
    live: AbstractSet[str],
    older_than: float,
    *,
    dry_run: bool = False,
) -> Collected:
    """Remove unreachable packed objects older than `older_than` (an epoch time); see the module
    docstring. `new_writer()` opens a writer that does not deduplicate (for repacking)."""
    packs.refresh(force=True)
    result = Collected()
    infos = packs.packs()
    for info in infos:
        dead = [digest for digest in info.entries if digest not in live]
        if not dead:
            continue
        if info.mtime > older_than:
            result.kept_recent += len(dead)
            continue
        dead_bytes = sum(info.entries[digest][1] for digest in dead)
        total = sum(length for _, length in info.entries.values())
        if len(dead) == len(info.entries):
            result.freed += info.size
            if not dry_run:
                drop(packs, info)
        elif dead_bytes >= REPACK_WHEN_DEAD * total:
            result.freed += dead_bytes
            if not dry_run:
                rewrite(packs, info, info.entries.keys() - set(dead), new_writer)
        else:
            result.left_in_packs += dead_bytes
            continue
        result.removed += len(dead)
    for path, mtime in list(orphans(packs.folder, (info.name for info in infos))):
        if mtime < older_than:
            result.leftovers += 1
            if not dry_run:
                path.unlink(missing_ok=True)
    packs.refresh(force=True)
    return result


def rewrite(
    packs: PackSet, info: PackInfo, keep: AbstractSet[str], new_writer: Callable[[], PackWriter]
) -> None:
    """Replace the pack `info` by one holding only the objects `keep` (none: just delete it). The new
    pack is durable before the old one goes."""
    if keep:
        with new_writer() as writer:
            for digest in sorted(keep, key=lambda d: info.entries[d][0]):  # in pack order
                offset, length = info.entries[digest]
                writer.put_many([(digest, packs.read((info.name, offset, length)))])
    drop(packs, info)


def drop(packs: PackSet, info: PackInfo) -> None:
    """Delete a pack: its index first, so that no reader is sent to a pack that is going away."""
    for path in (packs.index_path(info.name), packs.pack_path(info.name)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
