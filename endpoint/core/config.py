"""Runtime configuration: the EndpointConfig row as operators name its fields,
and a per-process snapshot that the hot path reads without a query."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bittensor_core import Keypair
from django.conf import settings
from yarl import URL

from .db import cached_or_loaded
from .encryption import SecretUnreadable, mask
from .errors import ConfigError
from .invalidation import announce
from .models import CHAT_SUBNET, EndpointConfig, Subnet
from .strategies import normalize_strategy


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"expected true or false, got {raw!r}")


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"expected a number of seconds, got {raw!r}") from None
    if not 0 < value <= 600:
        raise ConfigError("expected a number of seconds above 0 and at most 600")
    return value


INT_COLUMN_MAX = 2**31 - 1  # the settings' integer columns hold no more


def _int(minimum: int, maximum: int = INT_COLUMN_MAX) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"expected a whole number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"expected a whole number ≥ {minimum}")
        if value > maximum:
            raise ConfigError(f"expected a whole number ≤ {maximum}")
        return value

    return parse


def parse_rate_limits(raw: str | list) -> list[dict[str, int]]:
    try:
        rules = json.loads(raw) if isinstance(raw, str) else raw
        parsed = [{"times": int(r["times"]), "seconds": int(r["seconds"])} for r in rules]
    except (ValueError, TypeError, KeyError):
        raise ConfigError('expected a JSON list like [{"times": 10, "seconds": 60}]') from None
    if any(r["times"] < 1 or r["seconds"] < 1 for r in parsed):
        raise ConfigError("times and seconds must be at least 1")
    return parsed


def _strategy(raw: str) -> str:
    try:
        return normalize_strategy(raw)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ConfigError(f"expected one of {', '.join(options)}")
        return raw

    return parse


def _text(raw: str) -> str:
    return raw.strip()


def _stripe_key(*prefixes: str) -> Callable[[str], str]:
    """A Stripe key of the kind its prefixes name (or empty: none configured)."""

    def parse(raw: str) -> str:
        value = _text(raw)
        if value and not value.startswith(prefixes):
            raise ConfigError(f"expected a key starting with {' or '.join(prefixes)}")
        return value

    return parse


def _mnemonic(raw: str) -> str:
    """A hotkey mnemonic that makes a keypair (or empty: none configured)."""
    value = _text(raw)
    if value:
        try:
            keypair_from_mnemonic(value)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return value


def normalize_miner_path(raw: str) -> str:
    """The path (and ``?query``) appended to every miner's axon, exactly as
    the HTTP client puts it on the wire: btauth/1 signs that request target,
    so what is stored, signed and sent must be the same text. Refused: a
    ``#fragment`` (never sent), and anything sent percent-encoded (spaces,
    non-ASCII, ``%2F``…), since a miner checking the signature against its
    decoded path would see other text. ``%7E`` and the like become ``~``."""
    text = raw.strip()
    if not text.startswith("/"):
        raise ConfigError(f"miner_path must start with '/', got {text!r}")
    if "#" in text:
        raise ConfigError("miner_path can't have a #fragment: it is never sent to the miner")
    if any(not "!" <= c <= "~" for c in text):
        raise ConfigError(
            "miner_path may only hold printable ASCII without spaces: anything else is sent "
            "percent-encoded, and miners would check our signature against another path"
        )
    target = URL("http://miner" + text)
    if target.raw_path_qs != target.path_qs:
        raise ConfigError(
            f"miner_path {text!r} is sent as {target.raw_path_qs!r}, which miners decode to "
            f"{target.path_qs!r}: use a path without percent-escapes"
        )
    return target.raw_path_qs


NETWORK_NAMES = ("finney", "test", "archive", "devnet", "local")  # the SDK's names (bittensor.settings)


def _network(raw: str) -> str:
    value = raw.strip()
    if value in NETWORK_NAMES:
        return value
    try:
        url = URL(value)
    except ValueError:
        url = None
    if url is not None and url.scheme in ("ws", "wss") and url.host:
        return value
    raise ConfigError(f"expected one of {', '.join(NETWORK_NAMES)} or a ws:// or wss:// URL, got {value!r}")


@dataclass(frozen=True)
class Setting:
    """One operator setting: how its text is read (raising ConfigError) and
    what it means with the values it takes, for `config --help`, the admin
    and the management API."""

    parse: Callable[[str], Any]
    help: str

    def __call__(self, raw: str) -> Any:
        return self.parse(raw)


# Secrets are handled by the model's encrypting properties.
FIELDS: dict[str, Setting] = {
    "network": Setting(
        _network, f"The chain to read the metagraph from: {', '.join(NETWORK_NAMES)}, or a ws:// or wss:// URL."
    ),
    "netuid": Setting(_int(0, 65535), "The subnet's number on that chain; a whole number from 0 to 65535."),
    "metagraph_source": Setting(
        _choice("chain", "file"), "Where the miners list comes from: chain (the network) or file (metagraph_file)."
    ),
    "metagraph_file": Setting(_text, "Path of a metagraph snapshot (JSON), read when metagraph_source is file."),
    "hotkey_mnemonic": Setting(
        _mnemonic, "The validator hotkey's BIP-39 mnemonic; it signs every request to miners. Secret: shown masked."
    ),
    "rate_limiting_enabled": Setting(_bool, "Whether rate limits apply: true or false."),
    "global_rate_limits": Setting(
        parse_rate_limits,
        'Limits for keys without their own, all at once: JSON like [{"times": 10, "seconds": 60}]; '
        "times and seconds at least 1.",
    ),
    "moderation_enabled": Setting(_bool, "Whether prompts are checked by OpenAI's moderation first: true or false."),
    "moderation_fail_closed": Setting(
        _bool, "When moderation can't be reached: true refuses the request, false lets it through."
    ),
    "openai_api_key": Setting(_text, "The OpenAI key moderation uses. Secret: shown masked."),
    "openai_base_url": Setting(_text, "The OpenAI-compatible API moderation calls, e.g. https://api.openai.com/v1."),
    "miner_timeout": Setting(
        _positive_float,
        "Seconds a miner gets when the request names none: above 0, at most 600 and at most max_miner_timeout.",
    ),
    "max_miner_timeout": Setting(
        _positive_float, "Cap on the timeout a request may ask for, in seconds: above 0 and at most 600."
    ),
    "miner_path": Setting(
        normalize_miner_path, "The path sent to every miner's axon, starting with /; printable ASCII, no spaces."
    ),
    "cost_per_answer": Setting(_int(0), "Credits one miner's answer costs; a whole number ≥ 0."),
    "default_strategy": Setting(
        _strategy, "Which miners a request without uids asks: top_n:N, uids:1,2 or empty (uid 0)."
    ),
    "metagraph_sync_seconds": Setting(_int(10), "How often the metagraph is synced, in seconds; at least 10."),
    "log_retention_days": Setting(_int(0), "Request logs older than this many days are purged; 0 keeps them forever."),
    "retain_media": Setting(
        _bool,
        "Whether request logs keep the images and audio miners answer and the audio uploaded for transcription "
        "(as long as the logs), for the console to show: true or false. Off: only their type, size and hash.",
    ),
    "stripe_publishable_key": Setting(
        _stripe_key("pk_"), "Stripe's publishable key (pk_live_… or pk_test_…), given to the billing page."
    ),
    "stripe_secret_key": Setting(
        _stripe_key("sk_", "rk_"), "Stripe's secret (or restricted) key that charges cards. Secret: shown masked."
    ),
    "stripe_webhook_secret": Setting(
        _stripe_key("whsec_"),
        "The signing secret of the Stripe webhook endpoint (…/billing/stripe/webhook/). Secret: shown masked.",
    ),
}
REDIS_URL_POINTER = (
    "the Redis URL is not a runtime setting here: set the REDIS_URL environment variable "
    "(e.g. REDIS_URL=redis://localhost:6379/0) and restart the server and workers"
)
SECRETS = ("hotkey_mnemonic", "openai_api_key", "stripe_secret_key", "stripe_webhook_secret")
# Secrets, and the addresses the server sends data to (the chain, the
# metagraph, OpenAI with its key, the path appended to every miner's axon):
# only a superuser changes them from the admin or the API; the CLI is the
# machine operator's and may.
SUPERUSER_ONLY = (*SECRETS, "network", "metagraph_source", "metagraph_file", "openai_base_url", "miner_path")


UNREADABLE = "unreadable: encrypted with another key (see SECRET_KEY_FALLBACKS)"


def masked_secret(row: EndpointConfig, name: str) -> str:
    """Secret ``name`` as operators may see it: masked, or why it can't be read."""
    try:
        return mask(getattr(row, name))
    except SecretUnreadable:
        return UNREADABLE


