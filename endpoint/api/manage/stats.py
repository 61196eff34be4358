"""/api/admin/stats/: the dashboard's figures as JSON (logs.stats computes
them for the admin console and for this route alike)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from logs.stats import DEFAULT_WINDOW, WINDOWS, dashboard_stats

from .base import StaffView
from .serializers import StatsSerializer


class StatsView(StaffView, APIView):
    serializer_class = StatsSerializer

    def required_permissions(self, request) -> list[str]:
        # Figures about the request logs: whoever may read the logs may read these
        # (any method but GET is 405 anyway).
        return ["logs.view_request"]

    @extend_schema(
        summary="Requests, success rate, credits, latency and the busiest keys and miners over a window",
        parameters=[OpenApiParameter("window", str, enum=list(WINDOWS), default=DEFAULT_WINDOW)],
        tags=["admin: stats"],
    )
    def get(self, request):
        window = request.query_params.get("window", DEFAULT_WINDOW)
        if window not in WINDOWS:
            raise ValidationError({"window": [f"Use one of {', '.join(WINDOWS)}."]})
        return Response(dashboard_stats(window))
