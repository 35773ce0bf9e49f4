"""`charter dataset …` commands."""

from __future__ import annotations

import typer

dataset_app = typer.Typer(help="The dataset registry.", no_args_is_help=True)
