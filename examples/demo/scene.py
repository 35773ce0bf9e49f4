"""The demo's cast and stage: the story's clock and users, and how each release behaves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from examples.demo import data as demo_data
from examples.demo.traffic import Behaviour

from charter.clock import ManualClock
from charter.service.registry import Registry

HERE = Path(__file__).resolve().parent
SLOT = "support-agent"
PLAN = f"charter slot rollback {SLOT} (the previous release stays pinned for 30 days)"
# How each release behaves on simulated traffic: the new snapshot is a little better and cheaper.
BASELINE = Behaviour(quality=0.80, format_ok=0.997, cost=0.0042, latency_ms=900)
IMPROVED = Behaviour(quality=0.83, format_ok=0.998, cost=0.0039, latency_ms=820)


@dataclass
class Story:
    admin: Registry
    clock: ManualClock
    start: datetime
    workspace: Path
    out: TextIO
    facts: dict[str, Any] = field(default_factory=dict)
    data: demo_data.DemoData | None = None

    @property
    def generated(self) -> demo_data.DemoData:
        assert self.data is not None, "the datasets chapter generates the data"
        return self.data

    def user(self, name: str) -> Registry:
        return self.admin.as_user(name)

    def at(self, day: int, hhmm: str) -> None:
        """Move the clock to day `day` of the story at `hhmm` (never backwards)."""
        hours, minutes = (int(x) for x in hhmm.split(":"))
        when = self.start + timedelta(days=day, hours=hours - self.start.hour, minutes=minutes)
        if when > self.clock.now():
            self.clock.set(when)

    def say(self, who: str, text: str) -> None:
        stamp = self.clock.now().strftime("%a %d %b %H:%M")
        self.out.write(f"  {stamp}  {who:<7} {text}\n")

    def chapter(self, title: str) -> None:
        self.out.write(f"\n{title}\n")


def short(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: text.rfind(" ", 0, limit)] + " …"
