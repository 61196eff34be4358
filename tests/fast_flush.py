"""Flush by DELETE: tests that run in transactions of their own (live
servers, subprocesses, async code) end with Django's flush, which on
PostgreSQL is one TRUNCATE of every table: ~200 ms a test, most of it making
new files for tables that hold a few rows. DELETE empties them in a few ms.
Django's foreign keys on PostgreSQL are INITIALLY DEFERRED, and flush runs
its statements in one transaction, so the order of the tables doesn't matter.
Content types and permissions are kept: flush's post_migrate signal would
write the same rows again (~100 ms), and nothing in the tests changes them.
``tests/test_fast_flush.py`` fails if Django's flush or its keys change.
"""

from __future__ import annotations

from django.db.backends.postgresql.operations import DatabaseOperations

TRUNCATE = DatabaseOperations.sql_flush
KEPT = {"django_content_type", "auth_permission"}


def sql_flush_by_delete(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    if reset_sequences or allow_cascade:  # what only TRUNCATE does
        return TRUNCATE(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    return [
        f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};"
        for table in tables
        if table not in KEPT
    ]


def install() -> None:
    DatabaseOperations.sql_flush = sql_flush_by_delete
