"""Request and response bodies of the management API. Input is read here
(with the CLI's own parsers for expiry, credits and rate limits); the writes
themselves happen in the service functions the views call."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from endpoint.core.config import FIELDS as CONFIG_FIELDS
from endpoint.core.config import SECRETS, parse_rate_limits
from endpoint.core.errors import ConfigError
from endpoint.core.models import Subnet
from endpoint.core.strategies import normalize_strategy
from endpoint.core.subnets import SUBNET_FIELDS
from keys.expiry import HINT as EXPIRY_HINT
from keys.expiry import parse_valid_until
from keys.models import ApiKey
from keys.user_keys import NO_CREDITS
from logs.models import OUTCOMES, MinerResponse, Request
from logs.queries import first_prompt

UNLIMITED = -1
MAX_CREDITS = 10**15  # far above any real balance, far below BIGINT overflow
EXPIRY_HELP = f"When the key expires: {EXPIRY_HINT}; null also means never."
CREDITS_HELP = "Credits the key has; -1 or null means unlimited."


# --- pieces shared by several bodies ------------------------------------------------


class RuleSerializer(serializers.Serializer):
    times = serializers.IntegerField(min_value=1, help_text="How many requests are allowed…")
    seconds = serializers.IntegerField(min_value=1, help_text="…in this many seconds.")


def read_valid_until(value: str | None):
    if value is None:
        return None
    try:
        return parse_valid_until(str(value))
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from None


def read_credits(value: int | None) -> int | None:
    return None if value is None or value == UNLIMITED else value


def read_strategy(value: str) -> str:
    try:
        return normalize_strategy(value)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from None


def read_rate_limits(value: list) -> list[dict[str, int]]:
    try:
        return parse_rate_limits(value)
    except ConfigError as exc:
        raise serializers.ValidationError(str(exc)) from None


# --- keys (staff) -------------------------------------------------------------------


class KeySerializer(serializers.ModelSerializer):
    """A key as staff see it: everything but the secret, which is never stored."""

    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    expired = serializers.BooleanField(source="is_expired", read_only=True)
    unlimited = serializers.BooleanField(read_only=True)
    rate_limits = RuleSerializer(many=True, read_only=True)

    class Meta:
        model = ApiKey
        fields = (
            "id",
            "name",
            "prefix",
            "owner",
            "enabled",
            "expires_at",
            "expired",
            "credits",
            "unlimited",
            "default_strategy",
            "rate_limits",
            "request_count",
            "api_request_count",
            "created_at",
            "last_used_at",
        )
        read_only_fields = fields


def shown_once(name: str, base: type[serializers.ModelSerializer]) -> type[serializers.ModelSerializer]:
    """``base`` plus the full key: the one response that creates a key."""

    class Meta(base.Meta):
        fields = ("key", *base.Meta.fields)
        read_only_fields = fields

    key = serializers.CharField(
        source="raw", read_only=True, help_text="The full API key. Shown in this response only: store it now."
    )
    return type(name, (base,), {"__module__": __name__, "key": key, "Meta": Meta})


CreatedKeySerializer = shown_once("CreatedKeySerializer", KeySerializer)


class KeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    credits = serializers.IntegerField(
        min_value=UNLIMITED,
        max_value=MAX_CREDITS,
        required=False,
        allow_null=True,
        default=None,
        help_text=CREDITS_HELP,
    )
    valid_until = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, default=None, help_text=EXPIRY_HELP
    )
    enabled = serializers.BooleanField(required=False, default=True)
    default_strategy = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Empty, 'top_n:5' or 'uids:1,2'."
    )
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="Username of the user the key belongs to.",
    )
    rate_limits = RuleSerializer(many=True, required=False, help_text="The key's own rules; empty = the global ones.")

    def validate_valid_until(self, value):
        return read_valid_until(value)

    def validate_credits(self, value):
        return read_credits(value)

    def validate_default_strategy(self, value):
        return read_strategy(value)

    def validate_rate_limits(self, value):
        return read_rate_limits(value)


class KeyUpdateSerializer(serializers.Serializer):
    """A partial edit: only the fields sent change."""

    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    credits = serializers.IntegerField(
        min_value=UNLIMITED, max_value=MAX_CREDITS, required=False, allow_null=True, help_text=CREDITS_HELP
    )
    add_credits = serializers.IntegerField(
        min_value=-MAX_CREDITS,
        max_value=MAX_CREDITS,
        required=False,
        help_text="Top up (or, negative, take away) credits atomically; never below zero.",
    )
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, help_text="Why, for add_credits.")
    valid_until = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text=EXPIRY_HELP)
    enabled = serializers.BooleanField(required=False)
    default_strategy = serializers.CharField(required=False, allow_blank=True)
    rate_limits = RuleSerializer(many=True, required=False)
    reset_requests = serializers.BooleanField(required=False, help_text="Set the key's request count back to 0.")

    validate_valid_until = staticmethod(read_valid_until)
    validate_credits = staticmethod(read_credits)
    validate_default_strategy = staticmethod(read_strategy)
    validate_rate_limits = staticmethod(read_rate_limits)

    def validate_add_credits(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Give a number of credits other than 0.")
        return value

    def validate(self, attrs: dict) -> dict:
        if "credits" in attrs and "add_credits" in attrs:
            raise serializers.ValidationError(
                {"add_credits": ["Send credits (a new balance) or add_credits, not both."]}
            )
        if not attrs:
            raise serializers.ValidationError("Nothing to change.")
        return attrs

    def edits(self) -> dict:
        """The changes for keys.services.do_edit_key."""
        data = dict(self.validated_data)
        changes = {
            name: data[name]
            for name in ("name", "credits", "enabled", "default_strategy", "rate_limits")
            if name in data
        }
        if "valid_until" in data:
            changes["expires_at"] = data["valid_until"]
        if data.get("reset_requests"):
            changes["request_count"] = 0
        return changes


class CreditsChangeSerializer(serializers.Serializer):
    delta = serializers.IntegerField(
        min_value=-MAX_CREDITS,
        max_value=MAX_CREDITS,
        help_text="Credits to add; negative to take away. The balance never goes below zero (409).",
    )
    reason = serializers.CharField(max_length=200, help_text="Why: written to the audit log with who did it.")

    def validate_delta(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Give a number of credits other than 0.")
        return value

    def validate_reason(self, value: str) -> str:
        return " ".join(value.split())  # one log line, whatever was sent


# --- users' own keys -------------------------------------------------------------------


class UserKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = (
            "id",
            "name",
            "prefix",
            "enabled",
            "expires_at",
            "credits",
            "request_count",
            "created_at",
            "last_used_at",
        )
        read_only_fields = fields


UserCreatedKeySerializer = shown_once("UserCreatedKeySerializer", UserKeySerializer)


class UserKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    credits = serializers.IntegerField(
        min_value=1,
        max_value=MAX_CREDITS,
        error_messages={"min_value": NO_CREDITS, "required": NO_CREDITS},
        help_text="Credits moved from your chat balance onto the new key, at least 1 (402 when the balance is short).",
    )


# --- request logs -------------------------------------------------------------------------


class ResponderSerializer(serializers.ModelSerializer):
    class Meta:
        model = MinerResponse
        fields = ("uid", "hotkey", "response_ms")
        read_only_fields = fields


class MinerResponseSerializer(serializers.ModelSerializer):
    outcome = serializers.ChoiceField(
        choices=OUTCOMES,
        read_only=True,
        help_text="ok, failed, or cancelled: stopped because another miner answered first (not a failure).",
    )

    class Meta:
        model = MinerResponse
        fields = ("uid", "hotkey", "is_success", "outcome", "status", "response_ms", "response", "error")
        read_only_fields = fields


class LogSerializer(serializers.ModelSerializer):
    """A request in a list: what `manage.py logs` shows, as JSON."""

    key_prefix = serializers.SerializerMethodField(help_text="The calling key's prefix, kept if the key is deleted.")
    key_name = serializers.SerializerMethodField(help_text="The calling key's name when it made the call.")
    prompt = serializers.SerializerMethodField(help_text="The first user message.")
    responders = ResponderSerializer(many=True, read_only=True, help_text="The miners that answered successfully.")

    class Meta:
        model = Request
        fields = (
            "id",
            "started_at",
            "route",
            "status",
            "api_error",
            "key",
            "key_prefix",
            "key_name",
            "user",
            "strategy",
            "credits_charged",
            "prompt_tokens",
            "completion_tokens",
            "elapsed_ms",
            "client_ip",
            "client_request_id",
            "prompt",
            "responders",
        )
        read_only_fields = fields

    def get_prompt(self, request: Request) -> str:
        return first_prompt(request.messages)

    def get_key_prefix(self, request: Request) -> str | None:
        return request.key_prefix or (request.key.prefix if request.key_id else None)

    def get_key_name(self, request: Request) -> str | None:
        return request.key_name or (request.key.name if request.key_id else None)


class LogDetailSerializer(LogSerializer):
    miner_responses = MinerResponseSerializer(many=True, read_only=True, help_text="Every miner queried.")

    class Meta(LogSerializer.Meta):
        fields = (*LogSerializer.Meta.fields, "messages", "miner_responses")
        read_only_fields = fields


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


# --- rate limits ----------------------------------------------------------------------------


class RateLimitStatusSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    limiter_healthy = serializers.BooleanField(help_text="Whether the counter (Redis) answers right now.")
    limiter = serializers.CharField(help_text="Where requests are counted, and how that is going.")
    global_rules = RuleSerializer(many=True)


class RuleListSerializer(serializers.Serializer):
    key = serializers.IntegerField(allow_null=True, help_text="The key whose rules these are; null for global.")
    own = serializers.BooleanField(help_text="True: the key's own rules; false: the global ones (that apply to it).")
    enabled = serializers.BooleanField(help_text="Whether rate limiting is on at all.")
    rules = RuleSerializer(many=True)


class RuleAddSerializer(RuleSerializer):
    key = serializers.CharField(
        required=False, allow_null=True, default=None, help_text="Key id or prefix: add to its own rules."
    )


class RateLimitingSwitchSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()


# --- runtime config --------------------------------------------------------------------------

SECRET_HELP = "Write-only: always read back masked."


def _config_field(name: str) -> serializers.Field:
    """The body field for a `manage.py config` name. Types are for the schema
    and JSON input; the values are checked by endpoint.core.config.do_set_config,
    as the CLI's are. A name this map doesn't know is text."""
    optional = {"required": False, "help_text": CONFIG_FIELDS[name].help}
    if name in SECRETS:
        return serializers.CharField(
            allow_blank=True, **{**optional, "help_text": f"{optional['help_text']} {SECRET_HELP}"}
        )
    if name == "global_rate_limits":
        return RuleSerializer(many=True, **optional)
    if name in ("rate_limiting_enabled", "moderation_enabled", "moderation_fail_closed", "retain_media"):
        return serializers.BooleanField(**optional)
    if name in ("miner_timeout", "max_miner_timeout"):
        return serializers.FloatField(**optional)
    if name in ("netuid", "cost_per_answer", "metagraph_sync_seconds", "log_retention_days"):
        return serializers.IntegerField(**optional)
    if name == "metagraph_source":
        return serializers.ChoiceField(choices=["chain", "file"], **optional)
    return serializers.CharField(allow_blank=True, **optional)


class _ConfigBase(serializers.Serializer):
    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown config name."] for name in unknown})
        if not attrs:
            raise serializers.ValidationError("Nothing to change.")
        return attrs


# Built from endpoint.core.config.FIELDS so the API always offers what the CLI does.
ConfigSerializer = type(
    "ConfigSerializer",
    (_ConfigBase,),
    {
        "__doc__": "The settings `manage.py config` knows, by the same names; send only those to change.",
        "__module__": __name__,
        **{name: _config_field(name) for name in CONFIG_FIELDS},
    },
)


# --- stats -------------------------------------------------------------------------------------


class StatsKeyRowSerializer(serializers.Serializer):
    key_id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    requests = serializers.IntegerField()
    credits = serializers.IntegerField()
    tokens = serializers.IntegerField(help_text="Prompt and completion tokens of the key's answered calls.")


class StatsMinerRowSerializer(serializers.Serializer):
    uid = serializers.IntegerField()
    hotkey = serializers.CharField()
    requests = serializers.IntegerField(help_text="Times the miner was queried, the cancelled calls included.")
    cancelled = serializers.IntegerField(help_text="Calls stopped because another miner answered first.")
    success_rate = serializers.FloatField(
        allow_null=True, help_text="Successes over successes and failures: cancelled calls are neither."
    )
    p50_ms = serializers.FloatField(allow_null=True, help_text="Median answer time; null without Postgres.")


class StatsPointSerializer(serializers.Serializer):
    t = serializers.DateTimeField(help_text="Start of the bucket.")
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    """The dashboard's figures over a window (logs.stats.dashboard_stats)."""

    window = serializers.ChoiceField(choices=["1h", "24h", "7d", "30d"])
    since = serializers.DateTimeField()
    bucket = serializers.ChoiceField(choices=["minute", "hour", "day"], help_text="The size of each series point.")
    requests = serializers.IntegerField()
    successes = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="0 to 1; null when there were no requests.")
    credits_spent = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField(help_text="Tokens of the answered prompts (the miners' or our count).")
    completion_tokens = serializers.IntegerField(help_text="Tokens of the answers (the miners' or our count).")
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    top_keys = StatsKeyRowSerializer(many=True)
    top_miners = StatsMinerRowSerializer(many=True, help_text="The most queried miners.")
    series = StatsPointSerializer(many=True)


