"""Stripe webhook events as Stripe builds and signs them: a JSON event body,
and ``Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.body" with the
endpoint's secret>``."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

WEBHOOK_SECRET = "whsec_" + "t3st" * 8
WEBHOOK_URL = "/billing/stripe/webhook/"


def event(kind: str, obj: dict, *, event_id: str | None = None) -> dict:
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "api_version": "2025-01-27.acacia",
        "data": {"object": obj},
    }


def intent_succeeded(payment, **overrides) -> dict:
    obj = {
        "id": payment.stripe_payment_intent,
        "object": "payment_intent",
        "amount": payment.amount,
        "amount_received": payment.amount,
        "currency": payment.currency,
        "status": "succeeded",
        "latest_charge": "ch_" + payment.stripe_payment_intent[3:],
        "metadata": {"payment": str(payment.pk)},
    }
    return event("payment_intent.succeeded", {**obj, **overrides})


def charge_refunded(payment, refunded: int) -> dict:
    obj = {
        "id": "ch_" + payment.stripe_payment_intent[3:],
        "object": "charge",
        "amount": payment.amount,
        "amount_refunded": refunded,
        "currency": payment.currency,
        "payment_intent": payment.stripe_payment_intent,
        "refunded": refunded >= payment.amount,
    }
    return event("charge.refunded", obj)


def dispute(payment, kind: str = "charge.dispute.created", status: str = "needs_response") -> dict:
    obj = {
        "id": "dp_" + secrets.token_hex(8),
        "object": "dispute",
        "amount": payment.amount,
        "charge": "ch_" + payment.stripe_payment_intent[3:],
        "payment_intent": payment.stripe_payment_intent,
        "status": status,
    }
    return event(kind, obj)


def signed(body: dict | bytes, secret: str = WEBHOOK_SECRET, *, at: int | None = None) -> tuple[bytes, str]:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    at = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={at},v1={signature}"


def post(client, body: dict, **sign):
    payload, header = signed(body, **sign)
    return client.post(WEBHOOK_URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
