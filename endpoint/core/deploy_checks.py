"""Checks of `manage.py check --deploy` beyond Django's own: settings that
start fine but leave a deployment broken for its users."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

# Backends that never deliver a message to anyone.
UNDELIVERED = (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
)


@register(Tags.security, deploy=True)
def check_email_reaches_people(app_configs=None, **kwargs) -> list[Warning]:
    if settings.EMAIL_BACKEND not in UNDELIVERED or settings.ACCOUNT_EMAIL_VERIFICATION != "mandatory":
        return []
    return [
        Warning(
            "Sign-up needs a confirmed email address, but email is not sent anywhere "
            f"({settings.EMAIL_BACKEND.rsplit('.', 2)[-2]}): nobody can finish signing up or reset a password.",
            hint="Set EMAIL_URL to your SMTP server, e.g. smtp+tls://user:password@smtp.example.com:587 "
            "(or ACCOUNT_EMAIL_VERIFICATION=optional).",
            id="endpoint.W001",
        )
    ]
