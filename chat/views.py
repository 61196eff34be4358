"""The chat pages and the user's keys page. Thin: the work is in services
(writes), replies (asking the subnet) and neurons (the UID picker)."""

from __future__ import annotations

import re
from functools import partial

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from endpoint.core import errors
from endpoint.core.jsonbody import NOT_JSON, loads_bounded
from endpoint.core.subnets import served_subnets
from keys.models import ApiKey
from keys.services import NewKey
from keys.shown_once import keep_to_show_once, take_to_show
from keys.user_keys import CREDITS_RANGE, do_create_user_key, do_revoke_user_key, user_keys

from . import limits, services
from .models import ChatMedia, Conversation
from .neurons import search_neurons
from .options import ChatOptions, offered_subnets
from .replies import Reply, ask, check_media_text

MALFORMED = "The page sent a malformed message."


def _chat_page(request: HttpRequest, conversation: Conversation | None, status: int = 200) -> HttpResponse:
    account = services.chat_account(request.user)
    context = {
        "conversation": conversation,
        "conversations": Conversation.objects.of(request.user),
        "chat_messages": _with_media(conversation) if conversation else [],
        "balance": account.key.credits,
        "subnets": offered_subnets(served_subnets()),
    }
    return render(request, "chat/chat.html", context, status=status)


def _with_media(conversation: Conversation):
    """The conversation's messages, each with its media's ids and types (not their bytes)."""
    media = ChatMedia.objects.defer("data")
    return conversation.messages.prefetch_related(Prefetch("media", queryset=media))


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return _chat_page(request, None)


@login_required
@require_GET
def conversation_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _chat_page(request, get_object_or_404(Conversation.objects.of(request.user), pk=pk))


@login_required
@require_POST
def new_conversation(request: HttpRequest) -> HttpResponse:
    return redirect("chat-conversation", services.new_conversation(request.user).pk)


