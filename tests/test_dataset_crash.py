"""A `dataset add` killed at any point leaves a store that verifies and accepts the same data again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.cli_runner import Cli


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("CHARTER_USER", "alice")
    monkeypatch.delenv("CHARTER_DATABASE_URL", raising=False)
    return Cli(capsys, monkeypatch)


def _objects(store: Path) -> int:
    """Files in the blob store: loose objects, packs and what is being written under tmp/."""
    return sum(len(files) for _, _, files in os.walk(store / "blobs"))


def test_killed_add_leaves_a_verifiable_store(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").code == 0
    data = tmp_path / "big.bin"
    data.write_bytes(np.random.default_rng(7).bytes(96 * 1024 * 1024))
    store = tmp_path / "store"
    before = _objects(store)
    process = subprocess.Popen(
        [sys.executable, "-m", "charter", "dataset", "add", "big", str(data), "--role", "train"],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill as soon as the snapshot has started writing chunks (or whenever it ends, if it is faster).
    deadline = time.monotonic() + 120
    while process.poll() is None and _objects(store) == before and time.monotonic() < deadline:
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()

    verify = cli("audit", "verify", "--json")
    assert verify.code == 0 and verify.json()["ok"]
    versions = cli("dataset", "list", "--json").json()
    # Either nothing was recorded, or the version is complete (the kill came after the commit).
    assert versions == [] or [v["ref"] for v in versions] == ["big@1"]

    again = cli("dataset", "add", "big", str(data), "--role", "train", "--json")
    assert again.code == 0
    assert again.json()["version"]["ref"] == "big@1"
    out = tmp_path / "out"
    assert cli("dataset", "checkout", "big@1", str(out)).code == 0
    assert (out / "big.bin").read_bytes() == data.read_bytes()
    assert cli("audit", "verify").code == 0
