"""Browser chat: a user's chat account (the key that pays for their chat),
their conversations and the messages in them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ChatAccount(models.Model):
    """Links a user to the API key that holds their chat credit balance, so it
    is never mistaken for a key the user created on the keys page."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_account")
    key = models.OneToOneField("keys.ApiKey", on_delete=models.PROTECT, related_name="chat_account")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"chat account of {self.user}"


class ConversationQuerySet(models.QuerySet):
    def of(self, user) -> ConversationQuerySet:
        return self.filter(user=user)


class Conversation(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, default="New chat")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-pk"]
        indexes = [models.Index(fields=["user", "-updated_at"], name="conversation_user_recent")]

    def __str__(self) -> str:
        return self.title


class Message(models.Model):
    USER, ASSISTANT = "user", "assistant"
    ROLES = [(USER, "user"), (ASSISTANT, "assistant")]

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=ROLES)
    content = models.TextField(blank=True)
    # For answers: who answered, how fast, who failed, and what went wrong.
    uid = models.IntegerField(null=True, blank=True)
    hotkey = models.CharField(max_length=64, blank=True)
    response_ms = models.FloatField(null=True, blank=True)
    failed = models.JSONField(default=list, blank=True)  # [{"uid", "responder_hotkey", "error"}]
    others = models.JSONField(default=list, blank=True)  # further answers when every miner was asked
    error = models.TextField(blank=True)  # why no answer came, or why it was cut short
    stopped = models.BooleanField(default=False)  # the reader stopped it before its end
    request_id = models.UUIDField(null=True, blank=True)  # the request log row
    # An answer of images or speech (its ChatMedia), else "": the page shows the media, not the text.
    media_kind = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"


class ChatMedia(models.Model):
    """An image or a clip of speech a miner answered in a conversation. Kept
    here (not beside the request logs) because it belongs to the
    conversation: served only to its owner, gone with its message."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="media")
    content_type = models.CharField(max_length=100)
    data = models.BinaryField()
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.content_type}, {self.size} bytes"

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")