@login_required
@require_POST
def rename_conversation(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = get_object_or_404(Conversation.objects.of(request.user), pk=pk)
    try:
        services.rename_conversation(conversation, request.POST.get("title", ""))
    except errors.ChatInputError as exc:
        # The page again, saying why: nothing was renamed.
        messages.error(request, str(exc))
        return _chat_page(request, conversation, status=400)
    return redirect("chat-conversation", conversation.pk)


@login_required
@require_http_methods(["GET", "POST"])
def delete_conversation(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks to confirm (a page of its own, so it works without scripts);
    POST deletes, for good."""
    conversation = get_object_or_404(Conversation.objects.of(request.user), pk=pk)
    if request.method == "GET":
        return render(request, "chat/delete_conversation.html", {"conversation": conversation})
    services.delete_conversation(conversation)
    messages.success(request, "Conversation deleted.")
    return redirect("chat-home")


@login_required
@require_POST
@errors.answers_errors_as_json(errors.page_body)
async def send(request: HttpRequest) -> HttpResponse:
    """One prompt from the page: NDJSON events while the answer arrives, or a
    JSON error with its status (see chat.replies)."""
    user = await request.auser()
    await sync_to_async(limits.count_page_use, thread_sensitive=False)(request, limits.SEND, user)
    data = _send_body(request.body)
    conversation_id = _conversation_id(data.get("conversation"))
    options = ChatOptions.parse(data.get("settings"))
    subnet = await options.media_subnet()
    check_media_text(subnet, data.get("content"))
    record = partial(services.record_prompt, user, conversation_id, data.get("content"))
    return _answer(await ask(request, user, record, options, subnet))


@login_required
@require_POST
@errors.answers_errors_as_json(errors.page_body)
async def edit_message(request: HttpRequest, pk: int, message: int) -> HttpResponse:
    """The user's message says something else now: the conversation after it
    is dropped and the new text answered (the same events as ``send``)."""
    user = await request.auser()
    await sync_to_async(limits.count_page_use, thread_sensitive=False)(request, limits.SEND, user)
    data = _send_body(request.body)
    options = ChatOptions.parse(data.get("settings"))
    subnet = await options.media_subnet()
    check_media_text(subnet, data.get("content"))
    record = partial(services.record_edit, user, pk, message, data.get("content"))
    return _answer(await ask(request, user, record, options, subnet))


@login_required
@require_POST
@errors.answers_errors_as_json(errors.page_body)
async def regenerate(request: HttpRequest, pk: int, message: int) -> HttpResponse:
    """The user's message answered again (Regenerate, Retry): what came after it is replaced."""
    user = await request.auser()
    await sync_to_async(limits.count_page_use, thread_sensitive=False)(request, limits.SEND, user)
    options = ChatOptions.parse(_send_body(request.body or b"{}").get("settings"))
    subnet = await options.media_subnet()  # the panel's pick now, as for a new message
    return _answer(await ask(request, user, partial(services.record_retry, user, pk, message), options, subnet))


def _answer(reply: Reply) -> HttpResponse:
    if reply.events is None:
        response: HttpResponse = JsonResponse(reply.body, status=reply.status)
    else:
        response = StreamingHttpResponse(reply.events, content_type="application/x-ndjson")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    for name, value in reply.headers.items():
        response[name] = value
    return response


def _send_body(raw: bytes) -> dict:
    try:
        data = loads_bounded(raw)  # the API's bounds: too deep or a NUL anywhere is a 400 too
    except errors.InvalidBody as exc:
        raise errors.InvalidBody(MALFORMED if exc.detail == NOT_JSON else exc.detail) from None
    if not isinstance(data, dict):
        raise errors.ApiError(MALFORMED)
    return data


def _conversation_id(value: object) -> int | None:
    """The conversation the page is in (None: a new one), as a number or its text."""
    if value in (None, ""):
        return None
    text = value if isinstance(value, str) else str(value) if type(value) is int else ""
    # 18 digits always fit the database's id column; a longer one is no id of ours.
    if not re.fullmatch(r"[0-9]{1,18}", text):
        raise errors.ApiError(MALFORMED)
    return int(text)


@login_required
@require_GET
def media(request: HttpRequest, pk: int) -> HttpResponse:
    """An image or clip answered in one of the user's conversations: to its
    owner only (anyone else, staff included, gets the same 404 as for no
    such media), never run as a page of ours, kept in no shared cache."""
    found = services.owned_media(request.user, pk)
    if found is None:
        raise Http404("No such media.")
    content_type, data = found
    response = HttpResponse(bytes(data), content_type=content_type)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=86400"  # a piece never changes; it only goes
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    return response


@login_required
@require_GET
def neurons(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"neurons": search_neurons(request.GET.get("q", ""))})


# --- the user's API keys ------------------------------------------------------------


@login_required
def keys_page(request: HttpRequest) -> HttpResponse:
    status, headers = 200, {}
    form = {"name": "", "credits": ""}
    if request.method == "POST":
        form = {"name": request.POST.get("name", ""), "credits": request.POST.get("credits", "")}
        try:
            limits.count_page_use(request, limits.KEY_CREATION, request.user)
            balance = services.chat_account(request.user).key
            new_key = do_create_user_key(request.user, form["name"], _credits(form["credits"] or "0"), balance=balance)
        except errors.RateLimitExceeded as exc:
            messages.error(request, exc.detail)
            status, headers = exc.status, exc.headers()
        except errors.InputError as exc:
            messages.error(request, str(exc))
            status = 400
        except errors.APIKeyNotEnoughCredits:
            messages.error(request, "Your chat balance does not have that many credits.")
        else:
            # Post/redirect/get: a refresh of the page showing the key must
            # neither create (and fund) another key nor show this one again.
            keep_to_show_once(request, new_key.key, new_key.raw)
            return redirect(f"{reverse('chat-keys')}?created={new_key.key.pk}")
    elif request.method != "GET":
        return HttpResponse(status=405)
    created, raw = _created_key(request)
    account = services.chat_account(request.user)
    context = {
        "keys": user_keys(request.user),
        "created": created,
        "new_key": NewKey(key=created, raw=raw) if raw else None,
        "balance": account.key.credits,
        "form": form,
        "base_url": request.build_absolute_uri("/").rstrip("/"),
    }
    response = render(request, "chat/keys.html", context, status=status)
    for name, value in headers.items():
        response[name] = value
    if raw:
        response["Cache-Control"] = "no-store"  # the page holds a secret
    return response


def _created_key(request: HttpRequest) -> tuple[ApiKey | None, str | None]:
    """The user's key the page was redirected to after creating it, and its
    full text the first time the page is shown (None after)."""
    pk = request.GET.get("created", "")
    key = (
        user_keys(request.user).filter(pk=int(pk)).first() if pk.isascii() and pk.isdigit() and len(pk) <= 18 else None
    )
    return key, take_to_show(request, key) if key else None


def _credits(text: str) -> int:
    """The credits field: a whole number (do_create_user_key checks the range)."""
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 16):
        raise errors.KeyInputError(CREDITS_RANGE)
    return int(text)


@login_required
@require_http_methods(["GET", "POST"])
def revoke_key(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks to confirm (a page of its own, so it works without scripts);
    POST revokes."""
    key = get_object_or_404(user_keys(request.user), pk=pk)
    if request.method == "GET":
        if not key.enabled:
            messages.info(request, f"Key {key.prefix}… is already revoked.")
            return redirect("chat-keys")
        return render(request, "chat/revoke_key.html", {"key": key})
    do_revoke_user_key(key, balance=services.chat_account(request.user).key)
    messages.success(request, f"Key {key.prefix}… revoked.")
    return redirect("chat-keys")
