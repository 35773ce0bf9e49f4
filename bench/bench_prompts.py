"""The prompt library at scale: 200 prompts × 50 versions on SQLite.

    python -m bench.bench_prompts [--quick]

The library is built the real way: a folder of 200 prompt files synced 50 times, each time with
every template changed (so 10,000 versions), then the last version of every prompt promoted to
development and every tenth one to staging. Measured:

- the CLI's wall time (a new process each time, as a user runs it) and instructions (callgrind)
  for `prompt list`, `prompt show`, `prompt diff`, each as a table and with `--json` (targets: well
  under a second; issue 4, session 5: ≤ 1.5 G instructions and a wall median ≤ 0.5 s at low load),
  beside `charter user list`, the start-up and store-opening cost every command pays, and the
  baselines `python -c pass` and `python -c "import sqlalchemy"` measured in the same run; then the
  same three commands as a remote client (CHARTER_URL/CHARTER_TOKEN) of `charter server` on
  loopback over the same store. Each embedded command is measured twice: in the environment as
  given (with PYTHONDONTWRITEBYTECODE=1, as on the project's machines, charter's own modules are
  compiled from source on every run: an editable install that never wrote `__pycache__`), and with
  a bytecode cache (PYTHONPYCACHEPREFIX under the work folder, written by a first run), which is
  what an installed wheel, or any install that may write bytecode, runs with;
- `reg.prompts.get("NAME@development")` in-process, from the SDK cache (target: median ≤ 5 µs) and
  uncached, with the cache switched off, from SQLite (target: median ≤ 300 µs).

`--quick` builds 20 prompts × 5 versions and times fewer runs. With CHARTER_BENCH_BEFORE set to the
`src` folder of another checkout (`git archive COMMIT src | tar -x -C DIR`), every embedded command
is also run with that code (PYTHONPATH), interleaved with this one, for before/after figures of
the same run (`*_before` fields).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODEL_SPEC = {
    "family": "claude",
    "provider": "anthropic",
    "provider_model": "claude-sonnet-4-5-20250929",
    "serving": {"temperature": 0.2},
}

PROMPT = """\
name: {name}
description: Benchmark prompt {index}
tags: [bench, team-{team}]
model: m@1.0.0
params: {{temperature: 0.{round}, max_tokens: {tokens}}}
variables:
  ticket: string
  customer: {{type: string, default: there}}
  words: {{type: integer, default: 80}}
template: |
  You are a support assistant for team {team}. Revision {round}.
  Greet {{{{ customer }}}} and summarise the ticket below in at most {{{{ words }}}} words.
  Keep the customer's own words where you can; never invent facts.

  Ticket:
  {{{{ ticket }}}}
tests:
  - {{kind: contains, value: "Ticket"}}
  - {{kind: max_length, value: 4000}}
  - {{kind: not_contains, value: "As an AI"}}
