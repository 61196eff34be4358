"""The chat page's settings panel: which subnet answers (chat, or one of
images or speech), which of its miners, and how they are asked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from endpoint.core import errors
from endpoint.core.models import CHAT_SUBNET, Subnet
from endpoint.core.strategies import Strategy
from endpoint.core.subnets import SLUG_MAX_LENGTH, ServedSubnets, aserved_subnets

MAX_MINERS = 1024  # more than any subnet has: Top N, Best N, In parallel and the UIDs listed
MAX_UID = 65_535  # uids are 16-bit on chain
UIDS_USAGE = "UIDs must be whole numbers, e.g. 1, 4, 7."
STRATEGIES = ("auto", "top_n", "best", "uids")
MAX_IMAGES = 4  # images one answer may ask for
MEDIA_KINDS = (Subnet.Kind.IMAGE, Subnet.Kind.SPEECH)
NO_SUCH_SUBNET = "That subnet is not one the chat can use. Pick another in the settings."


@dataclass(frozen=True)
class ChatOptions:
    """Every field the page sends is checked, used by the chosen strategy or
    not, so a mistyped field is explained rather than silently ignored. The
    page sends numbers as its fields' text; empty text is a field left blank."""

    strategy: Strategy | None = None  # None: auto (the key's default, else the config's)
    respond_on_first_success: bool = True
    in_parallel: int | None = None
    subnet: str = CHAT_SUBNET  # the slug of the subnet picked (see offered_subnets)
    images: int = 1  # images per answer, on an image subnet

    @classmethod
    def parse(cls, data: Any) -> ChatOptions:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise errors.ChatInputError("The settings must be an object of named fields.")
        kind = _strategy_kind(data.get("strategy"))
        top_n = _count(data.get("top_n"), "Top N")
        best_n = _count(data.get("best_n"), "Best N")
        uids = _uid_list(data.get("uids"))
        in_parallel = _count(data.get("in_parallel"), "In parallel", zero_is_blank=True)
        first_success = data.get("respond_on_first_success", True)
        if not isinstance(first_success, bool):
            raise errors.ChatInputError("Respond on first success must be true or false.")
        subnet = data.get("subnet")
        if _blank(subnet):
            subnet = CHAT_SUBNET
        elif not isinstance(subnet, str) or len(subnet) > SLUG_MAX_LENGTH:
            raise errors.ChatInputError(NO_SUCH_SUBNET)
        images = 1 if _blank(data.get("images")) else _whole(data.get("images"), MAX_IMAGES)
        if not images:
            raise errors.ChatInputError(f"Images per answer must be a whole number from 1 to {MAX_IMAGES}.")
        strategy: Strategy | None = None
        if kind == "top_n":
            if top_n is None:
                raise errors.ChatInputError(f"Top N must be a whole number from 1 to {MAX_MINERS}.")
            strategy = Strategy(top_n=top_n)
        elif kind == "best":
            strategy = Strategy(best=best_n or 1)  # as the gateway reads a bare "best"
        elif kind == "uids":
            if not uids:
                raise errors.ChatInputError("Pick at least one UID (0 or more).")
            strategy = Strategy(uids=uids)
        return cls(
            strategy=strategy,
            respond_on_first_success=first_success,
            in_parallel=in_parallel,
            subnet=subnet.strip().lower(),
            images=images,
        )

    async def media_subnet(self) -> Subnet | None:
        """The image or speech subnet picked (None: the chat subnet), if the
        chat may use it now: enabled, and of a kind it offers."""
        if self.subnet == CHAT_SUBNET:
            return None
        for row in offered_subnets(await aserved_subnets()):
            if row.slug == self.subnet:
                return row
        raise errors.ChatInputError(NO_SUCH_SUBNET)


def offered_subnets(served: ServedSubnets) -> list[Subnet]:
    """What the panel offers: the chat subnet first, then the enabled image
    and speech subnets. Other subnets of kind chat are left out: the chat
    page talks to the chat subnet's miners only (the config's, as /chat does)."""
    chat = [row for row in served.rows if row.is_chat_subnet]
    return chat + [row for row in served.rows if row.kind in MEDIA_KINDS]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _strategy_kind(value: Any) -> str:
    if _blank(value):
        return "auto"
    if not isinstance(value, str) or value not in STRATEGIES:
        raise errors.ChatInputError("Strategy must be auto, top_n, best or uids.")
    return value


def _whole(value: Any, largest: int) -> int | None:
    """``value`` as a whole number from 0 to ``largest``, from a JSON number
    or a field's text; None if it is anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= len(str(largest)) else None
    if not isinstance(value, int) or not 0 <= value <= largest:
        return None
    return value


def _count(value: Any, name: str, *, zero_is_blank: bool = False) -> int | None:
    """A count of miners (None when left blank)."""
    if _blank(value):
        return None
    number = _whole(value, MAX_MINERS)
    if number == 0 and zero_is_blank:
        return None
    if not number:
        raise errors.ChatInputError(f"{name} must be a whole number from 1 to {MAX_MINERS}.")
    return number


def _uid_list(value: Any) -> tuple[int, ...]:
    """The UIDs field: a list of numbers, or text such as "1, 4, 7"."""
    if _blank(value):
        return ()
    if isinstance(value, str):
        parts: list[Any] = [p for p in value.replace(" ", ",").split(",") if p]
    elif isinstance(value, list):
        parts = value
    else:
        raise errors.ChatInputError(UIDS_USAGE)
    if len(parts) > MAX_MINERS:
        raise errors.ChatInputError(f"Pick at most {MAX_MINERS} UIDs.")
    uids = [_whole(p, MAX_UID) for p in parts]
    if any(uid is None for uid in uids):
        raise errors.ChatInputError(UIDS_USAGE)
    return tuple(dict.fromkeys(uids))
