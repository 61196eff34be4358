"""The subnets the endpoint sells access to. Every write to one goes through
here — `manage.py subnets`, the admin, /api/admin/subnets/ — with values in
their text form, checked by the same parsers as the config's settings, so
the three faces accept and refuse exactly the same things.

The chat subnet is the single-subnet setup of before: its network, netuid,
metagraph source, miner path, price and default strategy stay EndpointConfig
settings, which the gateway reads. Editing them here edits the config
(``do_set_configs``), and every config save copies them onto the chat
subnet's row, so `config set netuid 5` and `subnets edit chat --netuid 5`
are one and the same."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from .config import FIELDS, Setting, _bool, _choice, _int, do_set_configs
from .db import cached_or_loaded
from .errors import ConfigError, ModelNotFound, SubnetInputError, UnknownSubnet
from .invalidation import announce
from .models import CHAT_SUBNET, EndpointConfig, Subnet
from .strategies import Strategy, parse_strategy

# Subnet field -> the config setting that holds it for the chat subnet.
CHAT_SETTINGS: dict[str, str] = {
    "network": "network",
    "netuid": "netuid",
    "metagraph_source": "metagraph_source",
    "metagraph_file": "metagraph_file",
    "miner_path": "miner_path",
    "price": "cost_per_answer",
    "default_strategy": "default_strategy",
}
NAME_MAX_LENGTH = Subnet._meta.get_field("name").max_length
SLUG_MAX_LENGTH = Subnet._meta.get_field("slug").max_length
SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")


def parse_slug(raw: str) -> str:
    value = raw.strip()
    if not SLUG_PATTERN.fullmatch(value) or len(value) > SLUG_MAX_LENGTH:
        raise SubnetInputError(
            f"expected lowercase letters, digits and hyphens (at most {SLUG_MAX_LENGTH}), got {value!r}"
        )
    return value


def _name(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise SubnetInputError("a subnet needs a name")
    if len(value) > NAME_MAX_LENGTH:
        raise SubnetInputError(f"a name has at most {NAME_MAX_LENGTH} characters")
    return value


# The fields an operator sets, in the order commands and the API list them.
SUBNET_FIELDS: dict[str, Setting] = {
    "name": Setting(_name, "What operators and users call it, e.g. 'Image generation'."),
    "kind": Setting(_choice(*Subnet.Kind.values), f"What its miners answer: {', '.join(Subnet.Kind.values)}."),
    "network": FIELDS["network"],
    "netuid": Setting(FIELDS["netuid"].parse, "The subnet's number on its chain, 0 to 65535; one subnet per netuid."),
    "metagraph_source": FIELDS["metagraph_source"],
    "metagraph_file": FIELDS["metagraph_file"],
    "miner_path": FIELDS["miner_path"],
    "price": Setting(_int(0), "Credits one miner's answer costs; a whole number ≥ 0."),
    "default_strategy": FIELDS["default_strategy"],
    "enabled": Setting(_bool, "Whether it is synced and served: true or false."),
}
# Addresses the server sends data to: only a superuser sets them from the
# admin or the API (as for the config); the CLI is the machine operator's.
SUPERUSER_ONLY = ("network", "metagraph_source", "metagraph_file", "miner_path")


def _wrap(name: str, setting: Setting, raw: Any) -> Any:
    try:
        return setting(raw)
    except (ConfigError, SubnetInputError) as exc:
        raise SubnetInputError(exc.detail, param=name) from None


def parse_subnet_fields(raw: Mapping[str, str]) -> dict[str, Any]:
    """Typed values for ``raw`` (field -> text), or a SubnetInputError naming the field at fault."""
    unknown = [name for name in raw if name not in SUBNET_FIELDS]
    if unknown:
        raise SubnetInputError(
            f"unknown subnet field {unknown[0]!r}; known: {', '.join(SUBNET_FIELDS)}", param=unknown[0]
        )
    return {name: _wrap(name, SUBNET_FIELDS[name], text) for name, text in raw.items()}


def check_subnet(row: Subnet, changed: set[str]) -> None:
    """Rules between fields and between subnets, for ``row`` as it would be saved."""
    if row.metagraph_source == "file" and not row.metagraph_file and changed & {"metagraph_source", "metagraph_file"}:
        raise SubnetInputError("a subnet synced from a file needs its metagraph_file", param="metagraph_file")
    if "netuid" in changed:
        other = Subnet.objects.filter(netuid=row.netuid).exclude(pk=row.pk).first()
        if other is not None:
            # Neurons belong to the subnet of their netuid: two would share them.
            raise SubnetInputError(f"netuid {row.netuid} is already the subnet {other.slug!r}", param="netuid")
    if row.is_chat_subnet and not row.enabled:
        raise SubnetInputError("the chat subnet serves /chat and /v1: it can't be disabled", param="enabled")
    if row.is_chat_subnet and row.kind != Subnet.Kind.CHAT:
        raise SubnetInputError("the chat subnet answers chat: its kind stays chat", param="kind")


def find_subnet(slug: str) -> Subnet:
    ensure_chat_subnet()
    row = Subnet.objects.filter(slug=slug.strip()).first()
    if row is None:
        known = ", ".join(Subnet.objects.values_list("slug", flat=True))
        raise UnknownSubnet(f"no subnet {slug!r}; known: {known}", param="slug")
    return row


def list_subnets() -> list[Subnet]:
    ensure_chat_subnet()
    return list(Subnet.objects.all())


def subnet_values(row: Subnet) -> dict[str, Any]:
    """Every field of a subnet, with its sync status."""
    return {
        "slug": row.slug,
        **{name: getattr(row, name) for name in SUBNET_FIELDS},
        "metagraph_synced_at": row.metagraph_synced_at,
        "metagraph_block": row.metagraph_block,
    }


def new_subnet(slug: str, raw: Mapping[str, str]) -> Subnet:
    """The subnet ``raw`` (field -> text) describes, checked but not saved;
    name and netuid are required. Without a metagraph_source it is read from
    metagraph_file when one is given, else from the chain; without a
    miner_path its miners answer on the route OpenAI has for its kind."""
    slug = _wrap("slug", Setting(parse_slug, ""), slug)
    values = parse_subnet_fields(raw)
    missing = [name for name in ("name", "netuid") if name not in values]
    if missing:
        raise SubnetInputError(f"a new subnet needs its {' and '.join(missing)}", param=missing[0])
    values.setdefault("metagraph_source", "file" if values.get("metagraph_file") else "chain")
    values.setdefault("miner_path", KIND_PATHS[values.get("kind", Subnet.Kind.CHAT)])
    ensure_chat_subnet()
    if Subnet.objects.filter(slug=slug).exists():
        raise SubnetInputError(f"a subnet {slug!r} already exists", param="slug")
    row = Subnet(slug=slug, **values)
    check_subnet(row, {"slug", *values})
    return row


def edited_subnet(row: Subnet, raw: Mapping[str, str]) -> tuple[Subnet, dict[str, Any]]:
    """A copy of ``row`` with ``raw``'s changes, checked but not saved, and the typed changes."""
    values = parse_subnet_fields(raw)
    edited = copy.copy(row)
    for name, value in values.items():
        setattr(edited, name, value)
    check_subnet(edited, set(values))
    return edited, values


