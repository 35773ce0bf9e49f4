"""The remote client's table of operation signatures is the service methods' signatures, and its
result types are the very classes the server encodes."""

from __future__ import annotations

import sys

from charter.api.operations import OPERATIONS
from charter.api.signatures import signature_of
from charter.client import signature_table
from charter.client.signatures import client_signature, table_data


def test_the_table_is_current() -> None:
    names, rows = table_data()
    message = (
        "the service signatures changed: python -m charter.client.signatures > "
        "src/charter/client/signature_table.py && ruff format src/charter/client/signature_table.py"
    )
    assert names == signature_table.RESULT_TYPES, message
    assert rows == signature_table.SIGNATURES, message


def test_every_operation_binds_and_decodes_as_the_server_reads_it() -> None:
    for operation in OPERATIONS:
        server, client = signature_of(operation), client_signature(operation.name)
        assert client.operation == operation
        assert client.positional == server.positional
        assert client.path == tuple(p.name for p in server.path)
        assert client.accepted == {p.name for p in server.all}
        assert client.returns == server.returns, operation.name


def test_the_prompt_results_do_not_import_storage() -> None:
    import subprocess

    probe = (
        "import sys; from charter.client.signatures import client_signature; "
        "[client_signature(f'prompts.{m}') for m in ('list', 'show', 'diff', 'get', 'versions')]; "
        "print('sqlalchemy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
