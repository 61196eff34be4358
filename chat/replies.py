"""Asking the subnet from the chat page.

The same path as the API, in-process: a GatewayCall admits the user (their
own rate-limit counter, the key's rules or the global ones), plans the
dispatch, holds credits on the user's chat key, queries the miners and writes
the request log. The page reads the answer as newline-delimited JSON events:

    {"event": "conversation", "id", "title", "url"}
    {"event": "prompt", "html"}                               (the user's message, as stored)
    {"event": "start", "id", "uid", "hotkey", "failed": [...]}  (streamed answers)
    {"event": "delta", "text"}                                (as it arrives)
    {"event": "done", "html", "balance"}                      (the stored answer, rendered)

An image or speech subnet picked in the settings answers the user's message
with media instead: asked whole (not streamed), stored with the message
(``ChatMedia``) before the call ends, so an answer that could not be kept
is not charged; the events are the same without "start" and "delta".

Errors before any answer (429, 402, 502, 503…) are a JSON body with the
status instead: {"error", "code", "retry_after"?, "conversation", "prompt_html",
"html"}, the answer that never came kept with its error in the conversation.
Bad input (400) and another user's conversation (404) change nothing.

A reader who stops an answer (the page aborts its fetch) ends the request:
the gateway logs it as 499 and charges what it had charged, once; the part
of the answer said so far is kept, marked stopped. Stopped before any
answer, a new message is taken back (``services.stop_unanswered``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.template.loader import render_to_string
from django.urls import reverse

from endpoint.core import errors
from endpoint.core.db import run_db
from endpoint.core.models import Subnet
from endpoint.gateway import ChatStream, GatewayCall, MediaPrompt, Prompt
from endpoint.network.dispatch import Dispatch
from endpoint.network.media import MAX_SPEECH_CHARS, image_wire, whole_speech_wire
from endpoint.network.protocol import delta_text
from keys.models import ApiKey

from . import services
from .models import Conversation, Message
from .options import ChatOptions

log = logging.getLogger(__name__)

ROUTE = "chat-ui"
CUT_SHORT = "The miner stopped before the end of its answer."
VOICE = "alloy"  # OpenAI's first voice: every speech miner knows its name
# mp3: what OpenAI answers by default, a tenth of WAV's size in the database, and every browser plays it.
SPEECH_FORMAT = "mp3"


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
        return "You are out of credits. Buy more under Buy credits, or ask the operator."
    if isinstance(exc, errors.RateLimitExceeded):
        return f"You are sending messages too fast. Try again in {exc.retry_after} seconds."
    if isinstance(exc, errors.Unauthorized):
        return "Chatting is switched off for your account (its key is disabled or expired). Ask the operator."
    if isinstance(exc, errors.AllMinersFailed):
        return "Every miner asked failed to answer. Try again, or pick other miners in the settings."
    return exc.detail


def _opening(turn: services.Turn) -> list[bytes]:
    return [
        _event(event="conversation", **_conversation_json(turn.conversation)),
        _event(event="prompt", html=render_message(turn.prompt)),
    ]


def check_media_text(subnet: Subnet | None, text: object) -> None:
    """A message the picked subnet can't take, refused before it is kept."""
    if subnet is not None and subnet.kind == Subnet.Kind.SPEECH and isinstance(text, str):
        if len(text.strip()) > MAX_SPEECH_CHARS:
            raise errors.ChatInputError(f"Speech takes at most {MAX_SPEECH_CHARS} characters at a time.")


def media_prompt(subnet: Subnet, text: str, options: ChatOptions) -> MediaPrompt:
    """The user's message as an image subnet's prompt, or as the text a speech subnet speaks."""
    check_media_text(subnet, text)
    logged = [{"role": "user", "content": text}]
    if subnet.kind == Subnet.Kind.IMAGE:
        payload = orjson.dumps({"prompt": text, "n": options.images, "response_format": "b64_json"})
        media = MediaPrompt(subnet, payload, image_wire(options.images), [text], logged, options.strategy)
        media.units = options.images  # priced per image, as /v1/images/generations is
        return media
    payload = orjson.dumps({"input": text, "voice": VOICE, "response_format": SPEECH_FORMAT})
    return MediaPrompt(subnet, payload, whole_speech_wire(), [text], logged, options.strategy)


async def ask(
    request, user, record: Callable[[], services.Turn], options: ChatOptions, subnet: Subnet | None = None
) -> Reply:
    """Record what the page asks (``record``: a new message, an edited one, or
    one to answer again) and send the conversation to the miners the options
    name: the chat subnet's, or those of the image or speech ``subnet``."""
    turn = await run_db(record)
    key = (await run_db(services.chat_account, user)).key
    call: GatewayCall | None = None
    try:
        async with GatewayCall(request, route=ROUTE) as call:
            # The chat key is the user's own, so this counts on the user's counter (see admit).
            await call.admit(key)
            if subnet is not None:
                message = await _media_answer(call, key, subnet, turn, options)
                html = await run_db(render_message, message)  # its media are read from the database
                return Reply(events=_media_answered(html, turn, key.pk), headers=call.response_headers())
            prompt = Prompt(
                messages=turn.history,
                strategy=options.strategy,
                in_parallel=options.in_parallel,
                respond_on_first_success=options.respond_on_first_success,
            )
            if options.respond_on_first_success:
                stream = await call.open_stream(key, prompt)
                call.hand_off()  # the stream writes the log when it ends
                return Reply(events=_streamed(call, stream, turn, key.pk), headers=call.response_headers())
            outcome = await call.answer(key, prompt)
        return Reply(events=_answered(call, outcome, turn, key.pk), headers=call.response_headers())
    except errors.ApiError as exc:
        return await _refused(exc, call, turn)
    except asyncio.CancelledError:
        await asyncio.shield(run_db(services.stop_unanswered, turn, call.log.id if call else None))
        raise


