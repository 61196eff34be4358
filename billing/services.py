"""Buying credits: starting a card payment, and what Stripe's webhook events
do to it. Credits move only here, through the keys ledger, and only on the
webhook's word: once when the payment succeeds, and back (in proportion)
when it is refunded or disputed, whatever order the events arrive in."""

from __future__ import annotations

import logging
import re

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from chat.services import chat_account
from endpoint.core.errors import ApiError, BillingInputError
from keys.credits import do_book_payment
from keys.models import CreditEntry

from . import stripe_api
from .models import CreditPack, Payment, StripeEvent

log = logging.getLogger(__name__)
CARD_TOKEN = re.compile(r"^tok_[A-Za-z0-9_]{1,200}$")


def do_start_payment(user, pack_id: object, token: object) -> tuple[Payment, stripe_api.Intent]:
    """Charge the card of ``token`` (Stripe.js's) for pack ``pack_id``, for
    ``user``'s chat balance. The payment is recorded first, so the webhook
    always finds it."""
    pack = CreditPack.objects.on_sale().filter(pk=pack_id).first() if str(pack_id).isdigit() else None
    if pack is None:
        raise BillingInputError("That credit pack is not on sale; pick another.")
    if not isinstance(token, str) or not CARD_TOKEN.match(token):
        raise BillingInputError("Enter your card details first.")
    stripe_api.require_configured()
    account = chat_account(user)
    if account.key.credits is None:
        raise BillingInputError("Your balance is unlimited: there is nothing to buy.")
    payment = Payment.objects.create(
        user=user, key=account.key, pack=pack, credits=pack.credits, amount=pack.amount, currency=pack.currency
    )
    customer = Payment.objects.filter(user=user).exclude(stripe_customer="").values_list("stripe_customer", flat=True)
    try:
        intent = stripe_api.charge_card(
            payment.pk, pack.amount, pack.currency, token, user.email, customer.order_by("-pk").first() or ""
        )
    except ApiError as exc:
        Payment.objects.filter(pk=payment.pk, status=Payment.PENDING).update(status=Payment.FAILED, failure=exc.detail)
        raise
    Payment.objects.filter(pk=payment.pk).update(stripe_customer=intent.customer)
    # The webhook may have been quicker and linked it already.
    Payment.objects.filter(pk=payment.pk, stripe_payment_intent__isnull=True).update(stripe_payment_intent=intent.id)
    payment.refresh_from_db()
    return payment, intent


# --- webhook events ------------------------------------------------------------------


def do_record_stripe_event(event: dict) -> str:
    """Apply a verified event once; returns what it did (kept with the event)."""
    kind, obj = str(event.get("type", "")), event["data"].get("object") or {}
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = StripeEvent.objects.create(event_id=str(event["id"])[:255], type=kind[:100])
        except IntegrityError:
            return "duplicate: already recorded"
        handler = HANDLERS.get(kind)
        payment = _payment_locked(kind, obj) if handler else None
        if handler is None:
            outcome = "ignored: not an event billing handles"
        elif payment is None:
            outcome = "ignored: not a payment of this endpoint"
        else:
            outcome = handler(payment, obj)
            payment.status = _status(payment)
            payment.save()
        record.payment, record.outcome = payment, outcome[:200]
        record.save(update_fields=["payment", "outcome"])
    log.info("stripe event %s %s: %s", kind, event["id"], outcome)
    return outcome


def _payment_locked(kind: str, obj: dict) -> Payment | None:
    """The payment ``obj`` (a PaymentIntent, Charge or Dispute) is about, locked."""
    if kind.startswith("payment_intent."):
        intent, charge = obj.get("id"), ""
    else:
        dispute = kind.startswith("charge.dispute")
        intent, charge = obj.get("payment_intent"), obj.get("charge") if dispute else obj.get("id")
    match = Q(stripe_payment_intent=intent) if intent else Q(pk__in=[])
    if charge:
        match |= Q(stripe_charge=charge)
    payment_id = str((obj.get("metadata") or {}).get("payment", ""))
    if intent and payment_id.isdigit():  # the webhook beat the page that started it
        match |= Q(pk=int(payment_id), stripe_payment_intent__isnull=True)
    payment = Payment.objects.select_for_update().filter(match).first()
    if payment is not None and intent and not payment.stripe_payment_intent:
        payment.stripe_payment_intent = intent
    return payment


def _succeeded(payment: Payment, intent: dict) -> str:
    amount, currency = intent.get("amount_received", intent.get("amount")), intent.get("currency")
    if amount != payment.amount or currency != payment.currency:
        log.error("payment %s: Stripe says %s %s, not what was asked", payment.pk, amount, currency)
        return "not credited: the amount differs from the pack's"
    charge = intent.get("latest_charge")
    payment.stripe_charge = (charge.get("id") if isinstance(charge, dict) else charge) or payment.stripe_charge
    if payment.credited_at is not None:
        return "already credited"
    do_book_payment(payment.key_id, payment.credits, CreditEntry.PURCHASE, reason=_reason(payment, "bought"))
    payment.credited_at = timezone.now()
    return f"credited {payment.credits}; " + _take_back(payment)


def _failed(payment: Payment, intent: dict) -> str:
    payment.failure = str((intent.get("last_payment_error") or {}).get("message") or "The payment failed.")[:500]
    return "failed: " + payment.failure


def _refunded(payment: Payment, charge: dict) -> str:
    refunded = charge.get("amount_refunded")
    if isinstance(refunded, int):  # a total: events out of order never lower it
        payment.amount_refunded = min(max(payment.amount_refunded, refunded), payment.amount)
    return _take_back(payment)


def _dispute_opened(payment: Payment, dispute: dict) -> str:
    payment.disputed = True
    return _take_back(payment)


def _dispute_closed(payment: Payment, dispute: dict) -> str:
    payment.disputed = dispute.get("status") != "won"
    return _take_back(payment)


def _take_back(payment: Payment) -> str:
    """Bring the credits taken back in line with the refunds and dispute
    (only of credits given: a refund seen first waits for the payment)."""
    if payment.credited_at is None:
        return "nothing to take back yet"
    share = payment.credits if payment.disputed else payment.credits * payment.amount_refunded // payment.amount
    delta = share - payment.credits_taken_back
    if delta:
        why = "disputed" if payment.disputed else "refunded" if delta > 0 else "dispute won"
        do_book_payment(payment.key_id, -delta, CreditEntry.REFUND, reason=_reason(payment, why))
        payment.credits_taken_back = share
    return f"taken back {share} in all"


def _reason(payment: Payment, what: str) -> str:
    return f"{what}: payment {payment.pk} ({payment.stripe_payment_intent})"


def _status(payment: Payment) -> str:
    if payment.disputed:
        return Payment.DISPUTED
    if payment.amount_refunded:
        return Payment.REFUNDED if payment.amount_refunded >= payment.amount else Payment.PARTLY_REFUNDED
    if payment.credited_at is not None:
        return Payment.SUCCEEDED
    return Payment.FAILED if payment.failure else Payment.PENDING


HANDLERS = {
    "payment_intent.succeeded": _succeeded,
    "payment_intent.payment_failed": _failed,
    "charge.refunded": _refunded,
    "charge.dispute.created": _dispute_opened,
    "charge.dispute.closed": _dispute_closed,
}
