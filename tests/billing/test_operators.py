"""What operators do with packs and payments: the `packs` command, the
admin (filters, CSV, read-only payments) and /api/admin/payments/."""

from __future__ import annotations

import csv
import io

import pytest
from rest_framework.test import APIClient

from billing.models import CreditPack, Payment
from tests.commands import manage
from tests.endpoint.roles import full_staff, make_user


def test_packs_are_created_listed_and_taken_off_sale_from_the_command_line(db):
    code, out, _ = manage("packs", "create", "-n", "Starter", "-c", "1000", "-p", "4.99")
    pack = CreditPack.objects.get()
    assert code == 0 and (pack.credits, pack.amount, pack.currency, pack.active) == (1000, 499, "usd", True)
    assert "4.99 USD" in out
    manage("packs", "create", "-n", "Yen", "-c", "10", "-p", "500", "--currency", "JPY")
    assert CreditPack.objects.get(name="Yen").amount == 500  # yen have no cents
    assert manage("packs", "disable", str(pack.pk))[0] == 0
    _, listed, _ = manage("packs", "list")
    assert "Starter" in listed and "no" in listed and not CreditPack.objects.on_sale().filter(pk=pack.pk).exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["-c", "0", "-p", "5"], "credits must be from 1"),
        (["-c", "10", "-p", "4.999"], "too many decimals"),
        (["-c", "10", "-p", "free"], "the price must be a number"),
        (["-c", "10", "-p", "5", "--currency", "dollars"], "three-letter code"),
    ],
)
def test_a_bad_pack_is_one_error_line_and_nothing_is_created(db, args, error):
    code, _, err = manage("packs", "create", "-n", "Bad", *args)
    assert code == 1 and err.startswith("Error: ") and error in err
    assert not CreditPack.objects.exists()


@pytest.fixture
def payments(started, pack):
    Payment.objects.filter(pk=started.pk).update(status=Payment.SUCCEEDED)
    failed = Payment.objects.create(
        user=started.user, key=started.key, pack=pack, credits=10, amount=100, currency="usd", status=Payment.FAILED
    )
    return started, failed


def test_the_admin_filters_payments_exports_them_as_csv_and_never_edits_them(client, payments):
    client.force_login(full_staff("ops"))
    page = client.get("/admin/billing/payment/?status__exact=succeeded")
    assert page.status_code == 200 and payments[0].stripe_payment_intent in page.text
    assert "Export CSV" in page.text
    export = client.get("/admin/billing/payment/export/?status__exact=succeeded")
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert export["Content-Type"].startswith("text/csv") and len(rows) == 2
    assert rows[1][rows[0].index("stripe_payment_intent")] == payments[0].stripe_payment_intent
    assert rows[1][rows[0].index("user__email")] == "buyer@example.com"
    assert client.get("/admin/billing/payment/add/").status_code == 403
    change = client.post(f"/admin/billing/payment/{payments[0].pk}/change/", {"status": "refunded"})
    assert change.status_code == 403 or Payment.objects.get(pk=payments[0].pk).status == Payment.SUCCEEDED


def test_the_api_lists_payments_for_staff_only(payments):
    staff = APIClient()
    staff.force_authenticate(full_staff("ops"))
    listed = staff.get("/api/admin/payments/", {"status": "failed"})
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["results"]] == [payments[1].pk]
    one = staff.get(f"/api/admin/payments/{payments[0].pk}/").json()
    assert one["user"] == "buyer@example.com" and one["price"] == "5.00 USD" and one["status"] == "succeeded"
    assert staff.get("/api/admin/payments/", {"status": "nonsense"}).status_code == 400

    user = APIClient()
    user.force_authenticate(make_user("someone"))
    assert user.get("/api/admin/payments/").status_code == 403


def test_stripe_secrets_are_stored_encrypted_and_only_shown_masked(db):
    from endpoint.core.models import EndpointConfig

    secret = "sk_test_" + "s3cr3t" * 6
    code, out, _ = manage("config", "set", "stripe_secret_key", secret)
    assert code == 0 and secret not in out
    row = EndpointConfig.load()
    assert row.stripe_secret_key == secret and secret not in row.stripe_secret_key_encrypted
    _, shown, _ = manage("config", "get")
    assert secret not in shown and "stripe_secret_key" in shown
    code, _, err = manage("config", "set", "stripe_webhook_secret", "sk_test_wrong_kind")
    assert code == 1 and "whsec_" in err
    code, _, err = manage("config", "set", "stripe_publishable_key", secret)
    assert code == 1 and secret not in err  # a secret key pasted in the public field is refused, not echoed
