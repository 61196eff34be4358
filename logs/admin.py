from django.contrib import admin

from .models import MinerResponse, Request


class MinerResponseInline(admin.TabularInline):
    model = MinerResponse
    extra = 0
    can_delete = False
    readonly_fields = ("uid", "hotkey", "is_success", "status", "response_ms", "response", "error")


@admin.register(Request)
class RequestAdmin(admin.ModelAdmin):
    list_display = ("started_at", "route", "status", "api_error", "key", "credits_charged", "elapsed_ms")
    list_filter = ("status", "route", "api_error")
    list_select_related = ("key",)
    inlines = [MinerResponseInline]


@admin.register(MinerResponse)
class MinerResponseAdmin(admin.ModelAdmin):
    list_display = ("request", "uid", "hotkey", "is_success", "status", "response_ms")
    list_filter = ("is_success",)
    list_select_related = ("request",)
