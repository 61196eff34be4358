"""Request logs in the operator's console: read-only, filterable, searchable
in the prompts, exportable as CSV. The list stays a fixed handful of queries
whatever the table holds: the filters offer fixed choices instead of asking
the table for its distinct values, and only one COUNT runs per page."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Coalesce, NullIf
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from rangefilter.filters import DateRangeQuickSelectListFilterBuilder

from endpoint.core import errors
from endpoint.core.admin_display import clipped
from endpoint.core.request_ids import CLIENT_ID, log_id

from .conversation import conversation_html, media_html
from .key_filter import KeyFilter, key_choices, key_filter_media
from .models import MediaFile, MinerResponse, Request
from .queries import first_prompt

ROUTES = (
    "/chat",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/images/generations",
    "/v1/audio/speech",
    "/v1/audio/transcriptions",
    "/v1/models",
    "/v1/models/{model}",
)
STATUSES = (200, 400, 401, 402, 404, 413, 429, 502, 503)
EXPORT_BATCH = 1000  # rows per query while streaming a CSV
EXPORT_COLUMNS = (
    "id",
    "started_at",
    "route",
    "status",
    "api_error",
    "key_id",
    "caller_prefix",
    "caller_name",
    "strategy",
    "credits_charged",
    "elapsed_ms",
    "client_ip",
    "prompt_tokens",
    "completion_tokens",
    "messages",
)
MESSAGES = EXPORT_COLUMNS.index("messages")  # exported as its first prompt
CSV_HEADER = (*EXPORT_COLUMNS[:6], "key_prefix", "key_name", *EXPORT_COLUMNS[8:MESSAGES], "prompt")


def _error_codes() -> list[str]:
    """Every code an ApiError can log, from the one hierarchy."""
    codes, pending = set(), [errors.ApiError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return sorted(codes)


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        classes = [("2xx", "Success (2xx)"), ("4xx", "Client errors (4xx)"), ("5xx", "Server errors (5xx)")]
        return classes + [(str(code), str(code)) for code in STATUSES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if value.endswith("xx") and value[0].isdigit():
            low = int(value[0]) * 100
            return queryset.filter(status__gte=low, status__lt=low + 100)
        if value.isdigit():
            return queryset.filter(status=int(value))
        raise IncorrectLookupParameters(f"unknown status {value!r}")


class ErrorCodeFilter(admin.SimpleListFilter):
    title = "error code"
    parameter_name = "api_error"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(code, code) for code in _error_codes()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(api_error=self.value()) if self.value() else queryset


class RouteFilter(admin.SimpleListFilter):
    title = "route"
    parameter_name = "route"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(route, route) for route in ROUTES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(route=self.value()) if self.value() else queryset


class ReadOnlyMixin:
    """Logs are evidence (and payments and deposits records of money):
    nobody adds, edits or deletes them by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MinerResponseInline(ReadOnlyMixin, admin.TabularInline):
    model = MinerResponse
    extra = 0
    fields = ("uid", "hotkey", "result", "status", "answered_in", "response", "error")
    readonly_fields = fields
    ordering = ("uid",)

    @admin.display(description="result")
    def result(self, miner: MinerResponse) -> str:
        # Not is_success's yes/no: a call cancelled because another miner
        # answered first did not fail.
        return miner.outcome

    @admin.display(description="time")
    def answered_in(self, miner: MinerResponse) -> str:
        return f"{miner.response_ms:,.0f} ms"