def do_add_subnet(slug: str, raw: Mapping[str, str]) -> Subnet:
    """Register the subnet ``new_subnet`` checks."""
    row = new_subnet(slug, raw)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # the same slug or netuid, registered since the check
        raise SubnetInputError(f"a subnet {slug!r} or one with netuid {row.netuid} was just added") from None
    return row


def do_edit_subnet(slug: str, raw: Mapping[str, str]) -> Subnet:
    """Change some of a subnet's fields from their text forms, all or none."""
    with transaction.atomic():
        row, values = edited_subnet(find_subnet(slug), raw)
        if not row.is_chat_subnet:
            row.save()
            return row
        settings = {CHAT_SETTINGS[name]: raw[name] for name in values if name in CHAT_SETTINGS}
        if settings:
            try:
                do_set_configs(settings)  # copies them onto this row (config_saved_mirror)
            except ConfigError as exc:
                field = next((f for f, s in CHAT_SETTINGS.items() if s == exc.param), exc.param)
                raise SubnetInputError(exc.detail, param=field) from None
        own = {name: value for name, value in values.items() if name not in CHAT_SETTINGS}
        if own:
            Subnet.objects.filter(pk=row.pk).update(**own)
            announce("subnet")
        row.refresh_from_db()
    return row


def do_remove_subnet(slug: str) -> None:
    """Remove a subnet. Its neurons stay (a sync of a subnet with that netuid
    brings them up to date); the chat subnet can't be removed."""
    row = find_subnet(slug)
    if row.is_chat_subnet:
        raise SubnetInputError("the chat subnet serves /chat and /v1: it can't be removed", param="slug")
    row.delete()


SYNC_STATUS = ("metagraph_synced_at", "metagraph_block", "metagraph_network")


def chat_subnet_values(config: EndpointConfig) -> dict[str, Any]:
    values = {name: getattr(config, setting) for name, setting in CHAT_SETTINGS.items()}
    return {**values, **{name: getattr(config, name) for name in SYNC_STATUS}}


