"""What a CLI command loads: the remote CLI never imports SQLAlchemy (nor httpx's own command line);
an embedded prompt read (`list`, `show`, `diff`) imports neither the PostgreSQL dialect, Alembic, the
other command groups, Rich, the blob store's packs, nor the prompt modules for writing (sync, lint,
validation runners); only `diff` loads the differ. Each probe runs the real CLI in a fresh
interpreter and reports `sys.modules` afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import charter
from charter.config import Settings
from charter.service.setup import init_store
from tests.remote_fixtures import serving
from tests.test_prompt_helpers import MODEL_SPEC, SUMMARIZE, prompt_yaml, write

WATCHED = (
    "sqlalchemy",
    "sqlalchemy.dialects.postgresql",
    "alembic",
    "jinja2",
    "charter.storage.schema",
    "charter.cli.model",
    "charter.cli.dataset",
    "click",  # Typer has its own copy; httpx's command line would import this one
    "pygments",
    "rich",  # `say` writes plain text itself
    "blake3",
    "charter.storage.packs",  # a local blob store sets up its packs when a blob is first read
    "charter.service.prompt_check",
    "charter.service.prompt_files",
    "charter.service.prompt_sync",
    "charter.service.prompt_validation",
    "charter.service.prompt_diff",
)

PROBE = f"""
import sys
from charter.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    if exc.code:
        raise
print("\\nloaded:", ",".join(m for m in {WATCHED!r} if m in sys.modules))
"""


def _loaded(env: dict[str, str], *args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith("loaded:"), done.stdout
    return {m for m in last.removeprefix("loaded:").strip().split(",") if m}


@pytest.fixture
def library(tmp_path: Path) -> Settings:
    """A SQLite store with two prompts, one of them in two versions."""
    settings = Settings.for_home(tmp_path / "store", user="alice")
    init_store(settings)
    folder = tmp_path / "prompts"
    write(folder, "summarize.prompt.yaml", SUMMARIZE)
    write(folder, "greet.prompt.yaml", prompt_yaml("greet"))
    with charter.open(str(settings.home), user="alice") as reg:
        reg.models.register("m", MODEL_SPEC)
        reg.prompts.sync(folder)
        write(folder, "greet.prompt.yaml", prompt_yaml("greet", "Hi {{ who }}!"))
        reg.prompts.sync(folder)
        reg.prompts.promote("greet-v2", to="development")
    return settings


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    return {**env, **extra}


COMMANDS = (
    ("prompt", "list", "--json"),
    ("prompt", "list"),
    ("prompt", "show", "greet@development", "--json"),
    ("prompt", "show", "greet"),
    ("prompt", "diff", "greet-v1", "greet-v2", "--json"),
    ("prompt", "diff", "greet-v1", "greet-v2"),
)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_embedded_prompt_command_loads_only_what_it_needs(
    library: Settings, args: tuple[str, ...]
) -> None:
    env = _env(CHARTER_HOME=str(library.home), CHARTER_USER="alice")
    differ = {"charter.service.prompt_diff"} if args[1] == "diff" else set()
    assert _loaded(env, *args) == {"sqlalchemy", "charter.storage.schema", *differ}


def test_the_remote_cli_never_imports_sqlalchemy(library: Settings, tmp_path: Path) -> None:
    with charter.open(str(library.home), user="alice") as reg:
        token = reg.tokens.create("alice", name="imports").secret
    with serving(library, web=False) as url:
        env = _env(CHARTER_URL=url, CHARTER_TOKEN=token, CHARTER_HOME=str(tmp_path / "nothing-here"))
        for args in COMMANDS:
            assert _loaded(env, *args) == set(), args


SDK_PROBE = """
import sys
import charter
reg = charter.open(url=sys.argv[1], token=sys.argv[2])
version = reg.prompts.get("greet@development")
assert version.ref == "greet-v2", version.ref
print(version.render(who="Ada"))
heavy = ("sqlalchemy", "alembic", "charter.storage.schema")
print("\\nloaded:" + ",".join(m for m in heavy if m in sys.modules))
"""


def test_the_remote_sdk_never_imports_sqlalchemy(library: Settings) -> None:
    """An application using a server does not pay for the embedded store's libraries."""
    with charter.open(str(library.home), user="alice") as reg:
        token = reg.tokens.create("alice", name="sdk").secret
    with serving(library, web=False) as url:
        done = subprocess.run(
            [sys.executable, "-c", SDK_PROBE, url, token],
            env=_env(),
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "Hi Ada!" in done.stdout
    assert done.stdout.rstrip("\n").rsplit("\n", 1)[-1] == "loaded:"


def test_a_group_command_builds_only_that_command() -> None:
    """`charter prompt list` converts one Typer command to Click, not the group's fourteen; the
    group's help, an unknown name or a bare group still get every command."""
    from typer.main import get_command

    from charter.cli.main import app_for
    from charter.cli.prompt import prompt_app

    def commands(*args: str) -> list[str]:
        built: Any = get_command(app_for(list(args)))
        return sorted(built.commands["prompt"].commands)

    everything = sorted(c.name for c in prompt_app.registered_commands if c.name)
    assert commands("prompt", "list", "--json") == ["list"]
    assert commands("prompt", "diff", "a", "b") == ["diff"]
    assert commands("prompt", "--help") == everything
    assert commands("prompt", "lst") == everything
    assert commands("prompt") == everything
    assert sorted(c.name for c in prompt_app.registered_commands if c.name) == everything  # not narrowed
