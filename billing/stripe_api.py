"""All traffic to Stripe: the one client (configured keys, the API base,
a bounded timeout), charging a card, and checking a webhook's signature.
Stripe's failures become our errors here, so callers never see its types."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import stripe
from django.conf import settings

from endpoint.core.errors import (
    BillingInputError,
    CardDeclined,
    InvalidBody,
    PaymentProviderUnavailable,
    PaymentsNotConfigured,
    WebhookSignatureInvalid,
)
from endpoint.core.models import EndpointConfig

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 20  # the library's default (80 s) would hold a page's worker for too long


@dataclass(frozen=True)
class Intent:
    id: str
    status: str  # Stripe's: succeeded, processing, requires_action, …
    client_secret: str
    customer: str  # the Stripe customer charged, kept to charge the same user's next card on it


def publishable_key() -> str:
    key = EndpointConfig.load().stripe_publishable_key
    if not key:
        raise PaymentsNotConfigured()
    return key


def _secret_key() -> str:
    secret = EndpointConfig.load().stripe_secret_key
    if not secret:
        raise PaymentsNotConfigured()
    return secret


def require_configured() -> None:
    _secret_key()


def _client() -> stripe.StripeClient:
    secret = _secret_key()
    return stripe.StripeClient(
        secret,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=2,  # safe: every charge carries an idempotency key
        http_client=stripe.new_default_http_client(timeout=TIMEOUT_SECONDS),
    )


def _save_card(client: stripe.StripeClient, payment_id: int, token: str, email: str, customer: str) -> tuple[str, str]:
    """``(customer, card)``: the card of ``token`` saved on the user's Stripe
    customer, or on a new one for a first payment (or if theirs was deleted
    in Stripe's dashboard), so each user is one customer there."""
    if customer:
        try:
            card = client.v1.customers.payment_sources.create(
                customer, params={"source": token}, options={"idempotency_key": f"payment-{payment_id}-card"}
            )
            return customer, card.id
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing":
                raise
    created = client.v1.customers.create(
        params={"source": token, "email": email, "metadata": {"first_payment": str(payment_id)}},
        options={"idempotency_key": f"payment-{payment_id}-customer"},
    )
    return created.id, created.default_source


def charge_card(payment_id: int, amount: int, currency: str, token: str, email: str, customer: str = "") -> Intent:
    """Charge the card of ``token`` (made by Stripe.js in the browser): saved
    on the user's Stripe ``customer`` (a new one for a first payment), then a
    PaymentIntent for it, confirmed at once. Once per payment, whatever the
    retries: the idempotency keys are the payment's. The credits come later,
    from the webhook."""
    metadata = {"payment": str(payment_id)}
    try:
        client = _client()
        customer, card = _save_card(client, payment_id, token, email, customer)
        params = {
            "amount": amount,
            "currency": currency,
            "customer": customer,
            "payment_method": card,
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": metadata,
        }
        options = {"idempotency_key": f"payment-{payment_id}"}
        intent = client.v1.payment_intents.create(params=params, options=options)
    except stripe.CardError as exc:
        raise CardDeclined(exc.user_message or CardDeclined.detail) from None
    except stripe.InvalidRequestError as exc:
        log.warning("Stripe refused payment %s: %s", payment_id, exc.user_message)
        raise BillingInputError("The card details were not accepted; enter them again.") from None
    except stripe.StripeError as exc:
        log.error("Stripe failed on payment %s: %s", payment_id, type(exc).__name__)
        raise PaymentProviderUnavailable() from None
    return Intent(intent.id, intent.status, intent.client_secret or "", customer)


def verified_event(payload: bytes, signature: str | None) -> dict:
    """The event ``payload`` holds, if ``signature`` is Stripe's for it with
    the configured webhook secret and recent enough, else WebhookSignatureInvalid."""
    secret = EndpointConfig.load().stripe_webhook_secret
    if not secret:
        raise PaymentsNotConfigured()
    if not signature:
        raise WebhookSignatureInvalid("The Stripe-Signature header is missing.")
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, settings.STRIPE_WEBHOOK_TOLERANCE)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureInvalid(str(exc.user_message or WebhookSignatureInvalid.detail)) from None
    try:
        event = json.loads(payload)
    except ValueError:
        raise InvalidBody("The payload is not JSON.") from None
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict) or "id" not in event:
        raise InvalidBody("The payload is not a Stripe event.")
    return event
