"""`charter server` as a real OS process, the way an operator starts it. (Holds no tests.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.remote_fixtures import free_port


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def server_process(
    env: dict[str, str], *args: str, log: Path, ready_timeout: float = 60.0
) -> Iterator[ServerProcess]:
    """Start `charter server` with `env` on a free port; stop it (SIGTERM) on exit."""
    port = free_port()
    full_env = {**os.environ, **env}
    full_env.pop("CHARTER_URL", None)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "charter", "server", "--port", str(port), *args],
            env=full_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    server = ServerProcess(url, process, log)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"charter server exited with {process.returncode}:\n{server.output()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"charter server did not become ready:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
