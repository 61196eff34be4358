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

from endpoint.core import encryption

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
    stripe_customer = models.CharField(max_length=255, blank=True, help_text="The buyer's customer in Stripe.")
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


# --- TAO deposits -------------------------------------------------------------------

RAO_PER_TAO = 10**9


def tao(rao: int) -> str:
    """``rao`` as people read TAO: 1.5 TAO, 0.000000001 TAO."""
    units = (Decimal(rao) / RAO_PER_TAO).quantize(Decimal("0.000000001"))
    text = f"{units:f}".rstrip("0").rstrip(".")
    return f"{text} TAO"


class TaoRate(models.Model):
    """The one row of TAO deposit settings (``manage.py tao``, the admin).
    Deposits are on once a seed is stored and ``credits_per_tao`` is above 0.
    The seed is stored encrypted and never shown; only the addresses derived
    from it (public) are stored in clear."""

    credits_per_tao = models.PositiveBigIntegerField(default=0, help_text="Credits one TAO buys; 0 turns deposits off.")
    minimum_rao = models.PositiveBigIntegerField(
        default=RAO_PER_TAO // 10, help_text="Smaller deposits are recorded but not credited (in rao, 1e-9 TAO)."
    )
    confirmations = models.PositiveIntegerField(
        default=12,
        validators=[MinValueValidator(1)],
        help_text="Blocks on top of a deposit's block (and finalized) before it is credited.",
    )
    seed_encrypted = models.TextField(blank=True, editable=False)
    scanned_to = models.BigIntegerField(
        null=True, blank=True, editable=False, help_text="The last block whose deposits are final."
    )
    scanned_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "TAO rate"
        verbose_name_plural = "TAO rate"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="taorate_one_row")]

    def __str__(self) -> str:
        return f"{self.credits_per_tao} credits per TAO"

    def save(self, *args, **kwargs) -> None:
        # As the endpoint config does: off a rotated-out SECRET_KEY on every save.
        self.seed_encrypted = encryption.reencrypt(self.seed_encrypted)
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> TaoRate:
        row, _ = cls.objects.get_or_create(pk=1)
        return row

    @property
    def minimum(self) -> str:
        return tao(self.minimum_rao)

    @property
    def has_seed(self) -> bool:
        return bool(self.seed_encrypted)

    @property
    def enabled(self) -> bool:
        return self.has_seed and self.credits_per_tao > 0

    @property
    def seed(self) -> str:
        return encryption.decrypt(self.seed_encrypted)

    @seed.setter
    def seed(self, value: str) -> None:
        self.seed_encrypted = encryption.encrypt(value)

    def credits_for(self, rao: int) -> int:
        return rao * self.credits_per_tao // RAO_PER_TAO


class DepositAddress(models.Model):
    """A user's own deposit address: the seed's hard derivation ``//deposit//<index>``."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deposit_address")
    index = models.PositiveBigIntegerField(unique=True, help_text="The derivation path is //deposit//<index>.")
    address = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["index"]
        verbose_name_plural = "deposit addresses"

    def __str__(self) -> str:
        return self.address


class Deposit(models.Model):
    """One transfer of TAO to a deposit address, seen on chain. It is credited
    once (``credited_at``) when its block is final; a transfer is one row,
    whatever the number of scans that see it."""

    PENDING, CREDITED, TOO_SMALL, DROPPED = "pending", "credited", "too_small", "dropped"
    STATUSES = [
        (PENDING, "pending"),
        (CREDITED, "credited"),
        (TOO_SMALL, "below the minimum"),
        (DROPPED, "dropped from the chain"),
    ]

    address = models.ForeignKey(DepositAddress, on_delete=models.PROTECT, related_name="deposits")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="deposits")
    key = models.ForeignKey("keys.ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="deposits")
    block_number = models.BigIntegerField()
    block_hash = models.CharField(max_length=66)
    extrinsic_index = models.PositiveIntegerField()
    event_index = models.PositiveIntegerField(help_text="The transfer's place among its block's events.")
    sender = models.CharField(max_length=64)
    amount_rao = models.PositiveBigIntegerField()
    credits = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    seen_at = models.DateTimeField(default=timezone.now)
    credited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-block_number", "-event_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["block_number", "extrinsic_index", "event_index"], name="deposit_once_per_transfer"
            ),
        ]
        indexes = [models.Index(fields=["user", "-block_number"], name="deposit_user_recent")]

    def __str__(self) -> str:
        return f"deposit {self.pk}: {self.amount} at block {self.block_number} ({self.status})"

    @property
    def amount(self) -> str:
        return tao(self.amount_rao)
