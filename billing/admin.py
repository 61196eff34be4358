"""Packs and payments in the operator's console. Packs are edited here (or
with `manage.py packs`); payments and their Stripe events are read-only,
since only Stripe's webhook may change them, and export as CSV."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import path
from django.utils import timezone

from logs.admin import spreadsheet_safe

from .models import CreditPack, Payment, StripeEvent

EXPORT_COLUMNS = (
    "id", "created_at", "user__email", "pack__name", "credits", "amount", "currency", "status",
    "credited_at", "credits_taken_back", "amount_refunded", "stripe_payment_intent", "stripe_charge", "failure",
)  # fmt: skip


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ("name", "credits", "price", "active", "created_at")
    list_editable = ("active",)
    list_filter = ("active", "currency")
    fields = ("name", "credits", "amount", "currency", "active")


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StripeEventInline(ReadOnly, admin.TabularInline):
    model = StripeEvent
    fields = ("received_at", "type", "event_id", "outcome")
    extra = 0


@admin.register(Payment)
class PaymentAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "id", "created_at", "user", "credits", "price", "status", "credits_taken_back", "stripe_payment_intent",
    )  # fmt: skip
    list_filter = ("status", "currency", "created_at", "pack")
    search_fields = ("user__email", "stripe_payment_intent", "stripe_charge")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    inlines = [StripeEventInline]

    def get_urls(self) -> list:
        export = path("export/", self.admin_site.admin_view(self.export_csv), name="billing_payment_export")
        return [export, *super().get_urls()]

    def export_csv(self, request: HttpRequest) -> HttpResponse:
        """The changelist's payments (same filters, same search) as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            payments = self.get_changelist_instance(request).queryset
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filter in the export link.")
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="payments-{timezone.now():%Y%m%d-%H%M%S}.csv"'
        writer = csv.writer(response)
        writer.writerow(EXPORT_COLUMNS)
        for row in payments.order_by("-created_at", "-pk").values_list(*EXPORT_COLUMNS).iterator():
            writer.writerow([spreadsheet_safe(cell) for cell in row])
        return response
