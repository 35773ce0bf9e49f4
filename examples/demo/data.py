"""The demo's data, generated (never committed): support tickets for a ticket classifier and
a support agent, and a small weights file for the self-hosted model.

Every file is made from a seeded random generator, so every run of the demo writes the same
bytes. Tickets are composed from sentence pools with ticket-specific details (order numbers,
error codes, times), so two different tickets are never near-duplicates of each other; the
legacy evaluation set is contaminated on purpose: it copies training rows verbatim and carries
lightly edited copies of others (near-duplicates).
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABELS = ("account", "billing", "hardware", "network", "software")
LANGUAGES = ("en", "en", "en", "en", "de", "fr", "es")
CHANNELS = ("email", "chat", "phone", "web")
PRIORITIES = ("P1", "P2", "P3", "P4")
FIELDS = ("ticket_id", "created", "channel", "language", "customer", "ticket", "label", "priority")

_OPENINGS = {
    "account": [
        "I cannot sign in to my account since this morning.",
        "My password reset link keeps expiring before I can use it.",
        "Two-factor codes are not arriving on my phone any more.",
        "Our admin account was locked after the last security update.",
        "I need to transfer ownership of the workspace to a colleague.",
        "The login page says my email address is unknown.",
    ],
    "billing": [
        "I was charged twice for the same subscription this month.",
        "The invoice shows the wrong company address.",
        "Our card was declined although the bank says everything is fine.",
        "We downgraded the plan but still pay the old price.",
        "I need a refund for the annual plan we cancelled.",
        "The VAT number is missing from our invoices.",
    ],
    "hardware": [
        "The printer on the third floor jams on every second page.",
        "My laptop does not boot after the firmware update.",
        "The docking station no longer detects the external monitors.",
        "The barcode scanner at the front desk stopped responding.",
        "The headset crackles during every call.",
        "The card reader in the shop shows a blank screen.",
    ],
    "network": [
        "The VPN drops every few minutes when I work from home.",
        "Wi-Fi in the meeting rooms is extremely slow.",
        "Our branch office cannot reach the file server.",
        "Video calls freeze whenever more than five people join.",
        "DNS lookups for internal sites time out.",
        "The guest network asks for a password nobody knows.",
    ],
    "software": [
        "The desktop app crashes when I open large reports.",
        "Exports to spreadsheet lose all the formatting.",
        "The mobile app shows an empty dashboard after the update.",
        "Search returns results from archived projects only.",
        "Notifications arrive hours late in the web app.",
        "The integration with our calendar stopped syncing.",
    ],
}
_DETAILS = [
    "It started on {day} around {time}.",
    "The error code shown is {code}.",
    "This affects {count} people in the {team} team.",
    "Our order number is {order}.",
    "I already restarted everything twice.",
    "We are on the {plan} plan.",
    "It worked fine until {day}.",
    "The reference on the screen says {code}.",
    "I attached a screenshot to ticket {order}.",
    "Please note the deadline on {day} for our {team} review.",
]
_CLOSINGS = [
    "Can you help us quickly?",
    "Please advise how to fix this.",
    "This is blocking our work.",
    "Thanks in advance for looking into it.",
    "Let me know if you need more details.",
    "We need this solved before the weekend.",
]
_TEAMS = ("sales", "finance", "support", "design", "logistics", "legal", "marketing")
_PLANS = ("starter", "team", "business", "enterprise")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_FIRST = ("Ada", "Ben", "Chen", "Dara", "Emil", "Femi", "Greta", "Hugo", "Ines", "Jon", "Kai", "Lena")
_LAST = ("Adams", "Berg", "Costa", "Diaz", "Engel", "Fischer", "Garcia", "Haas", "Ito", "Jensen")


@dataclass(frozen=True)
class DemoData:
    """Where the generated files are."""

    train: Path  # CSV
    train_more: Path  # the training CSV with newer tickets appended (version 2)
    holdout: Path  # Parquet
    legacy_eval: Path  # CSV, contaminated on purpose
    sample: Path  # JSON Lines, production sample for prompt validation
    weights_v1: Path
    weights_v2: Path
    contaminated_rows: int  # rows of the legacy evaluation set copied verbatim from training
    near_duplicate_rows: int  # rows lightly edited from training


def _ticket(rng: random.Random, ticket_id: int, day: int) -> dict[str, Any]:
    label = rng.choice(LABELS)
    values = {
        "day": rng.choice(_DAYS),
        "time": f"{rng.randint(7, 19):02d}:{rng.choice(('00', '15', '30', '45'))}",
        "code": f"E{rng.randint(1000, 9999)}-{rng.choice('ABCDEFGH')}{rng.randint(10, 99)}",
        "count": rng.randint(2, 40),
        "team": rng.choice(_TEAMS),
        "order": f"SO-{rng.randint(100000, 999999)}",
        "plan": rng.choice(_PLANS),
    }
    details = [d.format(**values) for d in rng.sample(_DETAILS, 3)]
    text = " ".join([rng.choice(_OPENINGS[label]), *details, rng.choice(_CLOSINGS)])
    return {
        "ticket_id": ticket_id,
        "created": f"2026-10-{1 + day % 28:02d}",
        "channel": rng.choice(CHANNELS),
        "language": rng.choice(LANGUAGES),
        "customer": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
        "ticket": text,
        "label": label,
        "priority": rng.choice(PRIORITIES),
    }


def tickets(seed: int, count: int, first_id: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [_ticket(rng, first_id + i, i) for i in range(count)]


def _near_copy(row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same ticket, lightly edited: what a re-export or a hand-cleaned copy looks like."""
    words = row["ticket"].split()
    words.insert(rng.randint(3, len(words) - 1), rng.choice(("really", "again", "still", "now")))
    return {**row, "ticket_id": row["ticket_id"] + 900000, "ticket": " ".join(words)}


