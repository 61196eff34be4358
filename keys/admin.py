"""API keys in the operator's console. Every write goes through
``keys.services`` (as the `key` command's do), so the admin validates and
counts exactly like the CLI."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from endpoint.core.admin_actions import action_page, submitted_form
from endpoint.core.admin_display import clipped
from endpoint.core.admin_forms import RateLimitRulesField
from endpoint.core.errors import KeyInputError
from endpoint.core.strategies import parse_strategy
from keys.credits import do_adjust_credits

from .curl import KEY_PLACEHOLDER, curl_commands
from .expiry import HINT, parse_valid_until
from .models import ApiKey
from .services import do_create_key, do_delete_key, do_edit_key
from .shown_once import keep_to_show_once, take_to_show

CREDITS_HELP = "Empty (or -1) means unlimited."
VALID_UNTIL_HELP = "A date (2025-01-01), a unix timestamp, 'never', or English like 'in 1 month'."


# --- forms ------------------------------------------------------------------


def _valid_until(text: str) -> Any:
    try:
        return parse_valid_until(text)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None


class KeyForm(forms.ModelForm):
    """Fields an operator sets on a key, in the CLI's terms."""

    credits = forms.IntegerField(required=False, min_value=-1, help_text=CREDITS_HELP)
    valid_until = forms.CharField(required=False, help_text=VALID_UNTIL_HELP, label="Valid until")
    rate_limits = RateLimitRulesField(
        label="Rate limits", help_text="This key's own rules (they replace the global ones). Clear a row to drop it."
    )

    class Meta:
        model = ApiKey
        fields = ("name", "owner", "enabled", "credits", "default_strategy", "rate_limits")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        expires_at = self.instance.expires_at if self.instance.pk else None
        self.initial.setdefault("valid_until", expires_at.isoformat() if expires_at else "never")

    def clean_credits(self) -> int | None:
        credits = self.cleaned_data["credits"]
        return None if credits in (None, -1) else credits

    def clean_default_strategy(self) -> str:
        text = self.cleaned_data["default_strategy"]
        try:
            parse_strategy(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return text

    def clean_valid_until(self) -> Any:
        # An unchanged (possibly already past) expiry is not re-validated.
        if self.instance.pk and "valid_until" not in self.changed_data:
            return self.instance.expires_at
        return _valid_until(self.cleaned_data["valid_until"])


class AddCreditsForm(forms.Form):
    amount = forms.IntegerField(help_text="Credits to add; a negative number takes them away (never below zero).")
    reason = forms.CharField(required=False, max_length=200, help_text="Kept in the server log.")

    def clean_amount(self) -> int:
        if self.cleaned_data["amount"] == 0:
            raise forms.ValidationError("Give a number other than 0.")
        return self.cleaned_data["amount"]


class ExtendExpiryForm(forms.Form):
    valid_until = forms.CharField(label="Valid until", help_text=HINT)

    def clean_valid_until(self) -> Any:
        return _valid_until(self.cleaned_data["valid_until"])


def state_html(word: str, *, ok: bool) -> str:
    icon = static(f"admin/img/icon-{'yes' if ok else 'no'}.svg")
    return format_html('<img src="{}" alt="{}"> {}', icon, "yes" if ok else "no", word)


# --- list filters -----------------------------------------------------------


class ExpiredFilter(admin.SimpleListFilter):
    title = "expired"
    parameter_name = "expired"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Expired"), ("no", "Not expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.expired()
        if self.value() == "no":
            return queryset.exclude(pk__in=ApiKey.objects.expired().values("pk"))
        return queryset


class UnlimitedFilter(admin.SimpleListFilter):
    title = "credits"
    parameter_name = "unlimited"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Unlimited"), ("no", "Limited")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(credits__isnull=self.value() == "yes")
        return queryset


# --- the admin ----------------------------------------------------------------


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = KeyForm
    # Chosen to fit a laptop's 1280 px beside the filters: enabled and expired are one column.
    list_display = ("name_shown", "prefix", "owner_cell", "credits_left", "state", "expires", "calls", "last_used")
    list_filter = ("enabled", ExpiredFilter, ("owner", admin.RelatedOnlyFieldListFilter), UnlimitedFilter)
    list_select_related = ("owner",)
    search_fields = ("name", "^prefix")
    ordering = ("-created_at",)
    show_full_result_count = False
    raw_id_fields = ("owner",)
    actions = ("enable_keys", "disable_keys", "add_credits", "extend_expiry")
    readonly_fields = ("prefix", "owner_shown", "request_count", "api_request_count", "created_at", "last_used_at")
    add_fieldsets = (
        (None, {"fields": ("name", "owner", "enabled", "credits", "valid_until", "default_strategy")}),
        ("Rate limits", {"fields": ("rate_limits",)}),
    )
    # An existing key keeps its owner: the services never move a key.
    fieldsets = (
        (None, {"fields": ("name", "prefix", "owner_shown", "enabled")}),
        ("Spending", {"fields": ("credits", "valid_until", "default_strategy")}),
        ("Rate limits", {"fields": ("rate_limits",)}),
        ("Usage", {"fields": ("api_request_count", "request_count", "created_at", "last_used_at")}),
    )

    @admin.display(description="credits", ordering="credits")
    def credits_left(self, key: ApiKey) -> str:
        return "unlimited" if key.credits is None else f"{key.credits:,}"

    @admin.display(description="state", ordering="enabled")
    def state(self, key: ApiKey) -> str:
        """Whether the key can call now, and if not, why: an expired key is
        never shown with the admin's green "yes"."""
        if not key.enabled:
            return state_html("disabled", ok=False)
        return state_html("expired", ok=False) if key.is_expired else state_html("active", ok=True)

    @admin.display(description="name", ordering="name")
    def name_shown(self, key: ApiKey) -> str:
        return clipped(key.name or "(no name)", "name")

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, key: ApiKey) -> Any:
        return key.expires_at or "never"

    @admin.display(description="calls", ordering="api_request_count")
    def calls(self, key: ApiKey) -> str:
        return f"{key.api_request_count:,}"

    @admin.display(description="last used", ordering="last_used_at")
    def last_used(self, key: ApiKey) -> Any:
        return key.last_used_at

    @admin.display(description="owner", ordering="owner__username")
    def owner_cell(self, key: ApiKey) -> str:
        return clipped(self.owner_shown(key), "owner")

    @admin.display(description="owner")
    def owner_shown(self, key: ApiKey) -> str:
        return str(key.owner) if key.owner_id else "-"

    def get_fieldsets(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        return () if obj is None else self.readonly_fields

    # --- writes through the services ------------------------------------------

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in ("name", "enabled", "credits", "default_strategy", "rate_limits")}
            changes = {name: value for name, value in changes.items() if name in form.changed_data}
            if "valid_until" in form.changed_data:
                changes["expires_at"] = data["valid_until"]
            if changes:
                do_edit_key(obj, **changes)
            return
        new = do_create_key(
            name=data["name"],
            credits=data["credits"],
            expires_at=data["valid_until"],
            enabled=data["enabled"],
            default_strategy=data["default_strategy"],
            owner=data.get("owner"),
        )
        if data["rate_limits"]:
            do_edit_key(new.key, rate_limits=data["rate_limits"])
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(new.key, field.attname))
        obj._state.adding = False
        obj._raw_key = new.raw  # for response_add only; never stored

    def delete_model(self, request: HttpRequest, obj: ApiKey) -> None:
        do_delete_key(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for key in queryset:
            do_delete_key(key)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        pass  # no m2m or inlines; the services saved everything

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        """Post/redirect/get: the key waits in the session for the one page
        that shows it, so refreshing that page creates no second key."""
        keep_to_show_once(request, obj, obj._raw_key)
        return HttpResponseRedirect(reverse("admin:keys_apikey_created", args=[obj.pk]))

    def get_urls(self) -> list:
        created = path("<int:pk>/created/", self.admin_site.admin_view(self.created_view), name="keys_apikey_created")
        return [created, *super().get_urls()]

    def created_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The one page that ever shows the full key, and only on its first load."""
        if not (self.has_add_permission(request) or self.has_view_permission(request)):
            raise PermissionDenied
        key = get_object_or_404(ApiKey, pk=pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.opts,
            "key": key,
            "raw_key": take_to_show(request, key),
            "curl": curl_commands(key, request.build_absolute_uri("/")),
            "placeholder": KEY_PLACEHOLDER,
        }
        response = TemplateResponse(request, "admin/keys/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: ApiKey | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["curl"] = curl_commands(obj, request.build_absolute_uri("/"))
            context["placeholder"] = KEY_PLACEHOLDER
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    # --- actions ------------------------------------------------------------------

    def _report(self, request: HttpRequest, done: int, verb: str, failures: list[str]) -> None:
        if done:
            self.message_user(request, f"{verb} {done} key{'s' if done != 1 else ''}.", messages.SUCCESS)
        for failure in failures:
            self.message_user(request, failure, messages.ERROR)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet, enabled: bool) -> None:
        keys = list(queryset)
        for key in keys:
            do_edit_key(key, enabled=enabled)
        self._report(request, len(keys), "Enabled" if enabled else "Disabled", [])

    @admin.action(description="Enable selected keys", permissions=["change"])
    def enable_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected keys", permissions=["change"])
    def disable_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_enabled(request, queryset, False)

    @admin.action(description="Add credits to selected keys…", permissions=["change"])
    def add_credits(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        form = submitted_form(request, AddCreditsForm)
        if not form.is_bound or not form.is_valid():
            return action_page(
                self, request, queryset, form, action="add_credits", title="Add credits", submit="Add credits"
            )
        done, failures = 0, []
        for key in queryset:
            try:
                do_adjust_credits(
                    key,
                    form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user.get_username(),
                )
                done += 1
            except (KeyInputError, ApiKey.DoesNotExist) as exc:
                failures.append(f"{key}: {exc}")
        self._report(request, done, f"Added {form.cleaned_data['amount']:+,} credits to", failures)
        return None

    @admin.action(description="Extend expiry of selected keys…", permissions=["change"])
    def extend_expiry(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        form = submitted_form(request, ExtendExpiryForm)
        if not form.is_bound or not form.is_valid():
            return action_page(
                self, request, queryset, form, action="extend_expiry", title="Extend expiry", submit="Set expiry"
            )
        until = form.cleaned_data["valid_until"]
        keys = list(queryset)
        for key in keys:
            do_edit_key(key, expires_at=until)
        when = "never expire" if until is None else f"expire at {timezone.localtime(until):%Y-%m-%d %H:%M:%S %Z}"
        self._report(request, len(keys), f"Set to {when}:", [])
        return None
