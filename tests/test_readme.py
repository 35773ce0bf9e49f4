"""The README's quickstart runs as written, from an empty folder, and does what it says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _quickstart() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Quickstart") :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README.md has no quickstart block"
    return "\n".join(line for line in match.group(1).splitlines() if not line.startswith("source "))


def test_the_quickstart_works(tmp_path: Path) -> None:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "CHARTER_USER": "ada"}
    env.pop("CHARTER_HOME", None)
    env.pop("CHARTER_DATABASE_URL", None)
    subprocess.run([f"{bindir}/charter", "init"], cwd=tmp_path, env=env, check=True, capture_output=True)
    done = subprocess.run(
        ["bash", "-c", _quickstart()], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "Traceback" not in out
    assert "promoted support-llm@1.0.0 to production" in out
    assert "registered support-llm@1.0.1" in out
    assert "refused: not pinned (exit 4)" in out
    assert "ledger verified" in out
