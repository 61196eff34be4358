"""Routes of the management API, included under /api/ by endpoint.urls."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import config, keys, logs, payments, ratelimits, stats, subnets, user_keys

staff = SimpleRouter()
staff.register("keys", keys.KeyViewSet, basename="manage-key")
staff.register("logs", logs.LogViewSet, basename="manage-log")
staff.register("payments", payments.PaymentViewSet, basename="manage-payment")
staff.register("subnets", subnets.SubnetViewSet, basename="manage-subnet")

mine = SimpleRouter()
mine.register("keys", user_keys.UserKeyViewSet, basename="my-key")

urlpatterns = [
    path("admin/stats/", stats.StatsView.as_view(), name="manage-stats"),
    path("admin/config/", config.ConfigView.as_view(), name="manage-config"),
    path("admin/ratelimits/", ratelimits.RateLimitStatusView.as_view(), name="manage-ratelimits"),
    path("admin/ratelimits/rules/", ratelimits.RuleListView.as_view(), name="manage-ratelimit-rules"),
    path("admin/ratelimits/rules/<int:index>/", ratelimits.RuleDetailView.as_view(), name="manage-ratelimit-rule"),
    path("admin/", include(staff.urls)),
    path("", include(mine.urls)),
]
