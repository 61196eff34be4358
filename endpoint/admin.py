"""Neurons and the runtime config in the operator's console. Config writes go
through ``endpoint.core.config.do_set_configs`` (all of a save or none), so the
admin accepts exactly what `manage.py config set` accepts; the form is built from
``endpoint.core.config.FIELDS``, so a new setting appears here by itself.

Who may change what is the API's rule too: change_endpointconfig for the
page, and a superuser for the settings in ``SUPERUSER_ONLY`` (secrets and the
addresses the server sends data to). Anyone else sees those disabled, and
a forged POST of them is ignored."""

from __future__ import annotations

import copy
import json
import time
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from endpoint.core.admin_forms import RateLimitRulesField
from endpoint.core.config import (
    FIELDS,
    SECRETS,
    SUPERUSER_ONLY,
    check_together,
    do_set_configs,
    masked_secret,
    parse_rate_limits,
)
from endpoint.core.errors import ConfigError, MetagraphSourceError, SubnetInputError
from endpoint.core.models import METAGRAPH_SOURCES, EndpointConfig, Neuron, Subnet
from endpoint.core.subnets import (
    CHAT_SETTINGS,
    SUBNET_FIELDS,
    SYNC_STATUS,
    do_add_subnet,
    do_edit_subnet,
    do_remove_subnet,
    edited_subnet,
    ensure_chat_subnet,
    new_subnet,
)
from endpoint.core.subnets import SUPERUSER_ONLY as SUBNET_SUPERUSER_ONLY
from logs.stats import miner_stats

from .network.metagraph import sync_metagraph, sync_subnet
from .network.minerstats import live_miner_stats

STATS_WINDOW = timedelta(hours=24)

# --- neurons -------------------------------------------------------------------


