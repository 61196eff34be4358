"""Everything the chat pages write: a user's chat account (and the key that
holds their credits), conversations and messages. The user's own API keys
are the keys app's (``keys.user_keys``).

What users type goes through ``checked_text`` first, one rule for every text
field (``endpoint.core.typed_text``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from endpoint.core import typed_text
from endpoint.core.errors import ApiError, ChatInputError
from keys.services import do_create_key

from .markdown import plain_text
from .models import ChatAccount, ChatMedia, Conversation, Message

CHAT_KEY_NAME = "Chat balance"
DEFAULT_TITLE = "New chat"
TITLE_LENGTH = 60  # a title made from the first message
MAX_PROMPT_CHARS = 32_000
MAX_TITLE_CHARS = Conversation._meta.get_field("title").max_length


def checked_text(text: object, what: str, limit: int) -> str:
    """``text`` as typed, if it may be stored (the rule of ``endpoint.core.typed_text``)."""
    return typed_text.checked_text(text, what, limit, ChatInputError)


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


class NoSuchConversation(ApiError):
    status, code = 404, "NotFound"
    detail = "No such conversation."


class NoSuchMessage(ApiError):
    status, code = 404, "NotFound"
    detail = "No such message in this conversation."


def title_from(text: str) -> str:
    """A conversation's name from its first message: the words, not the markdown."""
    line = " ".join(plain_text((text or "")[: TITLE_LENGTH * 20]).split())
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


def media_text(items: list[tuple[bytes, str]]) -> str:
    """What a media answer says as text (in the conversation, the log, the
    history the chat miners get): each piece's type and size, never its bytes."""
    return " ".join(f"[{content_type}, {_size(len(data))}]" for data, content_type in items)


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{round(count / 1024)} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"


def add_media_answer(conversation: Conversation, kind: str, items: list[tuple[bytes, str]], **fields) -> Message:
    """An answer of images or speech: the message, and its media (bytes, content type) beside it."""
    with transaction.atomic():
        message = add_answer(conversation, content=media_text(items), media_kind=kind, **fields)
        ChatMedia.objects.bulk_create(
            ChatMedia(
                message=message,
                content_type=content_type,
                data=data,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            for data, content_type in items
        )
    return message


def owned_media(user, media_id: int) -> tuple[str, bytes] | None:
    """A piece of media of one of ``user``'s conversations: its type and bytes (None for anyone else's)."""
    return (
        ChatMedia.objects.filter(pk=media_id, message__conversation__user=user)
        .values_list("content_type", "data")
        .first()
    )


def finish_answer(message: Message, **fields) -> Message:
    """An answer started earlier, as it ended. A row an edit removed meanwhile
    stays removed; the page that was reading it is given the answer anyway."""
    Message.objects.filter(pk=message.pk).update(**fields)
    for name, value in fields.items():
        setattr(message, name, value)
    return message


def history(conversation: Conversation) -> list[dict[str, str]]:
    """The conversation as chat messages for the miners: what was said and
    answered, leaving out answers that never came."""
    rows = conversation.messages.exclude(role=Message.ASSISTANT, content="").values_list("role", "content")
    return [{"role": role, "content": content} for role, content in rows]


# --- turns: what the page asks the miners to answer ---------------------------------


@dataclass(frozen=True)
class Turn:
    conversation: Conversation
    prompt: Message  # the user's message to answer
    history: list[dict[str, str]]
    sent: bool = False  # a new message (not an edit or a retry)
    opened: bool = False  # ...that started the conversation


def _owned(user, conversation_id: int) -> Conversation:
    # Locked: two tabs rewriting one conversation take turns.
    conversation = Conversation.objects.of(user).select_for_update().filter(pk=conversation_id).first()
    if conversation is None:
        raise NoSuchConversation()
    return conversation


def _after(message: Message) -> QuerySet[Message]:
    """The messages of its conversation that come after ``message``."""
    later = Q(created_at__gt=message.created_at) | Q(created_at=message.created_at, pk__gt=message.pk)
    return Message.objects.filter(later, conversation_id=message.conversation_id)


def record_prompt(user, conversation_id: int | None, text: object) -> Turn:
    """A new message, in a new conversation when ``conversation_id`` is None."""
    text = prompt_text(text)
    with transaction.atomic():
        if conversation_id is None:
            conversation = new_conversation(user, title=text)
        else:
            conversation = _owned(user, conversation_id)
        prompt = add_user_message(conversation, text)
        return Turn(conversation, prompt, history(conversation), sent=True, opened=conversation_id is None)


def _prompt(conversation: Conversation, message_id: int) -> Message:
    prompt = conversation.messages.filter(pk=message_id, role=Message.USER).first()
    if prompt is None:
        raise NoSuchMessage("No such message of yours in this conversation.")
    return prompt


def record_edit(user, conversation_id: int, message_id: int, text: object) -> Turn:
    """The user's message ``message_id`` says ``text`` now; what came after it goes."""
    text = prompt_text(text)
    with transaction.atomic():
        conversation = _owned(user, conversation_id)
        prompt = _prompt(conversation, message_id)
        _after(prompt).delete()
        named_by_it = conversation.messages.first() == prompt and conversation.title == title_from(prompt.content)
        if named_by_it:  # and not renamed since
            conversation.title = title_from(text)
        prompt.content = text
        prompt.save(update_fields=["content"])
        conversation.save(update_fields=["title", "updated_at"])
        return Turn(conversation, prompt, history(conversation))


def record_retry(user, conversation_id: int, message_id: int) -> Turn:
    """The user's message ``message_id`` to be answered again: what came after it goes."""
    with transaction.atomic():
        conversation = _owned(user, conversation_id)
        prompt = _prompt(conversation, message_id)
        _after(prompt).delete()
        conversation.save(update_fields=["updated_at"])
        return Turn(conversation, prompt, history(conversation))


def stop_unanswered(turn: Turn, request_id) -> None:
    """The reader stopped before any answer came. A new message is taken back
    (the page puts its text back in the composer, to send again); an edit or
    a retry stands, its answer kept as stopped, to retry."""
    if not turn.sent:
        add_answer(turn.conversation, stopped=True, request_id=request_id)
    elif turn.opened:
        turn.conversation.delete()
    else:
        turn.prompt.delete()


def grant_on_signup(sender, request, user, **kwargs) -> None:
    """allauth's user_signed_up: open the chat account with its credits."""
    chat_account(user)
