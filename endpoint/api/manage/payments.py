"""/api/admin/payments/: card payments, newest first, filtered by status,
buyer and time; read-only (only Stripe's webhook changes a payment)."""

from __future__ import annotations

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets

from billing.models import Payment

from .base import StaffView
from .filters import UtcDateTimeFilter
from .pagination import KeyPagination

TAGS = ["admin: payments"]


class PaymentSerializer(serializers.ModelSerializer):
    user = serializers.EmailField(source="user.email", default=None, read_only=True)
    pack = serializers.CharField(source="pack.name", default=None, read_only=True)
    price = serializers.CharField(read_only=True)

    class Meta:
        model = Payment
        fields = (
            "id", "created_at", "user", "key", "pack", "credits", "amount", "currency", "price", "status",
            "credited_at", "credits_taken_back", "amount_refunded", "disputed", "stripe_payment_intent",
            "stripe_charge", "stripe_customer", "failure",
        )  # fmt: skip
        read_only_fields = fields


class PaymentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Payment.STATUSES, label="pending, succeeded, refunded, …")
    user = django_filters.CharFilter(field_name="user__email", lookup_expr="iexact", label="The buyer's email.")
    start = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte", label="From (inclusive).")
    end = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt", label="Until (exclusive).")

    class Meta:
        model = Payment
        fields = ("status", "user", "start", "end")


@extend_schema_view(
    list=extend_schema(summary="Card payments, newest first", tags=TAGS),
    retrieve=extend_schema(summary="One card payment", tags=TAGS),
)
class PaymentViewSet(StaffView, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PaymentSerializer
    pagination_class = KeyPagination
    filter_backends = (DjangoFilterBackend,)
    filterset_class = PaymentFilter
    queryset = Payment.objects.select_related("user", "pack").order_by("-created_at", "-pk")
