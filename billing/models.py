"""What users buy credits with: the packs on sale, each card payment, and
every Stripe event received (its id is unique, so a replayed or duplicated
event is recorded once and moves no credits twice)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

# Currencies Stripe counts in whole units (no cents).
ZERO_DECIMAL = set("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
CURRENCY = RegexValidator(r"^[a-z]{3}$", "A currency is three lowercase letters, like usd or eur.")


def money(amount: int, currency: str) -> str:
    """``amount`` (in the currency's smallest unit) as people read it: 5.00 USD."""
    units = Decimal(amount) if currency in ZERO_DECIMAL else Decimal(amount) / 100
    return f"{units:.0f} {currency.upper()}" if currency in ZERO_DECIMAL else f"{units:.2f} {currency.upper()}"


class CreditPackQuerySet(models.QuerySet):
    def on_sale(self) -> CreditPackQuerySet:
        return self.filter(active=True).order_by("amount", "pk")


class CreditPack(models.Model):
    name = models.CharField(max_length=100)
    credits = models.PositiveBigIntegerField(validators=[MinValueValidator(1)])
    amount = models.PositiveIntegerField(
        validators=[MinValueValidator(1)], help_text="The price in the currency's smallest unit (cents)."
    )
    currency = models.CharField(max_length=3, default="usd", validators=[CURRENCY])
    active = models.BooleanField(default=True, help_text="On sale on the billing page.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = CreditPackQuerySet.as_manager()

    class Meta:
        ordering = ["amount", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gt=0) & Q(amount__gt=0), name="creditpack_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.credits} credits for {self.price}"

    @property
    def price(self) -> str:
        return money(self.amount, self.currency)


class Payment(models.Model):
    """One card payment for a pack. Its credits land on the user's balance
    key once (``credited_at``), when Stripe's webhook says it succeeded; a
    refund or dispute takes back its share (``credits_taken_back``)."""

    PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
    REFUNDED, PARTLY_REFUNDED, DISPUTED = "refunded", "partly_refunded", "disputed"
    STATUSES = [
        (PENDING, "pending"),
        (SUCCEEDED, "succeeded"),
        (FAILED, "failed"),
        (REFUNDED, "refunded"),
        (PARTLY_REFUNDED, "partly refunded"),
        (DISPUTED, "disputed"),
    ]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="payments")
    key = models.ForeignKey("keys.ApiKey", on_delete=models.PROTECT, related_name="payments")
    pack = models.ForeignKey(CreditPack, null=True, on_delete=models.SET_NULL, related_name="payments")
    credits = models.PositiveBigIntegerField()
    amount = models.PositiveIntegerField(help_text="In the currency's smallest unit.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    stripe_payment_intent = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_charge = models.CharField(max_length=255, blank=True)
    amount_refunded = models.PositiveIntegerField(default=0)
    disputed = models.BooleanField(default=False)
    credited_at = models.DateTimeField(null=True, blank=True)
    credits_taken_back = models.BigIntegerField(default=0)
    failure = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "-created_at"], name="payment_user_recent")]

    def __str__(self) -> str:
        return f"payment {self.pk}: {self.credits} credits for {self.price} ({self.status})"

    @property
    def price(self) -> str:
        return money(self.amount, self.currency)


class StripeEvent(models.Model):
    """A webhook event, kept once by its id: what it was and what it did."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    outcome = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