def mirror_chat_subnet(config: EndpointConfig) -> None:
    """Copy the config's subnet settings onto the chat subnet's row (made if missing)."""
    values = chat_subnet_values(config)
    if not Subnet.objects.filter(slug=CHAT_SUBNET).update(**values):
        Subnet.objects.get_or_create(
            slug=CHAT_SUBNET, defaults={"name": "Chat", "kind": Subnet.Kind.CHAT, "enabled": True, **values}
        )


def ensure_chat_subnet() -> None:
    """A database where the config row was never made (or was emptied) gets
    the chat subnet from it now, as the migration made it for existing ones."""
    if not Subnet.objects.filter(slug=CHAT_SUBNET).exists():
        mirror_chat_subnet(EndpointConfig.load())


def config_saved_mirror(instance: EndpointConfig, created: bool = False, **_: Any) -> None:
    """Every config save copies the chat subnet's settings. The row made on
    first use holds the environment's defaults, which the migration gave the
    chat subnet already (and ``ensure_chat_subnet`` gives a database without it)."""
    if not created:
        mirror_chat_subnet(instance)


# --- Which subnet a request's ``model`` names ------------------------------------------

# The miners' route each kind answers on, as OpenAI names it: a new subnet's
# miner_path when the operator gives none.
KIND_PATHS = {
    Subnet.Kind.CHAT: "/v1/chat/completions",
    Subnet.Kind.IMAGE: "/v1/images/generations",
    Subnet.Kind.SPEECH: "/v1/audio/speech",
    Subnet.Kind.TRANSCRIPTION: "/v1/audio/transcriptions",
    Subnet.Kind.EMBEDDINGS: "/v1/embeddings",
}
NETUID_NAME = re.compile(r"sn(\d{1,5})")


@dataclass(frozen=True)
class ServedSubnets:
    """The enabled subnets, as every request reads them (a per-process copy)."""

    rows: tuple[Subnet, ...]

    def named(self, name: str) -> Subnet | None:
        """The subnet called ``name`` (its slug) or ``sn<netuid>``."""
        name = name.strip().lower()
        numbered = NETUID_NAME.fullmatch(name)
        for row in self.rows:
            if row.slug == name or (numbered and row.netuid == int(numbered.group(1))):
                return row
        return None

    def of_kind(self, kind: str) -> list[Subnet]:
        return [row for row in self.rows if row.kind == kind]


_served: tuple[float, ServedSubnets] | None = None
_served_generation = 0


def served_subnets() -> ServedSubnets:
    global _served
    generation = _served_generation
    ensure_chat_subnet()
    served = ServedSubnets(tuple(Subnet.objects.filter(enabled=True).order_by("netuid")))
    if generation == _served_generation:  # not edited while it was read
        _served = (time.monotonic(), served)
    return served


async def aserved_subnets() -> ServedSubnets:
    return await cached_or_loaded(_served, settings.CONFIG_CACHE_SECONDS, "subnets", served_subnets, served_subnets)


def forget_served_subnets(*_: object) -> None:
    global _served, _served_generation
    _served_generation += 1
    _served = None


def subnet_saved(**_: Any) -> None:
    """Every process forgets its copy of the subnets when an edit commits."""
    announce("subnet")


def resolve_model(served: ServedSubnets, model: str, kind: str) -> tuple[Subnet, Strategy | None]:
    """The subnet and strategy a request's ``model`` names for a route of
    ``kind``: ``<subnet>/<strategy>`` (a slug or ``sn<netuid>``, then
    ``auto``, ``best:N``, ``top_n:N``, ``uid:N``…), or a bare strategy meaning
    the first subnet of that kind. ModelNotFound (404) otherwise."""
    text = model.strip()
    name, slash, rest = text.rpartition("/")
    if slash:
        subnet = served.named(name)
        if subnet is None:
            raise ModelNotFound(f"The model {model!r} names no subnet served here. {_known(served, kind)}")
        if subnet.kind != kind:
            raise ModelNotFound(
                f"The model {model!r} names the {subnet.kind} subnet {subnet.slug!r}; "
                f"this route needs a {kind} subnet. {_known(served, kind)}"
            )
    else:
        subnets = served.of_kind(kind)
        if not subnets:
            raise ModelNotFound(f"This endpoint serves no {kind} subnet.")
        subnet, rest = subnets[0], text
    if rest.strip().lower() == "auto":
        return subnet, None
    try:
        strategy = parse_strategy(rest)
    except ValueError:
        strategy = None
    if strategy is None:
        raise ModelNotFound(f"The model {model!r} does not exist. {ModelNotFound.detail}")
    return subnet, strategy


def _known(served: ServedSubnets, kind: str) -> str:
    names = [f"{row.slug}/auto" for row in served.of_kind(kind)]
    return f"Try {' or '.join(names[:3])} (see GET /v1/models)." if names else f"No {kind} subnet is served here."
