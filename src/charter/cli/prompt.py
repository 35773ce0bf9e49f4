"""`charter prompt …` commands."""

from __future__ import annotations

import typer

prompt_app = typer.Typer(help="The prompt library.", no_args_is_help=True)
