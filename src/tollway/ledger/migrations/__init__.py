"""Alembic migrations for the ledger, run in code by `Database.migrate()`."""