"""


def _write_round(folder: Path, prompts: int, round_: int) -> None:
    for i in range(prompts):
        text = PROMPT.format(name=f"p{i:03d}", index=i, team=i % 7, round=round_, tokens=200 + round_)
        (folder / f"p{i:03d}.prompt.yaml").write_text(text)


def _build(home: Path, prompts: int, versions: int) -> dict[str, Any]:
    import charter
    from charter.config import Settings
    from charter.service.setup import init_store

    if home.exists():
        shutil.rmtree(home)
    init_store(Settings.for_home(home, user="bench"))
    folder = home.parent / "prompt-files"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    with charter.open(str(home), user="bench") as reg:
        reg.models.register("m", MODEL_SPEC)
        for round_ in range(1, versions + 1):
            _write_round(folder, prompts, round_)
            reg.prompts.sync(folder)
        sync_seconds = time.perf_counter() - started
        for i in range(prompts):
            reg.prompts.promote(f"p{i:03d}-v{versions}", to="development")
            if i % 10 == 0:
                reg.prompts.promote(f"p{i:03d}-v{versions}", to="staging")
    return {"sync_seconds": sync_seconds, "versions": prompts * versions}


def _instructions(command: list[str], env: dict[str, str]) -> int | None:
    """User-space instructions the command executes, counted by valgrind's callgrind: unlike wall
    time this does not depend on what else the machine is doing (None without valgrind)."""
    if shutil.which("valgrind") is None:
        return None
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    return int(found.group(1)) if found else None


def _cli_median(args: list[str], env: dict[str, str], runs: int) -> float:
    charter = str(Path(sys.executable).with_name("charter"))
    return _median([charter, *args], env, runs)


def _median(command: list[str], env: dict[str, str], runs: int) -> float:
    return _medians([(command, env)], runs)[0]


def _medians(variants: list[tuple[list[str], dict[str, str]]], runs: int) -> list[float]:
    """Median wall seconds of each (command, environment), the variants run in turn."""
    samples: list[list[float]] = [[] for _ in variants]
    for _ in range(runs):
        for (command, env), times in zip(variants, samples, strict=True):
            started = time.perf_counter()
            subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
    return [statistics.median(times) for times in samples]


def _cached(env: dict[str, str], workdir: Path) -> dict[str, str]:
    """`env` with a bytecode cache of its own (every module's .pyc under the work folder)."""
    cached = {**env, "PYTHONPYCACHEPREFIX": str(workdir / "pycache")}
    cached.pop("PYTHONDONTWRITEBYTECODE", None)
    return cached


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _embedded_rows(
    env: dict[str, str], workdir: Path, runs: int, size: str, last: str, versions: int
) -> list[dict[str, Any]]:
    """Each embedded prompt read, as a table and as JSON, with and without a bytecode cache, with
    the baselines of the same run: the interpreter alone and `import sqlalchemy`."""
    cli = str(Path(sys.executable).with_name("charter"))
    cached = _cached(env, workdir)
    commands = {
        "list": ["prompt", "list"],
        "show": ["prompt", "show", f"{last}@development"],
        "diff": ["prompt", "diff", f"{last}-v1", f"{last}-v{versions}"],
    }
    for args in commands.values():  # writes the cache
        subprocess.run([cli, *args], check=True, env=cached, stdout=subprocess.DEVNULL)
    python = {
        "pass": [sys.executable, "-c", "pass"],
        "sqlalchemy": [sys.executable, "-c", "import sqlalchemy"],
    }
    for command in python.values():
        subprocess.run(command, check=True, env=cached, stdout=subprocess.DEVNULL)
    given = "PYTHONDONTWRITEBYTECODE=" + env.get("PYTHONDONTWRITEBYTECODE", "(unset)")
    baselines = {
        f"{name}_{key}": value
        for name, command in python.items()
        for key, value in (
            ("median_s", _median(command, cached, runs)),
            ("instructions", _instructions(command, cached)),
        )
    }
    rows: list[dict[str, Any]] = [
        {"name": "prompts: baselines (bytecode cached)", "runs": runs, "load_avg": _load(), **baselines}
    ]
    before_src = os.environ.get("CHARTER_BENCH_BEFORE")
    variants: dict[str, tuple[dict[str, str], dict[str, str]]] = {"": (cached, env)}
    if before_src:
        before = str(Path(before_src).absolute())
        variants["_before"] = ({**cached, "PYTHONPATH": before}, {**env, "PYTHONPATH": before})
        for args in commands.values():
            subprocess.run([cli, *args], check=True, env=variants["_before"][0], stdout=subprocess.DEVNULL)
    for label, base in commands.items():
        for args in (base, [*base, "--json"]):
            command = [cli, *args]
            row: dict[str, Any] = {"name": f"prompts: CLI {' '.join(['prompt', label, *args[len(base) :]])}"}
            for cache, index in (("", 0), ("_no_cache", 1)):
                medians = _medians([(command, v[index]) for v in variants.values()], runs)
                for suffix, median, v in zip(variants, medians, variants.values(), strict=True):
                    row[f"median_s{cache}{suffix}"] = median
                    row[f"instructions{cache}{suffix}"] = _instructions(command, v[index])
            row.update(
                runs=runs,
                load_avg=_load(),
                notes=f"{size}, SQLite, a new process per run; median_s/instructions with a bytecode "
                f"cache, *_no_cache in the environment as given ({given})"
                + (f"; *_before: the code in {before_src}, runs interleaved" if before_src else ""),
            )
            rows.append(row)
    return rows


def _per_call_median(call: Any, refs: list[str], calls: int, batch: int) -> float:
    """Median seconds per call, over batches of `batch` calls cycling through `refs`."""
    medians = []
    for start in range(0, calls, batch):
        chosen = [refs[(start + j) % len(refs)] for j in range(batch)]
        began = time.perf_counter()
        for ref in chosen:
            call(ref)
        medians.append((time.perf_counter() - began) / batch)
    return statistics.median(medians)


def _remote_rows(
    home: Path, workdir: Path, env: dict[str, str], runs: int, size: str, last: str, versions: int
) -> list[dict[str, Any]]:
    """The same commands with CHARTER_URL/CHARTER_TOKEN against `charter server` on loopback (one
    worker, on the same store): the client's own time and instructions; the server's are not counted."""
    import charter
    from bench.httpload import Probe, free_port, serving

    with charter.open(str(home), user="bench") as reg:
        token = reg.tokens.create("bench", name="bench-prompts").secret
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "charter", "server", "--port", str(port), "--no-jobs"]
    command += ["--log-level", "warning"]
    probe = Probe(f"{base}/api/v1/prompt-versions/{last}", {"Authorization": f"Bearer {token}"}, last)
    client = {**env, "CHARTER_URL": base, "CHARTER_TOKEN": token, "CHARTER_HOME": str(workdir / "no-store")}
    cli = str(Path(sys.executable).with_name("charter"))
    rows = []
    with serving(command, env, probe, workdir / "prompts-server.log"):
        for label, args in (
            ("list", ["prompt", "list", "--json"]),
            ("show", ["prompt", "show", f"{last}@development", "--json"]),
            ("diff", ["prompt", "diff", f"{last}-v1", f"{last}-v{versions}", "--json"]),
        ):
            rows.append(
                {
                    "name": f"prompts: remote CLI prompt {label}",
                    "median_s": _cli_median(args, client, runs),
                    "runs": runs,
                    "instructions": _instructions([cli, *args], client),
                    "notes": f"{size}, CHARTER_URL to `charter server` on loopback; client process only",
                }
            )
    return rows


