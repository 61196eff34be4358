"""The request logs' key filter: a search box that asks the server for keys
as the operator types (Django's own select2 autocomplete), instead of a
sidebar listing every key. Its answers come from the logs' admin, so a viewer
who may read the logs but not the keys can still filter by key."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Q, QuerySet
from django.forms import Media
from django.http import HttpRequest, JsonResponse

from keys.models import ApiKey

PAGE = 20  # keys an answer lists; scrolling down asks for the next ones


def key_filter_media(admin_site: admin.AdminSite) -> Media:
    """select2 and Django's autocomplete script, as an autocomplete field has them."""
    from .models import Request

    return AutocompleteSelect(Request._meta.get_field("key"), admin_site).media


class KeyFilter(admin.SimpleListFilter):
    title = "key"
    parameter_name = "key__id__exact"  # the name the admin's own key filter used, so old links still work
    template = "admin/logs/key_filter.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return []  # never the whole table: the box asks as the operator types

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        if self.key_id() is None:
            raise IncorrectLookupParameters(f"unknown key {self.value()!r}")
        return queryset.filter(key_id=self.key_id())

    def key_id(self) -> int | None:
        value = self.value() or ""
        return int(value) if value.isascii() and value.isdigit() else None

    def choices(self, changelist: Any) -> Any:
        value = self.value()
        chosen = ApiKey.objects.filter(pk=self.key_id()).first() if self.key_id() is not None else None
        yield {
            "value": value or "",
            "label": str(chosen) if chosen else "",
            # every other filter, the search and the order, kept when a key is chosen
            "others": [
                (name, item)
                for name, items in changelist.filter_params.items()
                if name not in (self.parameter_name, PAGE_VAR)
                for item in items
            ],
        }


def key_choices(request: HttpRequest) -> JsonResponse:
    """select2's answer: the keys whose name holds the term or whose prefix starts with it."""
    term = request.GET.get("term", "").strip()
    try:
        page = max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        page = 1
    keys = ApiKey.objects.order_by("name", "pk")
    if term:
        keys = keys.filter(Q(name__icontains=term) | Q(prefix__startswith=term))
    found = list(keys[(page - 1) * PAGE : page * PAGE + 1])
    results = [{"id": str(key.pk), "text": str(key)} for key in found[:PAGE]]
    return JsonResponse({"results": results, "pagination": {"more": len(found) > PAGE}})
