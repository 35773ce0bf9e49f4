"""Lake tables from the command line, and over real HTTP: the server opens tables only under the
folders CHARTER_LAKE_ROOTS allows (object-store URIs need none)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from charter.api.guards import lake_table_under_roots
from charter.client.remote import RemoteRegistry
from charter.clock import ManualClock
from charter.config import Settings
from charter.errors import PermissionDenied
from charter.service.registry import Registry
from tests.cli_runner import Cli
from tests.intel_fixtures import cli  # noqa: F401  (fixture)
from tests.lake_tables import delta_table, iceberg_table, row_set, rows
from tests.remote_fixtures import serving


def test_add_show_and_checkout_an_iceberg_snapshot_from_the_cli(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    ice = iceberg_table(tmp_path / "ice")
    added = cli(
        "dataset", "add", "events", "--iceberg", ice.ref, "--snapshot", str(ice.first), "--role", "train"
    )
    assert added.code == 0, added.err
    assert "added events@1 (iceberg" in added.out and "300 rows" in added.out
    again = cli("dataset", "add", "events", "--iceberg", ice.ref, "--role", "train", "--json")
    assert again.code == 0 and again.json()["version"]["ref"] == "events@2"
    assert again.json()["version"]["row_count"] == 400
    shown = cli("dataset", "show", "events@1", "--json").json()
    assert shown["kind"] == "iceberg" and shown["sources"][0].endswith(f"?snapshot={ice.first}")
    out = cli("dataset", "checkout", "events@1", str(tmp_path / "out"), "--json")
    assert out.code == 0 and out.json()["verified"]
    assert row_set(pq.read_table(tmp_path / "out" / "table.parquet")) == row_set(rows(0, 300))
    profile = cli("dataset", "profile", "events@1", "--json")
    assert profile.code == 0 and profile.json()["rows"] == 300


def test_a_delta_table_version_from_the_cli(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    path = delta_table(tmp_path)
    added = cli(
        "dataset", "add", "deltas", "--delta", str(path), "--table-version", "0", "--role", "eval", "--json"
    )
    assert added.code == 0 and added.json()["version"]["row_count"] == 250
    unchanged = cli(
        "dataset", "add", "deltas", "--delta", str(path), "--table-version", "0", "--role", "eval"
    )
    assert unchanged.code == 0 and "unchanged" in unchanged.out


@pytest.mark.parametrize(
    ("arguments", "code", "says"),
    [
        (["--iceberg", "catalog.db"], 1, "CATALOG_URI#NAMESPACE.TABLE"),
        (["--iceberg", "{catalog}#lake.nope"], 3, "not found"),
        (["--iceberg", "{catalog}#lake.events", "--snapshot", "7"], 3, "snapshot 7"),
        (["--delta", "{tmp}/nowhere"], 3, "_delta_log"),
        (["{tmp}", "--delta", "{tmp}/nowhere"], 2, "not both"),
        ([], 2, "give a file or folder"),
    ],
)
def test_bad_references_from_the_cli_exit_non_zero_without_a_trace(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
    arguments: list[str],
    code: int,
    says: str,
) -> None:
    ice = iceberg_table(tmp_path / "ice")
    filled = [a.format(catalog=ice.catalog, tmp=tmp_path) for a in arguments]
    result = cli("dataset", "add", "events", *filled, "--role", "train")
    assert result.code == code
    assert says in result.out + result.err and "Traceback" not in result.out + result.err
    assert cli("dataset", "list", "--json").json() == []


def test_the_api_guard_lets_object_store_uris_through_and_only_allowed_catalog_services() -> None:
    settings = Settings.for_home("/tmp/charter-guard", user="admin")
    lake_table_under_roots({"delta": "s3://bucket/events", "iceberg": None}, settings)
    lake_table_under_roots({"iceberg": "gs://bucket/warehouse#lake.events"}, settings)
    for service in (
        "https://catalog.example/api#lake.events",
        "postgresql://ops@10.0.0.5:5432/catalog#lake.events",
        "http://169.254.169.254/latest#lake.events",
    ):
        with pytest.raises(PermissionDenied, match="CHARTER_LAKE_CATALOGS"):
            lake_table_under_roots({"iceberg": service}, settings)
    allowed = dataclasses.replace(settings, lake_catalogs=("https://catalog.example/",))
    lake_table_under_roots({"iceberg": "https://catalog.example/api#lake.events"}, allowed)
    with pytest.raises(PermissionDenied):
        lake_table_under_roots({"iceberg": "https://catalog.example.evil/api#lake.events"}, allowed)
    with pytest.raises(PermissionDenied, match="CHARTER_LAKE_ROOTS"):
        lake_table_under_roots({"delta": "file:///srv/tables/events"}, settings)


@pytest.fixture
def remote(
    registry: Registry, settings: Settings, clock: ManualClock, tmp_path: Path
) -> Iterator[RemoteRegistry]:
    """A server whose operator allowed lake tables under tmp_path/allowed."""
    token = registry.tokens.create("admin", name="lake").secret
    allowed = dataclasses.replace(settings, lake_roots=(tmp_path / "allowed",))
    with serving(allowed, clock=clock, web=False) as url:
        client = RemoteRegistry(url, token)
        yield client
        client.http.close()


def test_over_http_the_server_opens_tables_only_under_the_allowed_roots(
    remote: RemoteRegistry, registry: Registry, tmp_path: Path
) -> None:
    inside = delta_table(tmp_path / "allowed")
    outside = delta_table(tmp_path / "elsewhere")
    ice = iceberg_table(tmp_path / "elsewhere" / "ice")
    events = len(registry.audit.log())
    with pytest.raises(PermissionDenied, match="CHARTER_LAKE_ROOTS") as refused:
        remote.datasets.add_table("deltas", delta=str(outside), role="train")
    assert str(outside) in refused.value.message
    with pytest.raises(PermissionDenied, match="CHARTER_LAKE_ROOTS"):
        remote.datasets.add_table("events", iceberg=ice.ref, role="train")
    with pytest.raises(PermissionDenied):  # a symbolic link out of the root does not help
        (tmp_path / "allowed" / "link").symlink_to(outside)
        remote.datasets.add_table("deltas", delta=str(tmp_path / "allowed" / "link"), role="train")
    widened = remote.http.post(  # the roots are the operator's: a caller cannot name its own
        "/datasets/deltas/tables", json={"delta": str(outside), "role": "train", "confine_to": ["/"]}
    )
    assert widened.status_code == 400 and "confine_to" in widened.text
    # a catalog under the root whose table keeps its files elsewhere on the server
    spread = iceberg_table(tmp_path / "allowed" / "ice", warehouse=tmp_path / "elsewhere" / "warehouse")
    with pytest.raises(PermissionDenied, match="reads file:///") as outside_files:
        remote.datasets.add_table("events", iceberg=spread.ref, role="train")
    assert str(tmp_path / "elsewhere" / "warehouse") in outside_files.value.message
    assert len(registry.audit.log()) == events and registry.datasets.list() == []
    inside_ice = iceberg_table(tmp_path / "allowed" / "ice2")
    assert remote.datasets.add_table("events", iceberg=inside_ice.ref, role="train").version.row_count == 400
    added = remote.datasets.add_table("deltas", delta=str(inside), table_version=0, role="train")
    assert added.created and added.version.kind == "delta" and added.version.row_count == 250
    report = remote.datasets.checkout("deltas@1", tmp_path / "out")  # read on the client's side
    assert report.verified
    assert row_set(pq.read_table(tmp_path / "out" / "table.parquet")) == row_set(rows(0, 250))
