"""Everything the chat pages write: a user's chat account (and the key that
holds their credits), conversations, messages, and the user's own API keys.

What users type goes through ``checked_text`` first, one rule for every text
field of the chat app (messages, conversation names, key names): text holding
a NUL character (U+0000) is refused with a message naming the field, never
stripped, as is text over the field's length limit. PostgreSQL cannot store
NUL in text, and quietly dropping characters would keep something other than
what the user typed."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from endpoint.core.errors import ChatInputError
from keys.credits import reserve_credits
from keys.models import ApiKey
from keys.services import NewKey, do_create_key, do_edit_key

from .models import ChatAccount, Conversation, Message

CHAT_KEY_NAME = "Chat balance"
DEFAULT_TITLE = "New chat"
TITLE_LENGTH = 60  # a title made from the first message
MAX_PROMPT_CHARS = 32_000
MAX_TITLE_CHARS = Conversation._meta.get_field("title").max_length
MAX_KEY_NAME_CHARS = ApiKey._meta.get_field("name").max_length
MAX_KEY_CREDITS = 10**15  # as the management API: far above any balance, far below the column's limit


def checked_text(text: object, what: str, limit: int) -> str:
    """``text`` as typed, if it may be stored (see the module's rule)."""
    if not isinstance(text, str):
        raise ChatInputError(f"{what} must be text.")
    if "\x00" in text:
        raise ChatInputError(f"{what} cannot contain NUL characters (\\x00).")
    if len(text) > limit:
        raise ChatInputError(f"{what} is limited to {limit} characters.")
    return text


# --- the chat account ------------------------------------------------------------


def chat_account(user) -> ChatAccount:
    """The user's chat account, made on first use with the sign-up grant of
    credits on a key of its own."""
    account = ChatAccount.objects.select_related("key").filter(user=user).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            new = do_create_key(name=CHAT_KEY_NAME, credits=settings.CHAT_SIGNUP_CREDITS, owner=user)
            return ChatAccount.objects.create(user=user, key=new.key)
    except IntegrityError:
        # Two first requests at once: the other one made it; its grant is the only one.
        return ChatAccount.objects.select_related("key").get(user=user)


# --- conversations -----------------------------------------------------------------


def title_from(text: str) -> str:
    line = " ".join((text or "").split())
    if len(line) <= TITLE_LENGTH:
        return line or DEFAULT_TITLE
    return line[: TITLE_LENGTH - 1].rstrip() + "…"


def new_conversation(user, title: str = DEFAULT_TITLE) -> Conversation:
    return Conversation.objects.create(user=user, title=title_from(title))


def rename_conversation(conversation: Conversation, title: str) -> Conversation:
    title = checked_text(" ".join((title or "").split()), "A conversation name", MAX_TITLE_CHARS)
    if not title:
        raise ChatInputError("A conversation needs a name.")
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def delete_conversation(conversation: Conversation) -> None:
    conversation.delete()


def prompt_text(text: object) -> str:
    """A message as the user sent it, trimmed, if it may be stored and sent."""
    text = checked_text(text, "A message", MAX_PROMPT_CHARS).strip()
    if not text:
        raise ChatInputError("Type a message first.")
    return text


def add_user_message(conversation: Conversation, text: str) -> Message:
    """Store what the user sent; a conversation's first message names it."""
    message = Message.objects.create(conversation=conversation, role=Message.USER, content=text)
    if conversation.title == DEFAULT_TITLE and not conversation.messages.exclude(pk=message.pk).exists():
        conversation.title = title_from(text)
    conversation.save(update_fields=["title", "updated_at"])
    return message


def add_answer(conversation: Conversation, **fields) -> Message:
    return Message.objects.create(conversation=conversation, role=Message.ASSISTANT, **fields)


def history(conversation: Conversation) -> list[dict[str, str]]:
    """The conversation as chat messages for the miners: what was said and
    answered, leaving out answers that never came."""
    rows = conversation.messages.exclude(role=Message.ASSISTANT, content="").values_list("role", "content")
    return [{"role": role, "content": content} for role, content in rows]


# --- the user's own API keys ----------------------------------------------------------


def user_keys(user):
    """The keys a user made on the keys page (not the chat-balance key), newest first."""
    return ApiKey.objects.filter(owner=user, chat_account__isnull=True).order_by("-created_at", "-pk")


def create_user_key(user, name: str, credits: int) -> NewKey:
    """A new key for ``user``, funded with ``credits`` moved from their chat
    balance (one conditional UPDATE: the balance cannot go below zero)."""
    name = checked_text(" ".join((name or "").split()), "A key name", MAX_KEY_NAME_CHARS)
    if not name:
        raise ChatInputError("Give the key a name.")
    if not 0 <= credits <= MAX_KEY_CREDITS:
        raise ChatInputError(f"Credits must be a whole number from 0 to {MAX_KEY_CREDITS}.")
    account = chat_account(user)
    with transaction.atomic():
        if credits:
            reserve_credits(account.key, credits)  # APIKeyNotEnoughCredits when short
        return do_create_key(name=name, credits=credits, owner=user)


def revoke_user_key(key: ApiKey) -> None:
    """Disable the key for good and move the credits it still held back to
    the owner's chat balance."""
    account = chat_account(key.owner)
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        left = locked.credits or 0
        # save() (not update()) so every cached copy of the key is dropped at once.
        do_edit_key(locked, enabled=False, credits=0 if locked.credits is not None else None)
        if left:
            ApiKey.objects.filter(pk=account.key_id, credits__isnull=False).update(credits=F("credits") + left)


def grant_on_signup(sender, request, user, **kwargs) -> None:
    """allauth's user_signed_up: open the chat account with its credits."""
    chat_account(user)
