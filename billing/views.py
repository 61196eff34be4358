"""The billing page (packs, payments, TAO deposits, credit movements), its JSON calls to
pay and to follow a payment, and Stripe's webhook. Thin: the work is in
services (what a payment and an event do) and stripe_api (Stripe itself)."""

from __future__ import annotations

from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from chat import limits
from chat.security import POLICY
from chat.services import chat_account
from endpoint.core import errors
from endpoint.core.jsonbody import loads_bounded
from endpoint.core.models import EndpointConfig
from keys.models import CreditEntry

from . import deposits, services, stripe_api
from .models import CreditPack, Deposit, Payment, TaoRate

HISTORY = 50  # rows of payments and of credit movements shown
# A call's hold and its settlement are usage, not movements a buyer looks for.
MOVEMENTS = [kind for kind, _ in CreditEntry.KINDS if kind not in (CreditEntry.HOLD, CreditEntry.SETTLE)]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _policy() -> str:
    """Our page's policy, letting in Stripe.js and what it talks to."""
    js, api = _origin(settings.STRIPE_JS_URL), _origin(settings.STRIPE_API_BASE)
    policy = POLICY.replace("script-src 'self'", f"script-src 'self' {js}")
    policy = policy.replace("connect-src 'self'", f"connect-src 'self' {js} {api}")
    return f"{policy}; frame-src {js} https://hooks.stripe.com"


def _qr_svg(text: str) -> str:
    """``text`` as an inline SVG QR code: drawn here, so the page asks no one else."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return image.to_string(encoding="unicode")


def _tao(user) -> dict:
    """The TAO part of the page: the user's address, its QR code and deposits."""
    rate = TaoRate.load()
    address = deposits.deposit_address(user) if rate.enabled else None
    if address is None:
        return {"tao": None}
    return {
        "tao": rate,
        "tao_address": address.address,
        # Safe: the SVG is ours, drawn from an address we derived, nothing a user typed.
        "tao_qr": mark_safe(_qr_svg(address.address)),
        "tao_minutes": max(1, round(rate.confirmations * 12 / 60)),
        "deposits": Deposit.objects.filter(user=user)[:HISTORY],
    }


def _balance(account) -> int | None:
    account.key.refresh_from_db(fields=["credits"])
    return account.key.credits


@login_required
@require_GET
def billing_page(request: HttpRequest) -> HttpResponse:
    account = chat_account(request.user)
    context = {
        "balance": _balance(account),
        "packs": CreditPack.objects.on_sale(),
        "publishable_key": EndpointConfig.load().stripe_publishable_key,
        "stripe_js": settings.STRIPE_JS_URL,
        "payments": Payment.objects.filter(user=request.user)[:HISTORY],
        "movements": CreditEntry.objects.filter(key_id=account.key_id, kind__in=MOVEMENTS).order_by("-id")[:HISTORY],
        **_tao(request.user),
    }
    response = render(request, "billing/billing.html", context)
    response["Content-Security-Policy"] = _policy()
    return response


@login_required
@require_POST
@errors.answers_errors_as_json(errors.page_body)
async def pay(request: HttpRequest) -> HttpResponse:
    """``{"pack", "token"}`` from the page: the card charged, the payment to follow."""
    data = loads_bounded(request.body)
    if not isinstance(data, dict):
        raise errors.InvalidBody("The page sent a malformed request.")
    user = await request.auser()
    await sync_to_async(limits.count_page_use, thread_sensitive=False)(request, limits.CARD_PAYMENT, user)
    payment, intent = await sync_to_async(services.do_start_payment)(user, data.get("pack"), data.get("token"))
    body = {"payment": payment.pk, "status": payment.status, "intent_status": intent.status}
    if intent.status == "requires_action":  # the card's bank asks the buyer (3-D Secure)
        body["client_secret"] = intent.client_secret
    return JsonResponse(body)


@login_required
@require_GET
def payment_status(request: HttpRequest, pk: int) -> JsonResponse:
    payment = get_object_or_404(Payment, pk=pk, user=request.user)
    balance = _balance(chat_account(request.user))
    return JsonResponse({"payment": payment.pk, "status": payment.status, "balance": balance})


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's events, checked against its signature, each applied once."""
    try:
        event = stripe_api.verified_event(request.body, request.headers.get("Stripe-Signature"))
        outcome = services.do_record_stripe_event(event)
    except errors.ApiError as exc:
        return errors.json_response(exc, errors.seed_body, request)
    return JsonResponse({"received": True, "outcome": outcome})
