"""`charter model …` commands."""

from __future__ import annotations

import typer

model_app = typer.Typer(help="The model registry.", no_args_is_help=True)