def run(workdir: Path, quick: bool) -> list[dict[str, Any]]:
    import charter

    prompts, versions = (20, 5) if quick else (200, 50)
    runs = 3 if quick else 9
    home = workdir / "prompts-store"
    built = _build(home, prompts, versions)
    env = {**os.environ, "CHARTER_HOME": str(home), "CHARTER_USER": "bench"}
    env.pop("CHARTER_DATABASE_URL", None)
    size = f"{prompts} prompts × {versions} versions"
    last = f"p{prompts // 2:03d}"
    rows: list[dict[str, Any]] = [
        {
            "name": "prompts: sync the library",
            "seconds": built["sync_seconds"],
            "versions": built["versions"],
            "notes": f"{versions} syncs of a {prompts}-file folder, every template changed each time",
        }
    ]
    cli = str(Path(sys.executable).with_name("charter"))
    rows.append(
        {
            "name": "prompts: CLI baseline (charter user list)",
            "median_s": _cli_median(["user", "list", "--json"], env, runs),
            "runs": runs,
            "instructions": _instructions([cli, "user", "list", "--json"], env),
            "python_pass_instructions": _instructions([sys.executable, "-c", "pass"], env),
            "sqlalchemy_import_instructions": _instructions([sys.executable, "-c", "import sqlalchemy"], env),
            "notes": "the cost every command pays to start and open the store, for comparison",
        }
    )
    rows += _embedded_rows(env, workdir, runs, size, last, versions)
    rows += _remote_rows(home, workdir, env, runs, size, last, versions)
    refs = [f"p{i:03d}@development" for i in range(prompts)]
    with charter.open(str(home), user="bench") as reg:
        service = reg.prompts
        for ref in refs:
            service.get(ref)  # warm: every ref cached
        calls = 20_000 if quick else 200_000
        cached = _per_call_median(service.get, refs, calls, 1000)
        service.configure_cache(ttl=0)
        uncached_calls = 500 if quick else 5000
        uncached = _per_call_median(service.get, refs, uncached_calls, 50)
    rows.append(
        {
            "name": "prompts: SDK get, cached",
            "median_s": cached,
            "runs": calls,
            "notes": f"reg.prompts.get('NAME@development') from the in-process cache; target ≤ 5 µs; {size}",
        }
    )
    rows.append(
        {
            "name": "prompts: SDK get, uncached (SQLite)",
            "median_s": uncached,
            "runs": uncached_calls,
            "notes": f"cache off (ttl=0): one read transaction per call; target ≤ 300 µs; {size}",
        }
    )
    return rows


if __name__ == "__main__":
    for row in run(Path("bench/.work"), "--quick" in sys.argv):
        print(row)
