"""The chat pages and the user's keys page. Thin: the work is in services
(writes), replies (asking the subnet) and neurons (the UID picker)."""

from __future__ import annotations

import orjson
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from endpoint import errors

from . import services
from .models import Conversation
from .neurons import search_neurons
from .replies import ChatOptions, ask


def _chat_page(request: HttpRequest, conversation: Conversation | None) -> HttpResponse:
    account = services.chat_account(request.user)
    context = {
        "conversation": conversation,
        "conversations": Conversation.objects.of(request.user),
        "chat_messages": conversation.messages.all() if conversation else [],
        "balance": account.key.credits,
    }
    return render(request, "chat/chat.html", context)


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
    except services.ChatInputError as exc:
        messages.error(request, str(exc))
    return redirect("chat-conversation", conversation.pk)


@login_required
@require_POST
def delete_conversation(request: HttpRequest, pk: int) -> HttpResponse:
    services.delete_conversation(get_object_or_404(Conversation.objects.of(request.user), pk=pk))
    messages.success(request, "Conversation deleted.")
    return redirect("chat-home")


@login_required
@require_POST
async def send(request: HttpRequest) -> HttpResponse:
    """One prompt from the page: NDJSON events while the answer arrives, or a
    JSON error with its status (see chat.replies)."""
    user = await request.auser()
    try:
        data = orjson.loads(request.body)
        if not isinstance(data, dict):
            raise ValueError
        conversation_id = data.get("conversation")
        conversation_id = None if conversation_id in (None, "") else int(conversation_id)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return JsonResponse({"error": "The page sent a malformed message.", "code": "BadRequest"}, status=400)
    try:
        options = ChatOptions.parse(data.get("settings") or {})
        reply = await ask(request, user, conversation_id, str(data.get("content") or ""), options)
    except services.ChatInputError as exc:
        return JsonResponse({"error": str(exc), "code": "BadRequest"}, status=400)
    except Http404:
        return JsonResponse({"error": "No such conversation.", "code": "NotFound"}, status=404)
    if reply.events is None:
        response: HttpResponse = JsonResponse(reply.body, status=reply.status)
    else:
        response = StreamingHttpResponse(reply.events, content_type="application/x-ndjson")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    for name, value in reply.headers.items():
        response[name] = value
    return response


@login_required
@require_GET
def neurons(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"neurons": search_neurons(request.GET.get("q", ""))})


# --- the user's API keys ------------------------------------------------------------


@login_required
def keys_page(request: HttpRequest) -> HttpResponse:
    new_key = None
    form = {"name": "", "credits": "0"}
    if request.method == "POST":
        form = {"name": request.POST.get("name", ""), "credits": request.POST.get("credits", "0") or "0"}
        try:
            credits = int(form["credits"])
        except ValueError:
            credits = -1
        try:
            # The full key is in this response only; it is stored nowhere.
            new_key = services.create_user_key(request.user, form["name"], credits)
            form = {"name": "", "credits": "0"}
        except services.ChatInputError as exc:
            messages.error(request, str(exc))
        except errors.APIKeyNotEnoughCredits:
            messages.error(request, "Your chat balance does not have that many credits.")
    elif request.method != "GET":
        return HttpResponse(status=405)
    account = services.chat_account(request.user)
    context = {
        "keys": services.user_keys(request.user),
        "new_key": new_key,
        "balance": account.key.credits,
        "form": form,
        "base_url": request.build_absolute_uri("/").rstrip("/"),
    }
    response = render(request, "chat/keys.html", context)
    if new_key is not None:
        response["Cache-Control"] = "no-store"  # the page holds a secret
    return response


@login_required
@require_POST
def revoke_key(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(services.user_keys(request.user), pk=pk)
    services.revoke_user_key(key)
    messages.success(request, f"Key {key.prefix}… revoked.")
    return redirect("chat-keys")