def config_values(row: EndpointConfig | None = None) -> dict[str, Any]:
    """Every operator-visible setting, secrets masked."""
    row = row or EndpointConfig.load()
    return {name: masked_secret(row, name) if name in SECRETS else getattr(row, name) for name in FIELDS}


def do_set_config(name: str, raw: str) -> Any:
    """Set one setting from its text form; returns the value as shown."""
    return do_set_configs({name: raw})[name]


def do_set_configs(changes: dict[str, str]) -> dict[str, Any]:
    """Set settings from their text forms, all or none (ConfigError naming
    the setting at fault); returns the values as shown."""
    for name in changes:
        if name == "redis_url":  # a btvep setting; here it is the server's environment
            raise ConfigError(REDIS_URL_POINTER, param=name)
        if name not in FIELDS:
            raise ConfigError(f"unknown config name {name!r}; known: {', '.join(FIELDS)}", param=name)
    values = {}
    for name, raw in changes.items():
        try:
            values[name] = FIELDS[name](raw)
        except ConfigError as exc:
            raise ConfigError(exc.detail, param=name) from None
    row = EndpointConfig.load()
    for name, value in values.items():
        setattr(row, name, value)
    check_together(row, changes)
    row.save()
    return {name: mask(value) if name in SECRETS else value for name, value in values.items()}


