"""Packs and payments in the operator's console. Packs are edited here (or
with `manage.py packs`); payments and their Stripe events are read-only,
since only Stripe's webhook may change them, and export as CSV."""

from __future__ import annotations

import csv
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone

from endpoint.core.errors import BillingInputError
from logs.admin import ReadOnlyMixin, spreadsheet_safe

from . import deposits
from .models import RAO_PER_TAO, CreditPack, Deposit, DepositAddress, Payment, StripeEvent, TaoRate, tao

EXPORT_COLUMNS = (
    "id", "created_at", "user__email", "pack__name", "credits", "amount", "currency", "status",
    "credited_at", "credits_taken_back", "amount_refunded", "stripe_payment_intent", "stripe_charge",
    "stripe_customer", "failure",
)  # fmt: skip


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ("name", "credits", "price", "active", "created_at")
    list_editable = ("active",)
    list_filter = ("active", "currency")
    fields = ("name", "credits", "amount", "currency", "active")


class StripeEventInline(ReadOnlyMixin, admin.TabularInline):
    model = StripeEvent
    fields = ("received_at", "type", "event_id", "outcome")
    extra = 0


@admin.register(Payment)
class PaymentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id", "created_at", "user", "credits", "price", "status", "credits_taken_back", "stripe_payment_intent",
    )  # fmt: skip
    list_filter = ("status", "currency", "created_at", "pack")
    search_fields = ("user__email", "stripe_payment_intent", "stripe_charge", "stripe_customer")
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


# --- TAO deposits ----------------------------------------------------------------------


class TaoRateForm(forms.ModelForm):
    """The minimum in TAO, as `manage.py tao rate` takes it, not in rao."""

    minimum_tao = forms.CharField(
        label="Minimum deposit (TAO)", help_text="Smaller deposits are recorded but not credited. Up to 9 decimals."
    )
    confirmations = forms.IntegerField(min_value=1, help_text=TaoRate._meta.get_field("confirmations").help_text)

    class Meta:
        model = TaoRate
        fields = ("credits_per_tao", "confirmations")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial.setdefault("minimum_tao", tao(self.instance.minimum_rao).removesuffix(" TAO"))

    def clean_minimum_tao(self) -> Decimal:
        try:
            return Decimal(deposits.parse_tao(self.cleaned_data["minimum_tao"])) / RAO_PER_TAO
        except BillingInputError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(TaoRate)
class TaoRateAdmin(admin.ModelAdmin):
    """The one row of TAO settings. The seed is set with `manage.py tao seed`
    only (write-only, from a prompt): the console just says whether it is."""

    form = TaoRateForm
    fields = ("credits_per_tao", "minimum_tao", "confirmations", "seed_stored", "scanned_to", "scanned_at")
    readonly_fields = ("seed_stored", "scanned_to", "scanned_at")

    @admin.display(description="seed", boolean=True)
    def seed_stored(self, obj: TaoRate) -> bool:
        return obj.has_seed

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:billing_taorate_change", args=[TaoRate.load().pk]))

    def save_model(self, request: HttpRequest, obj: TaoRate, form: Any, change: bool) -> None:
        # The same service as `manage.py tao rate`.
        deposits.do_set_rate(
            credits_per_tao=obj.credits_per_tao,
            minimum_tao=form.cleaned_data["minimum_tao"],
            confirmations=obj.confirmations,
        )


@admin.register(DepositAddress)
class DepositAddressAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("address", "user", "index", "created_at")
    search_fields = ("address", "user__email")
    list_select_related = ("user",)


@admin.register(Deposit)
class DepositAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only: only the chain scan records and credits deposits."""

    list_display = ("block_number", "seen_at", "user", "amount", "credits", "status", "sender", "credited_at")
    list_filter = ("status", "seen_at")
    search_fields = ("user__email", "sender", "address__address", "block_hash")
    list_select_related = ("user",)
    date_hierarchy = "seen_at"
