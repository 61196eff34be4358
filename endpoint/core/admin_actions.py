"""The page an admin action shows when it needs more input than a click
(add credits, extend expiry): the form, the chosen rows, and the hidden
fields that bring the answer back to the same action."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

APPLY = "apply"  # present when the action's own form was submitted


def submitted_form(request: HttpRequest, form_class: type[forms.Form]) -> forms.Form:
    """The action's form, bound when the operator submitted it."""
    return form_class(request.POST) if APPLY in request.POST else form_class()


def action_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    form: forms.Form,
    *,
    action: str,
    title: str,
    submit: str,
) -> TemplateResponse:
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": opts,
        "queryset": queryset,
        "form": form,
        "action": action,
        "submit": submit,
        "checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "apply_name": APPLY,
    }
    return TemplateResponse(request, "admin/admin_console/action_form.html", context)