def check_together(row: EndpointConfig, changes: dict[str, Any]) -> None:
    """Rules between settings, checked when ``changes`` touch them: the
    default miner timeout can't exceed the cap requests are held to, and the
    netuid is the chat subnet's, so no other subnet may have it."""
    if "netuid" in changes:
        other = Subnet.objects.filter(netuid=row.netuid).exclude(slug=CHAT_SUBNET).first()
        if other is not None:
            raise ConfigError(f"netuid {row.netuid} is already the subnet {other.slug!r}", param="netuid")
    if row.miner_timeout <= row.max_miner_timeout or not {"miner_timeout", "max_miner_timeout"} & set(changes):
        return
    name = "miner_timeout" if "miner_timeout" in changes else "max_miner_timeout"
    raise ConfigError(
        f"miner_timeout ({row.miner_timeout:g}s) can't be above max_miner_timeout ({row.max_miner_timeout:g}s)",
        param=name,
    )


def hotkey_address(mnemonic: str) -> str:
    """The ss58 address of the hotkey ``mnemonic`` makes (never the words)."""
    return keypair_from_mnemonic(mnemonic).ss58_address


def keypair_from_mnemonic(mnemonic: str) -> Keypair:
    """The sr25519 hotkey for ``mnemonic``; ValueError (without the words) if invalid."""
    try:
        return Keypair.create_from_mnemonic(" ".join(mnemonic.split()))
    except ValueError:
        raise ValueError("the hotkey mnemonic is not a valid BIP-39 phrase") from None


@dataclass(frozen=True)
class RuntimeConfig:
    network: str
    netuid: int
    hotkey_mnemonic: str
    rate_limiting_enabled: bool
    global_rate_limits: tuple
    moderation_enabled: bool
    moderation_fail_closed: bool
    openai_api_key: str
    openai_base_url: str
    miner_timeout: float
    max_miner_timeout: float
    miner_path: str
    cost_per_answer: int
    default_strategy: str
    retain_media: bool = False

    @classmethod
    def from_row(cls, row: EndpointConfig) -> RuntimeConfig:
        return cls(
            network=row.network,
            netuid=row.netuid,
            hotkey_mnemonic=row.hotkey_mnemonic,
            rate_limiting_enabled=row.rate_limiting_enabled,
            global_rate_limits=tuple((r["times"], r["seconds"]) for r in row.global_rate_limits),
            moderation_enabled=row.moderation_enabled,
            moderation_fail_closed=row.moderation_fail_closed,
            openai_api_key=row.openai_api_key,
            openai_base_url=row.openai_base_url,
            miner_timeout=row.miner_timeout,
            max_miner_timeout=row.max_miner_timeout,
            miner_path=row.miner_path,
            cost_per_answer=row.cost_per_answer,
            default_strategy=row.default_strategy,
            retain_media=row.retain_media,
        )


_cached: tuple[float, RuntimeConfig] | None = None


def runtime_config() -> RuntimeConfig:
    """The config as this process sees it (re-read at most every few seconds)."""
    global _cached
    now = time.monotonic()
    cached = _cached
    if cached is None or now - cached[0] > settings.CONFIG_CACHE_SECONDS:
        generation = _forgotten
        cached = (now, RuntimeConfig.from_row(EndpointConfig.load()))
        if generation == _forgotten:  # not edited while it was read: the copy is current
            _cached = cached
    return cached[1]


async def aruntime_config() -> RuntimeConfig:
    """``runtime_config()`` for async code. Past its cache window, the copy
    is still served for as long again while it is re-read in the background."""
    return await cached_or_loaded(
        _cached, settings.CONFIG_CACHE_SECONDS, "runtime config", runtime_config, runtime_config
    )


_forgotten = 0  # how many times the copy was dropped


def forget_runtime_config(*_: object) -> None:
    global _cached, _forgotten
    _forgotten += 1
    _cached = None


def config_saved(created: bool = False, **_: Any) -> None:
    """Every process forgets its copy (see endpoint.core.invalidation). The
    row made on first use holds the defaults every process had already."""
    if created:
        forget_runtime_config()
    else:
        announce("config")
