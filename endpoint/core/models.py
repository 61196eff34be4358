from __future__ import annotations

from django.conf import settings
from django.db import models

from . import encryption


class Neuron(models.Model):
    netuid = models.IntegerField()
    uid = models.IntegerField()
    hotkey = models.CharField(max_length=64)
    coldkey = models.CharField(max_length=64, blank=True)
    axon = models.CharField(max_length=80, blank=True, help_text="ip:port, empty when nothing is served.")
    incentive = models.FloatField(default=0)
    trust = models.FloatField(default=0)
    stake = models.FloatField(default=0)
    validator_permit = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    last_update = models.DateTimeField(auto_now=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["netuid", "uid"]
        constraints = [models.UniqueConstraint(fields=["netuid", "uid"], name="neuron_netuid_uid")]
        indexes = [models.Index(fields=["hotkey"], name="neuron_hotkey")]

    def __str__(self) -> str:
        return f"uid {self.uid} ({self.hotkey[:8]}…)"

    @property
    def serving(self) -> bool:
        return self.active and bool(self.axon)


STRATEGY_HELP = "'top_n:N', 'uids:1,2' or empty (uid 0)."

METAGRAPH_SOURCES = [("chain", "chain"), ("file", "file")]

# The slug of the subnet /chat and /v1/chat/completions serve: the one the
# single-subnet config became. Its network, netuid, source, miner path, price
# and strategy are still the EndpointConfig's (mirrored here on every save).
CHAT_SUBNET = "chat"


class Subnet(models.Model):
    """One subnet the endpoint sells access to (``manage.py subnets``, the admin,
    /api/admin/subnets/). Its neurons are the Neuron rows with its netuid, which
    is why a netuid belongs to one subnet only."""

    class Kind(models.TextChoices):
        CHAT = "chat"
        IMAGE = "image"
        SPEECH = "speech"
        TRANSCRIPTION = "transcription"
        EMBEDDINGS = "embeddings"

    slug = models.SlugField(max_length=50, unique=True, help_text="The subnet's name in commands and URLs.")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CHAT)
    network = models.CharField(max_length=200, default="local", help_text="finney, test, local or a ws:// URL.")
    netuid = models.IntegerField(unique=True)
    metagraph_source = models.CharField(max_length=10, choices=METAGRAPH_SOURCES, default="file")
    metagraph_file = models.CharField(max_length=500, blank=True)
    miner_path = models.CharField(max_length=200, default="/v1/chat/completions")
    price = models.PositiveIntegerField(default=1, help_text="Credits one miner's answer costs.")
    default_strategy = models.CharField(max_length=200, blank=True, help_text=STRATEGY_HELP)
    enabled = models.BooleanField(default=True)
    metagraph_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    metagraph_block = models.BigIntegerField(null=True, blank=True, editable=False)
    metagraph_network = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["netuid"]

    def __str__(self) -> str:
        return f"{self.name} (netuid {self.netuid})"

    @property
    def is_chat_subnet(self) -> bool:
        return self.slug == CHAT_SUBNET


class EndpointConfig(models.Model):
    """The one row of runtime configuration (``manage.py config``, the admin)."""

    network = models.CharField(max_length=200, default="local", help_text="finney, test, local or a ws:// URL.")
    netuid = models.IntegerField(default=1)
    metagraph_source = models.CharField(max_length=10, choices=METAGRAPH_SOURCES, default="file")
    metagraph_file = models.CharField(max_length=500, blank=True)
    metagraph_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    metagraph_block = models.BigIntegerField(null=True, blank=True, editable=False)
    metagraph_network = models.CharField(
        max_length=200, blank=True, editable=False, help_text="The network the last synced metagraph came from."
    )
    hotkey_mnemonic_encrypted = models.TextField(blank=True, editable=False)
    rate_limiting_enabled = models.BooleanField(default=False)
    global_rate_limits = models.JSONField(default=list, blank=True)
    moderation_enabled = models.BooleanField(default=False)
    moderation_fail_closed = models.BooleanField(default=False)
    openai_api_key_encrypted = models.TextField(blank=True, editable=False)
    openai_base_url = models.CharField(max_length=500, default="https://api.openai.com/v1")
    miner_timeout = models.FloatField(default=12.0, help_text="Seconds a miner gets when the request names none.")
    max_miner_timeout = models.FloatField(default=60.0, help_text="Cap on the timeout a request may ask for.")
    miner_path = models.CharField(max_length=200, default="/v1/chat/completions")
    cost_per_answer = models.PositiveIntegerField(default=1)
    default_strategy = models.CharField(max_length=200, blank=True, help_text=STRATEGY_HELP)
    metagraph_sync_seconds = models.PositiveIntegerField(
        default=300, help_text="How often Celery beat syncs the metagraph, in seconds."
    )
    log_retention_days = models.PositiveIntegerField(
        default=90, help_text="Request logs older than this many days are purged; 0 keeps them forever."
    )
    retain_media = models.BooleanField(
        default=False, help_text="Whether request logs keep the media of calls (images, audio, uploads)."
    )
    stripe_publishable_key = models.CharField(max_length=255, blank=True)
    stripe_secret_key_encrypted = models.TextField(blank=True, editable=False)
    stripe_webhook_secret_encrypted = models.TextField(blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "endpoint config"
        verbose_name_plural = "endpoint config"

    def __str__(self) -> str:
        return "Endpoint config"

    @classmethod
    def load(cls) -> EndpointConfig:
        row = cls.objects.filter(pk=1).first()
        if row is None:
            row, _ = cls.objects.get_or_create(pk=1, defaults=cls.env_defaults())
        return row

    @staticmethod
    def env_defaults() -> dict:
        defaults: dict = {
            "network": settings.BT_NETWORK,
            "netuid": settings.BT_NETUID,
            "metagraph_source": "file" if settings.BT_METAGRAPH_FILE or settings.BT_NETWORK == "local" else "chain",
            "metagraph_file": settings.BT_METAGRAPH_FILE,
            "openai_base_url": settings.OPENAI_BASE_URL,
            "metagraph_sync_seconds": settings.METAGRAPH_SYNC_SECONDS,
            "log_retention_days": settings.LOG_RETENTION_DAYS,
        }
        if settings.OPENAI_API_KEY:
            defaults["openai_api_key_encrypted"] = encryption.encrypt(settings.OPENAI_API_KEY)
        return defaults

    @property
    def hotkey_mnemonic(self) -> str:
        return encryption.decrypt(self.hotkey_mnemonic_encrypted) or settings.BT_HOTKEY_MNEMONIC

    @hotkey_mnemonic.setter
    def hotkey_mnemonic(self, value: str) -> None:
        self.hotkey_mnemonic_encrypted = encryption.encrypt(value)

    @property
    def openai_api_key(self) -> str:
        return encryption.decrypt(self.openai_api_key_encrypted)

    @openai_api_key.setter
    def openai_api_key(self, value: str) -> None:
        self.openai_api_key_encrypted = encryption.encrypt(value)

    @property
    def stripe_secret_key(self) -> str:
        return encryption.decrypt(self.stripe_secret_key_encrypted)

    @stripe_secret_key.setter
    def stripe_secret_key(self, value: str) -> None:
        self.stripe_secret_key_encrypted = encryption.encrypt(value)

    @property
    def stripe_webhook_secret(self) -> str:
        return encryption.decrypt(self.stripe_webhook_secret_encrypted)

    @stripe_webhook_secret.setter
    def stripe_webhook_secret(self, value: str) -> None:
        self.stripe_webhook_secret_encrypted = encryption.encrypt(value)
