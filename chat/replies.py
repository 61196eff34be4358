"""Asking the subnet from the chat page.

The same path as the API, in-process: a GatewayCall admits the user (their
own rate-limit counter, the key's rules or the global ones), plans the
dispatch, holds credits on the user's chat key, queries the miners and writes
the request log. The page reads the answer as newline-delimited JSON events:

    {"event": "conversation", "id", "title", "url"}
    {"event": "start", "uid", "hotkey", "failed": [...]}     (streamed answers)
    {"event": "delta", "text"}                                (as it arrives)
    {"event": "done", "html", "balance"}                      (the stored answer, rendered)
    {"event": "error", "message"}                             (the answer was cut short)

Errors before any answer (429, 402, 502, 503…) are a JSON body with the
status instead: {"error", "code", "retry_after"?, "html"?, "conversation"?}.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.template.loader import render_to_string
from django.urls import reverse

from endpoint.core import errors
from endpoint.core.db import run_db
from endpoint.core.strategies import Strategy
from endpoint.gateway import ChatStream, GatewayCall, Prompt
from endpoint.network.dispatch import Dispatch
from endpoint.network.protocol import delta_text
from keys.models import ApiKey

from . import services
from .models import Conversation, Message

log = logging.getLogger(__name__)

ROUTE = "chat-ui"
MAX_MINERS = 1024  # more than any subnet has: Top N, In parallel and the UIDs listed
MAX_UID = 65_535  # uids are 16-bit on chain
UIDS_USAGE = "UIDs must be whole numbers, e.g. 1, 4, 7."
STRATEGIES = ("auto", "top_n", "best", "uids")


class NoSuchConversation(errors.ApiError):
    status, code = 404, "NotFound"
    detail = "No such conversation."


@dataclass(frozen=True)
class ChatOptions:
    """The settings panel: which miners, and how they are asked.

    Every field the page sends is checked, used by the chosen strategy or
    not, so a mistyped field is explained rather than silently ignored. The
    page sends numbers as its fields' text; empty text is a field left blank."""

    strategy: Strategy | None = None  # None: auto (the key's default, else the config's)
    respond_on_first_success: bool = True
    in_parallel: int | None = None

    @classmethod
    def parse(cls, data: Any) -> ChatOptions:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise errors.ChatInputError("The settings must be an object of named fields.")
        kind = _strategy_kind(data.get("strategy"))
        top_n = _count(data.get("top_n"), "Top N")
        uids = _uid_list(data.get("uids"))
        in_parallel = _count(data.get("in_parallel"), "In parallel", zero_is_blank=True)
        first_success = data.get("respond_on_first_success", True)
        if not isinstance(first_success, bool):
            raise errors.ChatInputError("Respond on first success must be true or false.")
        strategy: Strategy | None = None
        if kind in ("top_n", "best"):  # best: by live success and speed; the same N field
            if top_n is None:
                raise errors.ChatInputError(f"Top N must be a whole number from 1 to {MAX_MINERS}.")
            strategy = Strategy(top_n=top_n) if kind == "top_n" else Strategy(best=top_n)
        elif kind == "uids":
            if not uids:
                raise errors.ChatInputError("Pick at least one UID (0 or more).")
            strategy = Strategy(uids=uids)
        return cls(strategy=strategy, respond_on_first_success=first_success, in_parallel=in_parallel)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _strategy_kind(value: Any) -> str:
    if _blank(value):
        return "auto"
    if not isinstance(value, str) or value not in STRATEGIES:
        raise errors.ChatInputError("Strategy must be auto, top_n, best or uids.")
    return value


