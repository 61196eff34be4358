from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

KEY_PREFIX = "vep_"
PREFIX_LENGTH = 8


def hash_secret(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def matching(self, query: str) -> ApiKeyQuerySet:
        """Keys a CLI/admin query names: an id, the full key, or a prefix."""
        query = query.strip()
        if query.isascii() and query.isdigit():  # "³".isdigit() is True, and no id
            return self.filter(pk=int(query))
        if query.startswith(KEY_PREFIX) and len(query) > PREFIX_LENGTH:
            by_hash = self.filter(secret_hash=hash_secret(query))
            if len(query) > 20:
                return by_hash
        return self.filter(prefix__startswith=query[:PREFIX_LENGTH]) if query else self.none()

    def expired(self) -> ApiKeyQuerySet:
        return self.filter(expires_at__isnull=False, expires_at__lte=timezone.now())

    def usable(self) -> ApiKeyQuerySet:
        return self.filter(enabled=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))


class ApiKey(models.Model):
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=PREFIX_LENGTH, db_index=True, editable=False)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )
    enabled = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty means the key never expires.")
    credits = models.BigIntegerField(null=True, blank=True, help_text="Empty means unlimited.")
    default_strategy = models.CharField(max_length=200, blank=True, help_text="Empty, 'top_n:5' or 'uids:1,2'.")
    rate_limits = models.JSONField(default=list, blank=True)
    request_count = models.BigIntegerField(default=0, help_text="Miner calls made with this key.")
    api_request_count = models.BigIntegerField(default=0, help_text="API calls made with this key.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    refund_to = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text="Revoked: credits its calls in flight give back are moved on to this key.",
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        # No floor at zero in the table: a refunded or disputed payment takes
        # its credits back even when they are spent, and the key then answers
        # 402 until topped up. Every write that spends checks the balance itself.
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name or 'key'} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def unlimited(self) -> bool:
        return self.credits is None


class CreditEntry(models.Model):
    """One movement of a key's credits. A limited key's balance is always the
    sum of its entries (``manage.py credits audit`` checks it). Rows are only
    ever added: never changed, never deleted, not even with their key, so
    every movement stays accounted for.

    A call holds credits (``hold``, negative, with a deadline) and ends the
    hold once: ``settle`` gives back what the answer didn't use, or, for a
    hold nobody settled by its deadline (a crashed server), the sweeper's
    ``release`` gives it all back. ``ends`` is unique, so a hold ends once."""

    OPENING, GRANT, TOPUP, ADJUST = "opening", "grant", "topup", "adjust"
    HOLD, SETTLE, RELEASE, TRANSFER = "hold", "settle", "release", "transfer"
    PURCHASE, REFUND, DEPOSIT = "purchase", "refund", "deposit"
    KINDS = [
        (OPENING, "opening balance"),
        (GRANT, "grant"),
        (TOPUP, "top-up"),
        (ADJUST, "adjustment"),
        (HOLD, "hold"),
        (SETTLE, "settle"),
        (RELEASE, "release"),
        (TRANSFER, "transfer"),
        (PURCHASE, "purchase"),
        (REFUND, "refund or dispute"),
        (DEPOSIT, "TAO deposit"),
    ]

    # Indexed as the first column of creditentry_key.
    key = models.ForeignKey(
        ApiKey, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="credit_entries"
    )
    kind = models.CharField(max_length=16, choices=KINDS)
    amount = models.BigIntegerField(help_text="Credits given to the key (negative: taken).")
    request_id = models.UUIDField(null=True, blank=True, help_text="The call a hold is for.")
    ends = models.UUIDField(null=True, blank=True, help_text="The call whose hold this ends.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="A hold's deadline.")
    actor = models.CharField(max_length=150, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "credit entry"
        verbose_name_plural = "credit entries"
        # As few indexes as the hot path can afford: every hold and settle writes a row.
        indexes = [
            models.Index(fields=["key", "id"], name="creditentry_key"),
            models.Index(fields=["expires_at"], condition=Q(kind="hold"), name="creditentry_holds"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["ends"], condition=Q(ends__isnull=False), name="creditentry_ends_once")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} on key {self.key_id}"
