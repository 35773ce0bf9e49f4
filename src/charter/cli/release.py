"""`charter release …`: immutable, content-addressed bundles of model, prompts and parameters."""

from __future__ import annotations

from typing import Any

import typer

from charter.cli.context import registry
from charter.cli.output import JsonFlag, emit, fields, say, table

release_app = typer.Typer(
    help="Releases: model version + prompt versions + parameter overrides, named by their digest.",
    no_args_is_help=True,
)


def _params(items: list[str]) -> dict[str, Any]:
    import yaml

    from charter.errors import InvalidInput

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--param {item!r} is not KEY=VALUE; for example temperature=0.3")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise InvalidInput(
                f"--param {item!r}: the value is not valid (a number, text, true/false, a list)"
            ) from None
    return out


def _show(release: Any) -> None:
    fields(
        [
            ("release", release.digest),
            ("slot", release.slot),
            ("model", release.model),
            ("prompts", ", ".join(release.prompts) or "-"),
            ("overrides", ", ".join(f"{k}={v}" for k, v in release.params.items()) or "-"),
            ("retrieval index", release.retrieval_index or "-"),
            ("app version", release.app_version or "-"),
            ("created", f"{release.created_at.isoformat(timespec='seconds')} by {release.created_by}"),
        ]
    )
    rows = [
        (prompt, key, value["value"], value["source"])
        for prompt, values in release.effective_params.items()
        for key, value in values.items()
    ]
    table("effective parameters (release > prompt > model)", ["prompt", "parameter", "value", "from"], rows)


@release_app.command("create")
def create(
    slot: str = typer.Argument(..., help="The slot the release is for."),
    model: str = typer.Option(..., "--model", help="NAME@X.Y.Z (an alias is resolved now and pinned)."),
    prompt: list[str] = typer.Option([], "--prompt", help="NAME-vN; repeatable."),
    param: list[str] = typer.Option([], "--param", help="Parameter override KEY=VALUE; repeatable."),
    retrieval_index: str = typer.Option(None, "--retrieval-index", help="The retrieval index, DATASET@N."),
    app_version: str = typer.Option(None, "--app-version", help="The application's git SHA or tag."),
    json_out: bool = JsonFlag,
) -> None:
    """Create a release (author role). The same bundle again returns the same release."""
    release = registry().releases.create(
        slot,
        model=model,
        prompts=prompt,
        params=_params(param),
        retrieval_index=retrieval_index,
        app_version=app_version,
    )
    emit(
        release,
        json_out,
        lambda: say(
            f"release {release.digest} ({release.model}, {', '.join(release.prompts) or 'no prompts'})"
        ),
    )


@release_app.command("show")
def show(
    ref: str = typer.Argument(..., help="A release digest or a unique prefix of ≥ 8 characters."),
    json_out: bool = JsonFlag,
) -> None:
    """Show a release with its effective parameters and where each value comes from."""
    release = registry().releases.get(ref)
    emit(release, json_out, lambda: _show(release))


@release_app.command("list")
def list_releases(slot: str, json_out: bool = JsonFlag) -> None:
    """List a slot's releases, oldest first."""
    releases = registry().releases.list(slot)
    emit(
        releases,
        json_out,
        lambda: table(
            f"releases of {slot}",
            ["release", "model", "prompts", "overrides", "created", "by"],
            [
                (
                    r.digest[:12],
                    r.model,
                    ", ".join(r.prompts),
                    ", ".join(f"{k}={v}" for k, v in r.params.items()),
                    r.created_at.isoformat(timespec="seconds"),
                    r.created_by,
                )
                for r in releases
            ],
        ),
    )
