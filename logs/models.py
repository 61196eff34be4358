import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

# The error of a miner call stopped because another miner answered first. It
# neither succeeded nor failed: every figure leaves it out of the success
# rate and counts it on its own. The gateway writes it; the figures read it.
CANCELLED = "cancelled: another miner answered first"
OUTCOMES = ("ok", "failed", "cancelled")  # MinerResponse.outcome


class Request(models.Model):
    """One API call, whatever its outcome."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed as the first column of request_key_time.
    key = models.ForeignKey(
        "keys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="requests", db_index=False
    )
    # Who made the call, kept with the log: a deleted key leaves its requests attributed.
    # A database default too: rows written by hand (COPY, raw SQL) stay valid.
    key_name = models.CharField(max_length=200, blank=True, default="", db_default="")
    key_prefix = models.CharField(max_length=8, blank=True, default="", db_default="")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    route = models.CharField(max_length=64)
    messages = models.JSONField(default=list, blank=True)
    strategy = models.CharField(max_length=200, blank=True)
    status = models.PositiveSmallIntegerField()
    api_error = models.CharField(max_length=64, blank=True)
    credits_charged = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(db_index=True)
    elapsed_ms = models.FloatField(default=0)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    # The client's own id for the call (X-Client-Request-Id or X-Request-Id),
    # "" when it sent none; ours is ``id`` (endpoint.core.request_ids).
    client_request_id = models.CharField(max_length=128, blank=True, default="", db_default="")
    # The answer's tokens, as the miner reported them or as we counted them;
    # null when nothing was answered (and on rows written before they were kept).
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["key", "-started_at"], name="request_key_time"),
            models.Index(fields=["status", "-started_at"], name="request_status_time"),
            # Every call writes a row: partial indexes skip the rows they are never
            # searched by (answered calls have no error code; operators' keys no user).
            models.Index(fields=["api_error", "-started_at"], condition=~Q(api_error=""), name="request_error_time"),
            models.Index(fields=["user"], condition=Q(user__isnull=False), name="request_user"),
            models.Index(
                fields=["client_request_id"], condition=~Q(client_request_id=""), name="request_client_request_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.route} {self.status} {self.started_at:%Y-%m-%d %H:%M:%S}"


class MinerResponse(models.Model):
    """One miner queried for a Request."""

    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="miner_responses")
    uid = models.IntegerField()
    hotkey = models.CharField(max_length=64, blank=True)
    is_success = models.BooleanField()
    response = models.TextField(blank=True)
    error = models.TextField(blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_ms = models.FloatField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["hotkey", "is_success"], name="minerresponse_hotkey_ok"),
            models.Index(fields=["uid", "is_success"], name="minerresponse_uid_ok"),
        ]

    def __str__(self) -> str:
        return f"uid {self.uid} {self.outcome}"

    @property
    def outcome(self) -> str:
        """``ok``, ``failed`` or ``cancelled``."""
        if self.is_success:
            return "ok"
        return "cancelled" if self.error == CANCELLED else "failed"


# The rows of cancelled calls, for a filter or a conditional aggregate.
IS_CANCELLED = models.Q(is_success=False, error=CANCELLED)


class MediaFile(models.Model):
    """Media of a call, kept apart from its log: an image a client asked for
    as a ``url`` (served at GET /v1/media/<id> until ``url_expires_at``; the
    random id is the only key to it, as with OpenAI's own image URLs), and,
    when the operator turns on ``retain_media``, the images and audio of
    every call for the console to show. Purged at ``expires_at``."""

    class Source(models.TextChoices):
        ANSWER = "answer"
        UPLOAD = "upload"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request_id = models.UUIDField(db_index=True, help_text="The request it belongs to.")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ANSWER)
    content_type = models.CharField(max_length=100)
    data = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    url_expires_at = models.DateTimeField(null=True, blank=True, help_text="Served by URL until then.")
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.content_type} {len(self.data or b'')} bytes"
