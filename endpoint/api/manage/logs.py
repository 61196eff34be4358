"""/api/admin/logs/: request logs, filtered as `manage.py logs` filters them
(and more), newest first, a cursor page at a time; ``count/`` for totals.

Every page costs the same few queries whatever its size: the key comes with
a join, the successful responders with one prefetch."""

from __future__ import annotations

from django.db.models import Prefetch
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from logs.models import MinerResponse
from logs.queries import filter_requests

from .base import StaffView
from .filters import LogFilter
from .pagination import LogCursorPagination
from .serializers import CountSerializer, LogDetailSerializer, LogSerializer

TAGS = ["admin: logs"]


@extend_schema_view(
    list=extend_schema(summary="Request logs, newest first (cursor pages)", tags=TAGS),
    retrieve=extend_schema(summary="One request with its messages and every miner queried", tags=TAGS),
    count=extend_schema(summary="How many requests match the filters", responses={200: CountSerializer}, tags=TAGS),
)
class LogViewSet(StaffView, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = LogSerializer
    pagination_class = LogCursorPagination
    filter_backends = (DjangoFilterBackend,)
    filterset_class = LogFilter

    def get_queryset(self):
        # The CLI's query: newest first, with the key and the successful responders.
        requests = filter_requests(lines=None)
        if self.action == "retrieve":
            every_miner = MinerResponse.objects.order_by("uid")
            requests = requests.prefetch_related(Prefetch("miner_responses", queryset=every_miner))
        return requests

    def get_serializer_class(self):
        return LogDetailSerializer if self.action == "retrieve" else LogSerializer

    @action(detail=False, pagination_class=None)
    def count(self, request, *args, **kwargs):
        # COUNT(*) drops the ordering, the join and the prefetch by itself.
        return Response({"count": self.filter_queryset(self.get_queryset()).count()})
