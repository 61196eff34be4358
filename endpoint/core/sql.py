"""Names for hand-written SQL, read from the models so a renamed field or
table changes the statement with it. The statements themselves sit next to
the writes that run them (keys/credits.py, logs/services.py); each has a test
that runs it against PostgreSQL (tests/keys/test_statements.py,
tests/logs/test_statements.py)."""

from __future__ import annotations


def table(model) -> str:
    return model._meta.db_table


def column(model, field: str) -> str:
    return model._meta.get_field(field).column


def columns(model, fields: list[str] | tuple[str, ...]) -> str:
    return ", ".join(column(model, field) for field in fields)