async def _refused(exc: errors.ApiError, call: GatewayCall | None, turn: services.Turn) -> Reply:
    """No answer: kept in the conversation with why, so a reload shows it (and its Retry)."""
    body: dict[str, Any] = {**errors.page_body(exc), "error": _user_message(exc)}
    body["conversation"] = _conversation_json(turn.conversation)
    body["prompt_html"] = render_message(turn.prompt)
    failed = [
        {"uid": f.get("uid"), "responder_hotkey": f.get("responder_hotkey"), "error": f.get("error")}
        for f in exc.extra.get("failed_responses", [])
    ]
    try:
        message = await run_db(
            services.add_answer,
            turn.conversation,
            failed=failed,
            error=body["error"],
            request_id=call.log.id if call else None,
        )
        body["html"] = render_message(message)
    except Exception:
        log.exception("could not keep the failed answer in conversation %s", turn.conversation.pk)
    headers = dict(exc.headers())
    headers.pop("WWW-Authenticate", None)  # the page's session is fine; the chat key is not the user's doing
    return Reply(status=exc.status, body=body, headers=headers)


def _balance(key_id: int) -> int | None:
    return ApiKey.objects.filter(pk=key_id).values_list("credits", flat=True).first()


async def _answered(call: GatewayCall, outcome: Dispatch, turn: services.Turn, key_id: int) -> AsyncIterator[bytes]:
    """Every miner was asked: the first success is the answer, the rest are shown beside it."""
    first, *others = outcome.successes
    message = await run_db(
        services.add_answer,
        turn.conversation,
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
    for event in _opening(turn):
        yield event
    yield _event(event="done", html=render_message(message), balance=await run_db(_balance, key_id))


async def _media_answer(
    call: GatewayCall, key: ApiKey, subnet: Subnet, turn: services.Turn, options: ChatOptions
) -> Message:
    """Ask the subnet and keep what it answered, within the call: media that
    could not be stored is not charged (the hold is given back with the log)."""
    outcome = await call.answer_media(key, media_prompt(subnet, turn.prompt.content, options))
    first = outcome.successes[0]
    answered = first.answer if subnet.kind == Subnet.Kind.IMAGE else [first.answer]
    items = [(piece.data, piece.content_type) for piece in answered]
    try:
        return await run_db(
            services.add_media_answer,
            turn.conversation,
            subnet.kind,
            items,
            uid=first.uid,
            hotkey=first.hotkey,
            response_ms=first.response_ms,
            failed=_failed(outcome.failures),
            request_id=call.log.id,
        )
    except Exception as failure:
        log.exception("could not keep the media answered in conversation %s", turn.conversation.pk)
        call.undo_charge()
        raise errors.DatabaseUnavailable() from failure


async def _media_answered(html: str, turn: services.Turn, key_id: int) -> AsyncIterator[bytes]:
    for event in _opening(turn):
        yield event
    yield _event(event="done", html=html, balance=await run_db(_balance, key_id))


async def _streamed(call: GatewayCall, stream: ChatStream, turn: services.Turn, key_id: int) -> AsyncIterator[bytes]:
    winner = stream.winner
    failed = _failed(stream.race.failures)
    parts: list[str] = []
    message: Message | None = None
    ended = False
    try:
        for event in _opening(turn):
            yield event
        # Stored from the start, so an edit that removes it meanwhile is not undone by its end.
        message = await run_db(
            services.add_answer,
            turn.conversation,
            uid=winner.uid,
            hotkey=winner.hotkey,
            response_ms=winner.response_ms,
            failed=failed,
            request_id=call.log.id,
        )
        yield _event(event="start", id=message.pk, uid=winner.uid, hotkey=winner.hotkey, failed=failed)
        async for chunk in stream.chunks():
            text = delta_text(chunk)
            if text:
                parts.append(text)
                yield _event(event="delta", text=text)
        ended = True
    finally:
        # Kept even when the reader left or stopped it mid-answer: the conversation shows what was said.
        said = {"content": "".join(parts), "error": CUT_SHORT if stream.error else "", "stopped": not ended}
        if message is None:
            store = run_db(services.add_answer, turn.conversation, uid=winner.uid, hotkey=winner.hotkey, **said)
        else:
            store = run_db(services.finish_answer, message, **said)
        message = await asyncio.shield(store)
    yield _event(event="done", html=render_message(message), balance=await run_db(_balance, key_id))
