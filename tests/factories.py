"""factory-boy factories for the models tests build on.

``ApiKeyFactory`` makes a key the way ``do_create_key`` does (prefix and hash
of a fresh ``vep_…`` value) and leaves that value on ``key.raw`` so a test can
authenticate with it; pass ``prefix=`` to force one (two keys sharing a
prefix, for ambiguity tests).
"""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from keys.models import PREFIX_LENGTH, ApiKey, hash_secret
from keys.services import generate_raw_key
from logs.models import MinerResponse, Request


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class ApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiKey

    raw = factory.LazyFunction(generate_raw_key)  # not a field: moved onto key.raw below
    name = factory.Sequence(lambda n: f"key {n}")
    prefix = factory.LazyAttribute(lambda key: key.raw[:PREFIX_LENGTH])
    secret_hash = factory.LazyAttribute(lambda key: hash_secret(key.raw))
    credits = None
    enabled = True

    @classmethod
    def _create(cls, model_class, *args, raw: str, **kwargs):
        key = super()._create(model_class, *args, **kwargs)
        key.raw = raw
        return key

    @classmethod
    def _build(cls, model_class, *args, raw: str, **kwargs):
        key = super()._build(model_class, *args, **kwargs)
        key.raw = raw
        return key


class RequestLogFactory(factory.django.DjangoModelFactory):
    """A logged API call (named so it doesn't shadow Django's RequestFactory)."""

    class Meta:
        model = Request

    key = factory.SubFactory(ApiKeyFactory)
    route = "/chat"
    messages = factory.LazyFunction(lambda: [{"role": "user", "content": "What is 1+1?"}])
    strategy = "uids:0"
    status = 200
    credits_charged = 1
    started_at = factory.LazyFunction(timezone.now)
    elapsed_ms = 120.0


class MinerResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MinerResponse

    request = factory.SubFactory(RequestLogFactory)
    uid = factory.Sequence(int)
    hotkey = factory.Sequence(lambda n: f"5Hotkey{n:041d}")
    is_success = True
    response = "2"
    status = 200
    response_ms = 80.0
