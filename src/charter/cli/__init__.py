"""The command line: Typer commands that parse, call the service, and render."""