def _whole(value: Any, largest: int) -> int | None:
    """``value`` as a whole number from 0 to ``largest``, from a JSON number
    or a field's text; None if it is anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= len(str(largest)) else None
    if not isinstance(value, int) or not 0 <= value <= largest:
        return None
    return value


def _count(value: Any, name: str, *, zero_is_blank: bool = False) -> int | None:
    """A count of miners (None when left blank)."""
    if _blank(value):
        return None
    number = _whole(value, MAX_MINERS)
    if number == 0 and zero_is_blank:
        return None
    if not number:
        raise errors.ChatInputError(f"{name} must be a whole number from 1 to {MAX_MINERS}.")
    return number


def _uid_list(value: Any) -> tuple[int, ...]:
    """The UIDs field: a list of numbers, or text such as "1, 4, 7"."""
    if _blank(value):
        return ()
    if isinstance(value, str):
        parts: list[Any] = [p for p in value.replace(" ", ",").split(",") if p]
    elif isinstance(value, list):
        parts = value
    else:
        raise errors.ChatInputError(UIDS_USAGE)
    if len(parts) > MAX_MINERS:
        raise errors.ChatInputError(f"Pick at most {MAX_MINERS} UIDs.")
    uids = [_whole(p, MAX_UID) for p in parts]
    if any(uid is None for uid in uids):
        raise errors.ChatInputError(UIDS_USAGE)
    return tuple(dict.fromkeys(uids))


@dataclass
class Reply:
    """What the view sends: a stream of events, or an error with its status."""

    events: AsyncIterator[bytes] | None = None
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def _event(**fields: Any) -> bytes:
    return orjson.dumps(fields) + b"\n"


def _conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "url": reverse("chat-conversation", args=[conversation.pk]),
    }


def render_message(message: Message) -> str:
    return render_to_string("chat/_message.html", {"message": message})


def _failed(results) -> list[dict[str, Any]]:
    return [{"uid": r.uid, "responder_hotkey": r.hotkey, "error": r.error} for r in results]


def _user_message(exc: errors.ApiError) -> str:
    """What the page says for a refused or failed prompt."""
    if isinstance(exc, errors.APIKeyNotEnoughCredits):
        return "You are out of credits. Ask the operator for more to keep chatting."
    if isinstance(exc, errors.RateLimitExceeded):
        return f"You are sending messages too fast. Try again in {exc.retry_after} seconds."
    if isinstance(exc, errors.Unauthorized):
        return "Chatting is switched off for your account (its key is disabled or expired). Ask the operator."
    if isinstance(exc, errors.AllMinersFailed):
        return "Every miner asked failed to answer. Try again, or pick other miners in the settings."
    return exc.detail


def _owned_conversation(user, conversation_id: int | None) -> Conversation | None:
    if conversation_id is None:
        return None
    conversation = Conversation.objects.of(user).filter(pk=conversation_id).first()
    if conversation is None:
        raise NoSuchConversation()
    return conversation


def _record_prompt(user, conversation: Conversation | None, text: str) -> tuple[Conversation, list[dict]]:
    if conversation is None:
        conversation = services.new_conversation(user, title=text)
    services.add_user_message(conversation, text)
    return conversation, services.history(conversation)


async def ask(request, user, conversation_id: int | None, text: Any, options: ChatOptions) -> Reply:
    """Send ``text`` (with the conversation so far) to the miners the options name."""
    text = services.prompt_text(text)
    conversation = await run_db(_owned_conversation, user, conversation_id)
    account = await run_db(services.chat_account, user)
    key = account.key
    call: GatewayCall | None = None
    try:
        async with GatewayCall(request, route=ROUTE) as call:
            # The chat key is the user's own, so this counts on the user's counter (see admit).
            await call.admit(key)
            conversation, messages = await run_db(_record_prompt, user, conversation, text)
            prompt = Prompt(
                messages=messages,
                strategy=options.strategy,
                in_parallel=options.in_parallel,
                respond_on_first_success=options.respond_on_first_success,
            )
            if options.respond_on_first_success:
                stream = await call.open_stream(key, prompt)
                call.hand_off()  # the stream writes the log when it ends
                return Reply(events=_streamed(call, stream, conversation, key.pk), headers=call.response_headers())
            outcome = await call.answer(key, prompt)
        return Reply(events=_answered(call, outcome, conversation, key.pk), headers=call.response_headers())
    except errors.ApiError as exc:
        return await _refused(exc, call, conversation)


async def _refused(exc: errors.ApiError, call: GatewayCall | None, conversation: Conversation | None) -> Reply:
    body: dict[str, Any] = {**errors.page_body(exc), "error": _user_message(exc)}
    headers = dict(exc.headers())
    if conversation is not None:
        body["conversation"] = _conversation_json(conversation)
    if isinstance(exc, errors.AllMinersFailed) and conversation is not None:
        # Kept in the conversation, so the reader sees later which miners failed.
        failed = [
            {"uid": f.get("uid"), "responder_hotkey": f.get("responder_hotkey"), "error": f.get("error")}
            for f in exc.extra.get("failed_responses", [])
        ]
        message = await run_db(
            services.add_answer,
            conversation,
            failed=failed,
            error=body["error"],
            request_id=call.log.id if call else None,
        )
        body["html"] = render_message(message)
    headers.pop("WWW-Authenticate", None)  # the page's session is fine; the chat key is not the user's doing
    return Reply(status=exc.status, body=body, headers=headers)


def _balance(key_id: int) -> int | None:
    return ApiKey.objects.filter(pk=key_id).values_list("credits", flat=True).first()


async def _answered(
    call: GatewayCall, outcome: Dispatch, conversation: Conversation, key_id: int
) -> AsyncIterator[bytes]:
    """Every miner was asked: the first success is the answer, the rest are shown beside it."""
    first, *others = outcome.successes
    message = await run_db(
        services.add_answer,
        conversation,
        content=first.content,
        uid=first.uid,
        hotkey=first.hotkey,
        response_ms=first.response_ms,
        failed=_failed(outcome.failures),
        others=[
            {"uid": r.uid, "hotkey": r.hotkey, "content": r.content, "response_ms": round(r.response_ms, 1)}
            for r in others
        ],
        request_id=call.log.id,
    )
    yield _event(event="conversation", **_conversation_json(conversation))
    yield _event(event="done", html=render_message(message), balance=await run_db(_balance, key_id))


async def _streamed(
    call: GatewayCall, stream: ChatStream, conversation: Conversation, key_id: int
) -> AsyncIterator[bytes]:
    winner = stream.winner
    parts: list[str] = []
    yield _event(event="conversation", **_conversation_json(conversation))
    yield _event(event="start", uid=winner.uid, hotkey=winner.hotkey, failed=_failed(stream.race.failures))
    try:
        async for chunk in stream.chunks():
            text = delta_text(chunk)
            if text:
                parts.append(text)
                yield _event(event="delta", text=text)
    finally:
        # Stored even when the reader left mid-answer, so the conversation shows what was said.
        store = run_db(
            services.add_answer,
            conversation,
            content="".join(parts),
            uid=winner.uid,
            hotkey=winner.hotkey,
            response_ms=winner.response_ms,
            failed=_failed(stream.race.failures),
            error="The miner stopped before the end of its answer." if stream.error else "",
            request_id=call.log.id,
        )
        message = await asyncio.shield(store)
    yield _event(event="done", html=render_message(message), balance=await run_db(_balance, key_id))