class TagsField(forms.CharField):
    """Tags typed as "fast, english, code", kept as a JSON list."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(str(tag) for tag in value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value) or ""
        return list(dict.fromkeys(tag.strip() for tag in text.split(",") if tag.strip()))


class NeuronForm(forms.ModelForm):
    tags = TagsField(required=False, help_text="Comma-separated; the chat's UID search matches them.")

    class Meta:
        model = Neuron
        fields = ("description", "tags")


class NeuronChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # One query for the whole page, whatever the number of rows.
        stats = miner_stats(timezone.now() - STATS_WINDOW) if self.result_list else {}
        # The live figures the best strategy routes by: one Redis round trip for the page.
        live = live_miner_stats(n.hotkey for n in self.result_list) if self.result_list else {}
        for neuron in self.result_list:
            neuron.stats_24h = stats.get(neuron.hotkey) or {}
            neuron.live = live.get(neuron.hotkey) or {}


def run_metagraph_sync(model_admin: admin.ModelAdmin, request: HttpRequest) -> None:
    """What `manage.py metagraph sync` does, reported as a message."""
    try:
        result = sync_metagraph()
    except (MetagraphSourceError, ConfigError, OSError) as exc:
        model_admin.message_user(request, f"Metagraph sync failed: {exc}", messages.ERROR)
        return
    model_admin.message_user(
        request,
        f"Metagraph synced from {result.network} (netuid {result.netuid}, block {result.block}): "
        f"{result.created} new, {result.updated} updated, {result.deactivated} deactivated.",
        messages.SUCCESS,
    )


@admin.register(Neuron)
class NeuronAdmin(admin.ModelAdmin):
    form = NeuronForm
    # Short labels and a clipped hotkey, validator permits in the filters only: the list fits 1280 px.
    list_display = (
        "uid",
        "hotkey_short",
        "axon",
        "incentive_shown",
        "success_24h",
        "p50_24h",
        "calls_24h",
        "cancelled_24h",
        "live_routing",
        "active",
    )
    list_filter = ("active", "validator_permit", "netuid")
    search_fields = ("=uid", "hotkey", "coldkey", "description")
    list_per_page = 100
    show_full_result_count = False
    actions = ("sync_metagraph_now",)
    fieldsets = (
        (None, {"fields": ("netuid", "uid", "hotkey", "coldkey", "axon")}),
        (
            "Metagraph",
            {"fields": ("incentive_shown", "trust_shown", "stake_shown", "validator_permit", "active", "last_update")},
        ),
        ("Operator's notes", {"fields": ("description", "tags")}),
    )
    readonly_fields = (
        "netuid",
        "uid",
        "hotkey",
        "coldkey",
        "axon",
        "incentive_shown",
        "trust_shown",
        "stake_shown",
        "validator_permit",
        "active",
        "last_update",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # neurons come from the metagraph

    def has_delete_permission(self, request: HttpRequest, obj: Neuron | None = None) -> bool:
        return False  # a sync would bring them back; it deactivates the ones that left

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return NeuronChangeList

    @admin.display(description="hotkey", ordering="hotkey")
    def hotkey_short(self, neuron: Neuron) -> str:
        return format_html('<code title="{}">{}…{}</code>', neuron.hotkey, neuron.hotkey[:6], neuron.hotkey[-4:])

    @admin.display(description="incentive", ordering="incentive")
    def incentive_shown(self, neuron: Neuron) -> str:
        return f"{neuron.incentive:.4f}"

    @admin.display(description="trust", ordering="trust")
    def trust_shown(self, neuron: Neuron) -> str:
        return f"{neuron.trust:.4f}"

    @admin.display(description="stake", ordering="stake")
    def stake_shown(self, neuron: Neuron) -> str:
        return f"{neuron.stake:,.2f}"

    @admin.display(description="success")
    def success_24h(self, neuron: Neuron) -> str:
        rate = getattr(neuron, "stats_24h", {}).get("success_rate")
        return "–" if rate is None else f"{rate * 100:.1f}%"

    @admin.display(description="p50")
    def p50_24h(self, neuron: Neuron) -> str:
        p50 = getattr(neuron, "stats_24h", {}).get("p50_ms")
        return "–" if p50 is None else f"{p50:,.0f} ms"

    @admin.display(description="calls")
    def calls_24h(self, neuron: Neuron) -> int:
        return getattr(neuron, "stats_24h", {}).get("requests", 0)

    @admin.display(description="cancelled")
    def cancelled_24h(self, neuron: Neuron) -> int:
        """Calls stopped because another miner answered first: in the calls, not in the success rate."""
        return getattr(neuron, "stats_24h", {}).get("cancelled", 0)

    @admin.display(description="live")
    def live_routing(self, neuron: Neuron) -> str:
        """The figures routing uses now: weighted success and latency, in flight, cool-down."""
        live = getattr(neuron, "live", {})
        if not live:
            return "–"
        parts = []
        if live["success_rate"] is not None:
            parts.append(f"{live['success_rate'] * 100:.0f}% ok")
        if live["latency_ms"] is not None:
            parts.append(f"{live['latency_ms']:,.0f} ms")
        parts.append(f"{live['inflight']} in flight")
        until = live["cooldown_until"]
        if until is not None and until > time.time():
            parts.append(f"cooling down {until - time.time():.0f} s")
        elif live["consecutive_failures"]:
            parts.append(f"{live['consecutive_failures']} failed in a row")
        return " · ".join(parts)

    def save_model(self, request: HttpRequest, obj: Neuron, form: forms.ModelForm, change: bool) -> None:
        # Only the operator's fields: the metagraph owns the rest (and a sync may be writing it).
        obj.save(update_fields=["description", "tags"])

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        config = EndpointConfig.load()
        synced_at = config.metagraph_synced_at
        age = (timezone.now() - synced_at).total_seconds() if synced_at else None
        extra_context = {
            **(extra_context or {}),
            "metagraph": {
                "synced_at": synced_at,
                "block": config.metagraph_block,
                "network": config.metagraph_network,
                "stale": age is None or age > settings.METAGRAPH_MAX_AGE_SECONDS,
            },
            "can_sync": self.has_change_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list:
        sync = path(
            "sync/",
            self.admin_site.admin_view(require_POST(self.sync_view)),
            name=f"{self.opts.app_label}_{self.opts.model_name}_sync",
        )
        return [sync, *super().get_urls()]

    def sync_view(self, request: HttpRequest) -> HttpResponseRedirect:
        if not self.has_change_permission(request):
            raise PermissionDenied
        run_metagraph_sync(self, request)
        return redirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))

    @admin.action(description="Sync metagraph now", permissions=["change"])
    def sync_metagraph_now(self, request: HttpRequest, queryset: Any) -> None:
        run_metagraph_sync(self, request)


# --- config ------------------------------------------------------------------------

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Network", ("network", "netuid", "metagraph_source", "metagraph_file", "metagraph_sync_seconds")),
    ("Secrets (write-only: leave blank to keep the stored value)", SECRETS),
    ("Rate limiting", ("rate_limiting_enabled", "global_rate_limits")),
    ("Moderation", ("moderation_enabled", "moderation_fail_closed", "openai_base_url")),
    ("Miners", ("default_strategy", "miner_timeout", "max_miner_timeout", "miner_path", "cost_per_answer")),
    ("Card payments", ("stripe_publishable_key",)),
)
STATUS_FIELDS = ("metagraph_synced_at", "metagraph_block", "metagraph_network", "updated_at")
LOCKED_HELP = "Only a superuser may change this."


def _form_field(name: str) -> forms.Field:
    if name in SECRETS:
        return forms.CharField(
            required=False, strip=True, widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})
        )
    if FIELDS[name].parse is parse_rate_limits:
        return RateLimitRulesField(help_text="All rules apply at once. Clear a row to drop it.")
    try:
        field = EndpointConfig._meta.get_field(name).formfield()
    except FieldDoesNotExist:
        field = None
    field = field or forms.CharField(required=False)
    field.help_text = FIELDS[name].help  # the same words as `config --help`
    return field


def _as_text(value: Any) -> str:
    """A cleaned form value as `config set` would receive it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return "" if value is None else str(value)


