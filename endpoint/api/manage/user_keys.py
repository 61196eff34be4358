"""/api/keys/: a signed-in user's own API keys, as the keys page shows them
(keys.user_keys: one implementation for both): list, create (the full key is
in the creation response only, funded from the chat balance), revoke (the
key is disabled for good and its credits go back to the balance).

Who may: any active signed-in user (session only; an admin token or an API
key opens nothing here), staff or not, and no model permission is asked.
These are the user's own keys, which the chat pages already let them manage;
keys.*_apikey permissions are about everyone's keys, in /api/admin/keys/ and
the admin. Every lookup starts from the user's own keys, so another user's
key id answers 404, exactly like a key that doesn't exist."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from chat.limits import KEY_CREATION, count_page_use
from chat.services import chat_account
from keys.models import ApiKey
from keys.user_keys import do_create_user_key, do_revoke_user_key, user_keys

from .base import UserView, audit, key_label
from .pagination import KeyPagination
from .serializers import UserCreatedKeySerializer, UserKeyCreateSerializer, UserKeySerializer

TAGS = ["my keys"]


@extend_schema_view(
    list=extend_schema(summary="My API keys", tags=TAGS),
    retrieve=extend_schema(summary="One of my API keys", tags=TAGS),
    create=extend_schema(
        summary="Create a key (the full key is in this response only)",
        request=UserKeyCreateSerializer,
        responses={201: UserCreatedKeySerializer},
        tags=TAGS,
    ),
    destroy=extend_schema(
        summary="Revoke a key (disabled for good, credits refunded)", responses={204: None}, tags=TAGS
    ),
)
class UserKeyViewSet(UserView, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = UserKeySerializer
    pagination_class = KeyPagination
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return ApiKey.objects.none()
        return user_keys(self.request.user)

    def create(self, request, *args, **kwargs):
        count_page_use(request, KEY_CREATION, request.user)  # 429 past KEY_CREATE_RATE, shared with the keys page
        body = UserKeyCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data, balance = body.validated_data, chat_account(request.user).key
        new = do_create_user_key(request.user, data["name"], data["credits"], balance=balance)
        audit(request, "created own", key_label(new.key), credits=new.key.credits)
        new.key.raw = new.raw
        return Response(UserCreatedKeySerializer(new.key).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        key = self.get_object()
        do_revoke_user_key(key, balance=chat_account(request.user).key)
        audit(request, "revoked own", key_label(key))
        return Response(status=status.HTTP_204_NO_CONTENT)
