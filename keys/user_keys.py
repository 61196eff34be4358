"""Keys users make for themselves (the chat's keys page and /api/keys/, one
implementation for both): funded from the user's balance key, their credits
given back to it when revoked. The balance key is the caller's to find (the
chat account's key), so this app needs nothing of the chat's."""

from __future__ import annotations

from django.db import transaction

from endpoint.core.errors import KeyInputError
from endpoint.core.typed_text import checked_text

from .credits import do_transfer_credits
from .models import ApiKey
from .services import NewKey, do_create_key, do_edit_key

MAX_KEY_NAME_CHARS = ApiKey._meta.get_field("name").max_length
MAX_KEY_CREDITS = 10**15  # as the management API: far above any balance, far below the column's limit
CREDITS_RANGE = f"Credits must be a whole number from 1 to {MAX_KEY_CREDITS}."
NO_CREDITS = "A new key needs at least 1 credit: a key with none could not answer a single call."


def user_keys(user):
    """The keys a user made for themselves (not their balance key), newest first."""
    return ApiKey.objects.filter(owner=user, chat_account__isnull=True).order_by("-created_at", "-pk")


def do_create_user_key(user, name: str, credits: int, *, balance: ApiKey) -> NewKey:
    """A new key for ``user``, funded with ``credits`` moved from ``balance``
    (one conditional UPDATE: the balance cannot go below zero)."""
    name = checked_text(" ".join((name or "").split()), "A key name", MAX_KEY_NAME_CHARS, KeyInputError)
    if not name:
        raise KeyInputError("Give the key a name.")
    if credits == 0:
        raise KeyInputError(NO_CREDITS)
    if not 1 <= credits <= MAX_KEY_CREDITS:
        raise KeyInputError(CREDITS_RANGE)
    with transaction.atomic():
        new = do_create_key(name=name, credits=0, owner=user)
        do_transfer_credits(balance, new.key, credits)  # APIKeyNotEnoughCredits when short
    new.key.credits = credits
    return new


def do_revoke_user_key(key: ApiKey, *, balance: ApiKey) -> None:
    """Disable the key for good and move the credits it still has back to
    ``balance``, and those its calls in flight give back when they end."""
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        # save() (not update()) so every cached copy of the key is dropped at once.
        do_edit_key(locked, enabled=False)
        do_transfer_credits(locked, balance, locked.credits or 0, reason="refund of a revoked key")
        # Calls in flight settle later; what they give back follows (forward_late_refunds).
        ApiKey.objects.filter(pk=locked.pk).update(refund_to=balance)