class ConfigFormBase(forms.ModelForm):
    """Every setting in FIELDS; ``changes`` holds, after validation, the
    settings to write as `config set` would take them. Settings in ``locked``
    are shown disabled and never written, whatever the POST holds."""

    locked: frozenset[str] = frozenset()

    class Meta:
        model = EndpointConfig
        fields = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        row = self.instance
        for name in FIELDS:
            if name in SECRETS:
                stored = masked_secret(row, name)
                state = f"Stored: {stored}." if stored else "Not set."
                self.fields[name].help_text = f"{FIELDS[name].help} {state}"
            else:
                self.initial.setdefault(name, getattr(row, name))
            if name in self.locked:
                self.lock(name)
        self.changes: dict[str, str] = {}
        self.parsed: dict[str, Any] = {}

    def lock(self, name: str) -> None:
        # A disabled field takes its initial value, never the submitted one.
        field = self.fields[name]
        field.disabled = True
        field.help_text = f"{field.help_text} {LOCKED_HELP}".strip()

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in FIELDS:
            if name not in cleaned or name in self.locked:
                continue  # a field error already, or not this user's to change
            raw = _as_text(cleaned[name])
            if name in SECRETS and not raw:
                continue  # blank keeps the stored secret
            try:
                value = FIELDS[name](raw)  # a mnemonic is checked to make a keypair there
            except ConfigError as exc:
                self.add_error(name, str(exc))
                continue
            if name in SECRETS or value != getattr(self.instance, name):
                self.changes[name] = raw
                self.parsed[name] = value
        self.check_together()
        return cleaned

    def check_together(self) -> None:
        """Rules between settings (a timeout under its cap), as the service checks them."""
        if not self.parsed:
            return
        row = copy.copy(self.instance)
        for name, value in self.parsed.items():
            setattr(row, name, value)
        try:
            check_together(row, self.parsed)
        except ConfigError as exc:
            self.add_error(exc.param, str(exc))


def config_form(locked: frozenset[str] = frozenset()) -> type[ConfigFormBase]:
    """The form class for the current FIELDS, with ``locked`` read-only."""
    fields = {name: _form_field(name) for name in FIELDS}
    return type("EndpointConfigForm", (ConfigFormBase,), {**fields, "locked": locked})


def locked_settings(request: HttpRequest) -> frozenset[str]:
    """The settings this user may see but not change."""
    return frozenset() if request.user.is_superuser else frozenset(SUPERUSER_ONLY)


