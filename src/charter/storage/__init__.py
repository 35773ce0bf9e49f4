"""Persistence: the SQL schema and store (SQLite and PostgreSQL), migrations, the ledger, blobs."""