@admin.register(Request)
class RequestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # Short labels and clipped key and prompt cells: the list fits 1280 px beside the filters.
    list_display = ("started", "route", "status", "error", "who", "credits", "elapsed", "prompt")
    list_filter = (
        StatusFilter,
        ErrorCodeFilter,
        KeyFilter,
        RouteFilter,
        ("started_at", DateRangeQuickSelectListFilterBuilder(title="date")),
    )
    list_select_related = ("key",)
    search_fields = ("messages", "=key__prefix")
    search_help_text = (
        "Search the prompts' text, a key's exact prefix, a request id (an answer's x-request-id) "
        "or the client's own id for it (x-client-request-id)."
    )
    show_full_result_count = False
    list_per_page = 100
    actions = None
    inlines = (MinerResponseInline,)
    fields = (
        "id",
        "started_at",
        "route",
        "status",
        "api_error",
        "who",
        "user",
        "strategy",
        "credits_charged",
        "prompt_tokens",
        "completion_tokens",
        "elapsed",
        "client_ip",
        "client_request_id",
        "conversation",
        "media_kept",
    )
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        # An answer's x-request-id ("req_" + this log's id) or the client's
        # own id finds its call exactly; other words search as usual.
        term = search_term.strip()
        if (ours := log_id(term)) is not None:
            return queryset.filter(Q(id=ours) | Q(client_request_id=term)), False
        found, duplicates = super().get_search_results(request, queryset, search_term)
        if CLIENT_ID.fullmatch(term):
            found = found | queryset.filter(client_request_id=term)
        return found, duplicates

    @property
    def media(self) -> Any:
        return super().media + key_filter_media(self.admin_site)

    @admin.display(description="started", ordering="started_at")
    def started(self, request_log: Request) -> Any:
        return request_log.started_at

    @admin.display(description="error", ordering="api_error")
    def error(self, request_log: Request) -> str:
        return clipped(request_log.api_error, "error")

    @admin.display(description="credits", ordering="credits_charged")
    def credits(self, request_log: Request) -> str:
        return f"{request_log.credits_charged:,}"

    @admin.display(description="key", ordering="key_prefix")
    def who(self, request_log: Request) -> str:
        """The key as it was when it made the call; marked when deleted since."""
        if not request_log.key_prefix:
            shown = str(request_log.key) if request_log.key_id else "-"
        else:
            shown = f"{request_log.key_name or 'key'} ({request_log.key_prefix}…)"
            shown = shown if request_log.key_id else f"{shown}, deleted"
        return clipped(shown, "who")

    @admin.display(description="elapsed", ordering="elapsed_ms")
    def elapsed(self, request_log: Request) -> str:
        return f"{request_log.elapsed_ms:,.0f} ms"

    @admin.display(description="prompt")
    def prompt(self, request_log: Request) -> str:
        text = first_prompt(request_log.messages)
        return clipped(text if len(text) <= 300 else text[:299] + "…", "prompt")

    @admin.display(description="messages")
    def conversation(self, request_log: Request) -> str:
        return conversation_html(request_log.messages)

    @admin.display(description="media")
    def media_kept(self, request_log: Request) -> str:
        """The call's images and audio, when they were kept (the config's retain_media)."""
        rows = (
            MediaFile.objects.filter(request_id=request_log.pk)
            .only("id", "source", "content_type")
            .order_by("created_at")
        )
        return (
            media_html(
                [(reverse("admin:logs_request_media", args=[row.pk]), row.content_type, row.source) for row in rows]
            )
            or "Not kept (the config's retain_media was off): the log has each one's type, size and hash."
        )

    def media_view(self, request: HttpRequest, media_id: Any) -> HttpResponse:
        """A kept image or audio, for whoever may read the logs."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        row = MediaFile.objects.filter(pk=media_id).values_list("content_type", "data").first()
        if row is None:
            raise Http404("No such media, or it was purged with its log.")
        response = HttpResponse(bytes(row[1]), content_type=row[0])
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, no-store"
        return response

    # --- CSV export -----------------------------------------------------------------

    def get_urls(self) -> list:
        export = path(
            "export/",
            self.admin_site.admin_view(self.export_csv),
            name=f"{self.opts.app_label}_{self.opts.model_name}_export",
        )
        keys = path("keys/", self.admin_site.admin_view(self.keys_view), name="logs_request_keys")
        media = path("media/<uuid:media_id>/", self.admin_site.admin_view(self.media_view), name="logs_request_media")
        return [export, keys, media, *super().get_urls()]

    def keys_view(self, request: HttpRequest) -> HttpResponse:
        """The key filter's choices, for whoever may read the logs."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return key_choices(request)

    def export_csv(self, request: HttpRequest) -> StreamingHttpResponse:
        """The changelist's rows (same filters, same search), all of them, as
        CSV streamed in batches, so memory stays flat whatever the size."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            requests = self.get_changelist_instance(request).queryset
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filter in the export link.")
        # The key as the log kept it (its key may be deleted since), else as it is now.
        rows = requests.annotate(
            caller_prefix=Coalesce(NullIf("key_prefix", Value("")), "key__prefix"),
            caller_name=Coalesce(NullIf("key_name", Value("")), "key__name"),
        )
        rows = rows.order_by("-started_at", "-pk").values_list(*EXPORT_COLUMNS)
        stream = _async_csv(rows) if isinstance(request, ASGIRequest) else _sync_csv(rows)
        response = StreamingHttpResponse(stream, content_type="text/csv; charset=utf-8")
        filename = f"requests-{timezone.now():%Y%m%d-%H%M%S}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


def _next_batch(rows: QuerySet, after: tuple | None) -> list[tuple]:
    # Keyset pagination on (started_at, id): each batch is one indexed query,
    # and no cursor is held open between batches.
    if after is not None:
        started_at, pk = after
        rows = rows.filter(Q(started_at__lt=started_at) | Q(started_at=started_at, pk__lt=pk))
    return list(rows[:EXPORT_BATCH])


def _csv_text(batch: list[tuple] | None) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    if batch is None:
        writer.writerow(CSV_HEADER)
    else:
        for row in batch:
            writer.writerow([spreadsheet_safe(cell) for cell in (*row[:MESSAGES], first_prompt(row[MESSAGES]))])
    return out.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: Any) -> Any:
    """A cell a spreadsheet won't run: text a client wrote (a prompt, a key's
    name) that starts like a formula gets a leading quote (OWASP's advice
    for CSV injection). Numbers stay numbers."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def _sync_csv(rows: QuerySet) -> Iterator[str]:
    yield _csv_text(None)
    after = None
    while batch := _next_batch(rows, after):
        yield _csv_text(batch)
        after = (batch[-1][1], batch[-1][0])


async def _async_csv(rows: QuerySet) -> AsyncIterator[str]:
    # Under ASGI a sync iterator would be read whole into memory before the
    # first byte is sent; an async one streams.
    yield _csv_text(None)
    after = None
    while batch := await sync_to_async(_next_batch)(rows, after):
        yield _csv_text(batch)
        after = (batch[-1][1], batch[-1][0])