def masked_display(name: str) -> Any:
    """How a view-only page shows secret ``name``: masked, like the API does.
    Without it the admin would print the decrypted value of the model's
    property."""

    @admin.display(description=name.replace("_", " "))
    def show(model_admin: admin.ModelAdmin, row: EndpointConfig) -> str:
        return masked_secret(row, name) or "Not set."

    return show


@admin.register(EndpointConfig)
class EndpointConfigAdmin(admin.ModelAdmin):
    readonly_fields = STATUS_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """There is one config: its list is its page."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        row = EndpointConfig.load()
        return redirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[row.pk]))

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        EndpointConfig.load()  # a fresh install has no row until someone reads it
        return super().get_object(request, object_id, from_field)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        return config_form(locked_settings(request))

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        placed: set[str] = set()
        fieldsets = []
        for title, names in SECTIONS:
            present = [name for name in names if name in FIELDS]
            placed.update(present)
            if present:
                fieldsets.append((title, {"fields": present}))
        others = [name for name in FIELDS if name not in placed]
        if others:
            fieldsets.append(("Other", {"fields": others}))
        fieldsets.append(("Status", {"fields": STATUS_FIELDS}))
        return fieldsets

    def save_model(self, request: HttpRequest, obj: EndpointConfig, form: ConfigFormBase, change: bool) -> None:
        locked = locked_settings(request)
        # clean() skips locked settings already; a secret is worth checking twice
        changes = {name: raw for name, raw in form.changes.items() if name not in locked}
        try:
            shown = do_set_configs(changes)
        except ConfigError as exc:
            self.message_user(request, f"{exc.param}: {exc}", messages.ERROR)
            return
        for name in SECRETS:
            if name in shown:
                self.message_user(request, f"{name} set to {shown[name]}.", messages.INFO)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def response_change(self, request: HttpRequest, obj: EndpointConfig) -> HttpResponse:
        self.message_user(request, "Config saved.", messages.SUCCESS)
        return redirect(request.path)


# The admin reads a display method before the model's attribute: view-only
# pages then show each secret masked instead of decrypted.
for _secret in SECRETS:
    setattr(EndpointConfigAdmin, _secret, masked_display(_secret))


# --- subnets ---------------------------------------------------------------------------

NUMBER_FIELDS = ("netuid", "price")


class SubnetForm(forms.ModelForm):
    """Subnet fields, read as text and checked by endpoint.core.subnets
    (``new_subnet``, ``edited_subnet``), exactly as `manage.py subnets` and
    /api/admin/subnets/ check them; the model's own checks are not run, so
    there is one set of rules and one wording. ``changes`` holds, after
    validation, the fields to write as the CLI would give them."""

    locked: frozenset[str] = frozenset()

    class Meta:
        model = Subnet
        fields = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adding = self.instance.pk is None
        for name in SUBNET_FIELDS:
            if not adding:
                self.initial.setdefault(name, getattr(self.instance, name))
            if name in self.locked:
                field = self.fields[name]
                field.disabled = True
                field.help_text = f"{field.help_text} {LOCKED_HELP}".strip()
        self.changes: dict[str, str] = {}

    def clean(self) -> dict:
        cleaned = super().clean()
        adding = self.instance.pk is None
        raw = {}
        for name in SUBNET_FIELDS:
            if name not in cleaned or name in self.locked:
                continue
            text = _as_text(cleaned[name])
            if adding or text != _as_text(getattr(self.instance, name)):
                raw[name] = text
        try:
            if adding:
                new_subnet(cleaned.get("slug", ""), raw)
            elif raw:
                edited_subnet(self.instance, raw)
        except SubnetInputError as exc:
            self.add_error(exc.param if exc.param in self.fields else None, str(exc))
        self.changes = raw
        return cleaned

    def _post_clean(self) -> None:
        pass  # the service checked everything; the model's own checks would say it again, in other words


def _subnet_form_field(name: str) -> forms.Field:
    help_text = SUBNET_FIELDS[name].help
    if name == "enabled":
        return forms.BooleanField(required=False, initial=True, help_text=help_text)
    if name == "kind":
        return forms.ChoiceField(choices=Subnet.Kind.choices, help_text=help_text)
    if name == "metagraph_source":
        return forms.ChoiceField(choices=METAGRAPH_SOURCES, initial="chain", help_text=help_text)
    widget = forms.NumberInput if name in NUMBER_FIELDS else forms.TextInput(attrs={"class": "vTextField"})
    required = name in ("name", "netuid")
    initial = Subnet._meta.get_field(name).default if name in ("miner_path", "price") else None
    return forms.CharField(required=required, widget=widget, help_text=help_text, initial=initial)


def subnet_form(locked: frozenset[str], adding: bool) -> type[SubnetForm]:
    fields = {name: _subnet_form_field(name) for name in SUBNET_FIELDS}
    if adding:
        fields["slug"] = forms.CharField(help_text="Its name in commands and URLs: lowercase letters, digits, hyphens.")
    return type("SubnetForm", (SubnetForm,), {**fields, "locked": locked})


@admin.register(Subnet)
class SubnetAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "kind", "network", "netuid", "price", "enabled", "synced")
    list_filter = ("kind", "enabled")
    ordering = ("netuid",)
    actions = ("sync_now",)
    readonly_fields = ("slug_shown", *SYNC_STATUS)

    def locked(self, request: HttpRequest, obj: Subnet | None) -> frozenset[str]:
        """The fields this user may see but not change: addresses need a
        superuser, and the chat subnet's config-held settings the config's
        change permission."""
        locked = set() if request.user.is_superuser else set(SUBNET_SUPERUSER_ONLY)
        if obj is not None and obj.is_chat_subnet and not request.user.has_perm("endpoint.change_endpointconfig"):
            locked |= set(CHAT_SETTINGS)
        return frozenset(locked)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        return subnet_form(self.locked(request, obj), adding=obj is None)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        first = ("slug",) if obj is None else ("slug_shown",)
        fieldsets = [
            (None, {"fields": (*first, "name", "kind", "enabled")}),
            ("Metagraph", {"fields": ("network", "netuid", "metagraph_source", "metagraph_file")}),
            ("Miners", {"fields": ("miner_path", "price", "default_strategy")}),
        ]
        if obj is not None:
            fieldsets.append(("Status", {"fields": SYNC_STATUS}))
        return fieldsets

    def get_queryset(self, request: HttpRequest) -> Any:
        ensure_chat_subnet()
        return super().get_queryset(request)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time: the chat subnet is never removed
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: Subnet | None = None) -> bool:
        if obj is not None and obj.is_chat_subnet:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="slug")
    def slug_shown(self, subnet: Subnet) -> str:
        return subnet.slug

    @admin.display(description="synced", ordering="metagraph_synced_at")
    def synced(self, subnet: Subnet) -> str:
        if subnet.metagraph_synced_at is None:
            return "never"
        age = (timezone.now() - subnet.metagraph_synced_at).total_seconds()
        stale = " (stale)" if age > settings.METAGRAPH_MAX_AGE_SECONDS else ""
        return f"block {subnet.metagraph_block}, {int(age // 60)} min ago{stale}"

    def save_model(self, request: HttpRequest, obj: Subnet, form: SubnetForm, change: bool) -> None:
        try:
            if change:
                if form.changes:
                    do_edit_subnet(obj.slug, form.changes)
            else:
                saved = do_add_subnet(form.cleaned_data["slug"], form.changes)
                obj.pk, obj.slug = saved.pk, saved.slug  # the admin's redirect and message use them
        except SubnetInputError as exc:  # another edit got in between the form's check and this save
            self.message_user(request, f"{exc.param}: {exc}", messages.ERROR)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def delete_model(self, request: HttpRequest, obj: Subnet) -> None:
        do_remove_subnet(obj.slug)

    @admin.action(description="Sync metagraph now", permissions=["change"])
    def sync_now(self, request: HttpRequest, queryset: Any) -> None:
        for subnet in queryset:
            try:
                r = sync_subnet(subnet)
            except (MetagraphSourceError, OSError) as exc:
                self.message_user(request, f"{subnet.name}: metagraph sync failed: {exc}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{subnet.name}: synced from {r.network} (netuid {r.netuid}, block {r.block}): "
                f"{r.created} new, {r.updated} updated, {r.deactivated} deactivated.",
                messages.SUCCESS,
            )
