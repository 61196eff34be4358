"""Secrets at rest: Fernet with a key derived from SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"validator-endpoint/secrets/" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("stored secret cannot be decrypted: SECRET_KEY changed?") from exc


def mask(secret: str) -> str:
    """What an operator may see of a secret: that it is set, and its size."""
    if not secret:
        return ""
    words = len(secret.split())
    return f"****** ({words} words)" if words > 1 else "****" + secret[-4:] if len(secret) > 16 else "******"