def _csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({name: [row[name] for row in rows] for name in FIELDS})
    pq.write_table(table, path)
    return path


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows), encoding="utf-8")
    return path


def _weights(path: Path, seed: int, size: int = 96 * 1024) -> Path:
    """A stand-in for fine-tuned weights: deterministic bytes with a recognisable header."""
    rng = random.Random(seed)
    path.write_bytes(b"DEMO-WEIGHTS\x00" + rng.randbytes(size))
    return path


def generate(folder: Path) -> DemoData:
    """Write every data file the demo needs into `folder` (replacing earlier ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    train = tickets(seed=1, count=1200, first_id=100000)
    newer = tickets(seed=2, count=400, first_id=110000)
    holdout = tickets(seed=3, count=300, first_id=200000)
    rng = random.Random(4)
    copied = rng.sample(train, 48)
    edited = [_near_copy(row, rng) for row in rng.sample(train, 24)]
    legacy = copied + edited + tickets(seed=5, count=168, first_id=300000)
    rng.shuffle(legacy)
    sample = tickets(seed=6, count=80, first_id=400000)
    _csv(folder / "tickets-train.csv", train)
    more = folder / "v2"
    more.mkdir(exist_ok=True)
    _csv(more / "tickets-train.csv", train + newer)  # the same file, newer tickets appended
    return DemoData(
        train=folder / "tickets-train.csv",
        train_more=more / "tickets-train.csv",
        holdout=_parquet(folder / "tickets-holdout.parquet", holdout),
        legacy_eval=_csv(folder / "tickets-eval-legacy.csv", legacy),
        sample=_jsonl(folder / "tickets-sample.jsonl", sample),
        weights_v1=_weights(folder / "ticket-router-1.bin", seed=7),
        weights_v2=_weights(folder / "ticket-router-2.bin", seed=8),
        contaminated_rows=len(copied),
        near_duplicate_rows=len(edited),
    )
