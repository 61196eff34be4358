"""Secrets at rest (the hotkey mnemonic, the OpenAI key): Fernet.

Secrets are encrypted with a key derived from ``SECRETS_ENCRYPTION_KEY`` or,
when that is unset, from ``SECRET_KEY`` (as they always were, so stored
secrets stay readable). They are read with that key, ``SECRET_KEY``, or any of
``SECRET_KEY_FALLBACKS``: after rotating ``SECRET_KEY``, put the old value in
``SECRET_KEY_FALLBACKS`` and the secrets stay readable; each save of the
config re-encrypts them with the current key, after which the fallback may go.
Setting ``SECRETS_ENCRYPTION_KEY`` to the old ``SECRET_KEY`` works too, and
frees the secrets from ``SECRET_KEY`` for good.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from . import errors

# The columns that hold Fernet tokens, re-encrypted on every save.
ENCRYPTED_FIELDS = (
    "hotkey_mnemonic_encrypted",
    "openai_api_key_encrypted",
    "stripe_secret_key_encrypted",
    "stripe_webhook_secret_encrypted",
)


class SecretUnreadable(errors.ServiceUnavailable, ValueError):
    """A stored secret cannot be decrypted with any configured key.

    A ValueError, so operator commands print it as one line; an ApiError, so
    an API call that needs it gets a 503 naming the problem, not a 500.
    """

    code = "SecretUnreadable"
    detail = (
        "A stored secret (the hotkey mnemonic or the OpenAI key) cannot be decrypted: it was encrypted with "
        "another key. Put the previous SECRET_KEY in SECRET_KEY_FALLBACKS (or in SECRETS_ENCRYPTION_KEY), "
        "or set the secret again with manage.py config set."
    )


def _fernet(key: str) -> Fernet:
    digest = hashlib.sha256(b"validator-endpoint/secrets/" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> tuple[str, ...]:
    """The keys to try, the one to encrypt with first; without repeats."""
    current = settings.SECRETS_ENCRYPTION_KEY or settings.SECRET_KEY
    older = (*settings.SECRET_KEY_FALLBACKS, *settings.SECRETS_ENCRYPTION_KEY_FALLBACKS)
    return tuple(dict.fromkeys([current, settings.SECRET_KEY, *older]))


@functools.lru_cache(maxsize=8)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet(key) for key in keys])


def _cipher() -> MultiFernet:
    return _multi_fernet(_keys())


def encrypt(plaintext: str) -> str:
    return _cipher().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable() from None


def reencrypt(token: str) -> str:
    """``token`` encrypted with the current key; as it is if no key reads it
    (an unreadable secret must not stop the rest of the config from saving)."""
    if not token:
        return ""
    try:
        return _cipher().rotate(token.encode()).decode()
    except InvalidToken:
        return token


def reencrypt_on_save(instance: Any, **_: Any) -> None:
    # Moves secrets off a rotated-out key, so SECRET_KEY_FALLBACKS can later be emptied.
    for name in ENCRYPTED_FIELDS:
        setattr(instance, name, reencrypt(getattr(instance, name)))


def mask(secret: str) -> str:
    """What an operator may see of a secret: that it is set, and its size."""
    if not secret:
        return ""
    words = len(secret.split())
    return f"****** ({words} words)" if words > 1 else "****" + secret[-4:] if len(secret) > 16 else "******"