# --- subnets -------------------------------------------------------------------------------


class SubnetSerializer(serializers.Serializer):
    """A subnet as `manage.py subnets list` shows it."""

    slug = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Subnet.Kind.values)
    network = serializers.CharField()
    netuid = serializers.IntegerField()
    metagraph_source = serializers.ChoiceField(choices=["chain", "file"])
    metagraph_file = serializers.CharField()
    miner_path = serializers.CharField()
    price = serializers.IntegerField(help_text="Credits one miner's answer costs.")
    default_strategy = serializers.CharField()
    enabled = serializers.BooleanField()
    metagraph_synced_at = serializers.DateTimeField(allow_null=True, help_text="Null until its first sync.")
    metagraph_block = serializers.IntegerField(allow_null=True)


def _subnet_field(name: str) -> serializers.Field:
    """The body field for a subnet field: typed for the schema and JSON input,
    checked by endpoint.core.subnets as the CLI's values are."""
    optional = {"required": False, "help_text": SUBNET_FIELDS[name].help}
    if name in ("netuid", "price"):
        return serializers.IntegerField(**optional)
    if name == "enabled":
        return serializers.BooleanField(**optional)
    if name == "kind":
        return serializers.ChoiceField(choices=Subnet.Kind.values, **optional)
    if name == "metagraph_source":
        return serializers.ChoiceField(choices=["chain", "file"], **optional)
    return serializers.CharField(allow_blank=True, **optional)


class _SubnetEditBase(serializers.Serializer):
    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown subnet field."] for name in unknown})
        if not attrs:
            raise serializers.ValidationError("Nothing to change.")
        return attrs


# Built from endpoint.core.subnets.SUBNET_FIELDS so the API takes what the CLI does.
SubnetUpdateSerializer = type(
    "SubnetUpdateSerializer",
    (_SubnetEditBase,),
    {
        "__doc__": "The subnet fields to change; send only those.",
        "__module__": __name__,
        **{name: _subnet_field(name) for name in SUBNET_FIELDS},
    },
)
SubnetCreateSerializer = type(
    "SubnetCreateSerializer",
    (_SubnetEditBase,),
    {
        "__doc__": "A new subnet: slug, name and netuid at least.",
        "__module__": __name__,
        "slug": serializers.CharField(help_text="Its name in commands and URLs: lowercase letters, digits, hyphens."),
        **{name: _subnet_field(name) for name in SUBNET_FIELDS},
        "name": serializers.CharField(help_text=SUBNET_FIELDS["name"].help),
        "netuid": serializers.IntegerField(help_text=SUBNET_FIELDS["netuid"].help),
    },
)
