"""HTTP load on this machine for the server benchmarks: server processes, a load generator, CPU use.

- `serving(command, env, probe)` starts a server in its own session (process group), waits until
  `probe` answers 200, and on exit stops the whole group (SIGTERM, then SIGKILL), so no worker
  process is left behind whatever happened.
- `generate(url, token, seconds, ...)` loads one URL with keep-alive connections and returns the
  request count, errors and latency percentiles. It uses `wrk` (Debian package `wrk`) when it is
  installed; otherwise a Python generator (processes × threads, `http.client`), which costs more
  CPU per request, so its figures are labelled and not comparable with wrk's.
- `group_cpu_s(pgid)`: user + system CPU seconds of every live process of a group (from /proc).

Only loopback addresses are loaded, every run is bounded in time and stops by itself.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_WRK_SCRIPT = r"""
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
-- pacing: each thread hands out send times BENCH_INTERVAL_MS apart to its connections; a thread
-- that fell behind (all its connections busy) catches up on at most one second of missed sends
local interval = tonumber(os.getenv("BENCH_INTERVAL_MS") or "0")
if interval > 0 then
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock, bench_timespec *now);
  ]]
  local now = ffi.new("bench_timespec")
  local slot = nil
  delay = function()
    ffi.C.clock_gettime(1, now)
    local t = tonumber(now.tv_sec) * 1000 + tonumber(now.tv_nsec) / 1e6
    if slot == nil or slot < t - 1000 then slot = t end
    slot = slot + interval
    return math.max(0, math.floor(slot - t + 0.5))
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_s: float
    p99_s: float
    errors: int  # socket errors and non-2xx answers

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def generator() -> str:
    """`wrk <version>` when wrk is installed, else `python`."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return "python"
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    words = (out.stdout + out.stderr).split()
    return f"wrk {words[1].split('/')[-1].split('-')[0]}" if len(words) > 1 else "wrk"


def generate(
    url: str,
    token: str | None,
    seconds: float,
    *,
    connections: int = 16,
    threads: int = 2,
    rate: float = 0.0,
) -> Load:
    """Load `url` for `seconds` over `connections` keep-alive connections. With `rate` (requests
    per second, all connections together) requests are sent on a schedule — a connection that
    is free waits for the next send time — so at most `rate` requests/s are offered; without
    it each connection sends its next request as soon as the previous answer is in."""
    if shutil.which("wrk"):
        return _wrk(url, token, seconds, connections, threads, rate)
    return _python(url, token, seconds, connections, threads, rate)


def _wrk(url: str, token: str | None, seconds: float, connections: int, threads: int, rate: float) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT)
    interval_ms = threads * 1000 / rate if rate else 0.0  # between the sends of one wrk thread
    env = {**os.environ, "BENCH_TOKEN": token or "", "BENCH_INTERVAL_MS": str(interval_ms)}
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", script.name]
    try:
        done = subprocess.run(
            [*command, url], env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
        )
    finally:
        os.unlink(script.name)
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))
    raw = json.loads(line[len("BENCH ") :])
    return Load(
        raw["requests"],
        raw["duration_us"] / 1e6,
        raw["p50_us"] / 1e6,
        raw["p99_us"] / 1e6,
        raw["errors"] + raw["non2xx"],
    )


def _python(
    url: str, token: str | None, seconds: float, connections: int, processes: int, rate: float
) -> Load:
    per_process = [connections // processes + (i < connections % processes) for i in range(processes)]
    started = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        jobs = [(url, token, seconds, n, rate * n / connections) for n in per_process]
        parts = list(pool.map(_python_process, jobs))
    elapsed = time.perf_counter() - started
    latencies = sorted(x for part, _ in parts for x in part)
    errors = sum(e for _, e in parts)
    if not latencies:
        return Load(0, elapsed, 0.0, 0.0, errors)
    return Load(
        len(latencies),
        elapsed,
        latencies[len(latencies) // 2],
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        errors,
    )


def _python_process(job: tuple[str, str | None, float, int, float]) -> tuple[list[float], int]:
    url, token, seconds, connections, rate = job
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def connection() -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        mine: list[float] = []
        failed = 0
        interval = connections / rate if rate else 0.0  # this connection's share of the schedule
        slot = time.perf_counter()
        while time.perf_counter() < deadline:
            if interval:
                now = time.perf_counter()
                slot = max(slot + interval, now - 1.0)  # catch up on at most 1 s of missed sends
                time.sleep(max(0.0, slot - now))
            began = time.perf_counter()
            try:
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                conn.close()
                ok = False
            mine.append(time.perf_counter() - began)
            failed += not ok
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    workers = [threading.Thread(target=connection) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, errors[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds used so far by the live processes of process group `pgid`."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Probe:
    """What must answer 200 (with `expect` in the body) before a server counts as started."""

    url: str
    headers: Mapping[str, str]
    expect: str
    timeout_s: float = 120.0


@contextmanager
def serving(command: list[str], env: Mapping[str, str], probe: Probe, log: Path) -> Iterator[int]:
    """Run `command` as a server until the block ends; yields its process group id."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_ready(process, probe, log)
        yield process.pid
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], probe: Probe, log: Path) -> None:
    deadline = time.monotonic() + probe.timeout_s
    last = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}): {_tail(log)}")
        try:
            request = urllib.request.Request(probe.url, headers=dict(probe.headers))
            with urllib.request.urlopen(request, timeout=5) as response:
                body = response.read().decode("utf-8", "replace")
            if probe.expect in body:
                return
            last = f"unexpected answer: {body[:200]}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:200]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise RuntimeError(
        f"the server did not answer {probe.url} in {probe.timeout_s:.0f} s ({last}): {_tail(log)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with suppress(ProcessLookupError):  # whatever is left of the group (workers of a killed supervisor)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(log: Path, size: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def describe(load: Load) -> dict[str, Any]:
    return {"requests_per_s": load.per_s, "p50_s": load.p50_s, "p99_s": load.p99_s, "errors": load.errors}
