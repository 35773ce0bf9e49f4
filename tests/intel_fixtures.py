"""Fixtures shared by the dataset-intelligence tests: a CLI on a fresh embedded store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_runner import Cli


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("CHARTER_USER", "alice")
    monkeypatch.delenv("CHARTER_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    run = Cli(capsys, monkeypatch)
    assert run("init").code == 0
    assert run("user", "add", "bob", "--role", "reviewer").code == 0
    return run
