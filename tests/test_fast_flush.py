"""The tests' flush by DELETE (tests/fast_flush.py) still empties every
table, and still stands in for what Django's flush does on PostgreSQL."""

from __future__ import annotations

import inspect

from django.apps import apps
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.services import chat_account
from keys.credits import do_adjust_credits
from tests import fast_flush
from tests.factories import MinerResponseFactory, RequestLogFactory, UserFactory

# Tables kept, or filled again by flush's post_migrate signal.
REFILLED = {"auth.Permission", "contenttypes.ContentType", "sites.Site"}


def test_django_flushes_with_the_one_truncate_this_replaces():
    signature = inspect.signature(fast_flush.TRUNCATE)
    assert list(signature.parameters) == ["self", "style", "tables", "reset_sequences", "allow_cascade"]
    assert fast_flush.TRUNCATE(connection.ops, no_style(), ["a", "b"]) == ['TRUNCATE "a", "b";']
    assert connection.ops.sql_flush.__func__ is fast_flush.sql_flush_by_delete


def test_every_foreign_key_is_deferred_so_the_deletes_may_come_in_any_order(postgres):
    with connection.cursor() as cursor:
        cursor.execute("SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND NOT condeferred")
        assert cursor.fetchall() == []


def test_flush_empties_every_table_with_deletes(postgres):
    user = UserFactory()
    account = chat_account(user)
    do_adjust_credits(account.key, 5, actor="test", reason="a ledger row")
    MinerResponseFactory(request=RequestLogFactory(key=account.key))
    with CaptureQueriesContext(connection) as queries:
        # As TransactionTestCase ends a test (pytest-django sets no available_apps).
        call_command("flush", interactive=False, verbosity=0, reset_sequences=False, allow_cascade=False)
    statements = [query["sql"] for query in queries.captured_queries]
    assert any(sql.startswith("DELETE FROM") for sql in statements)
    assert not any("TRUNCATE" in sql for sql in statements)
    for model in apps.get_models(include_auto_created=True):
        if model._meta.label not in REFILLED:
            assert not model._base_manager.exists(), model
