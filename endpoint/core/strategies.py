"""Query strategies: which miners a request goes to.

A strategy is written ``top_n:N``, ``uids:a,b``, ``uid:N``, ``best:N`` (or
``best``, meaning ``best:1``) or empty (the default: uid 0). ``best`` ranks
miners by their live success, speed and load (endpoint/network/routing.py).
Parsing is shared by requests, keys, config and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Strategy:
    top_n: int | None = None
    uids: tuple[int, ...] = ()
    best: int | None = None

    def __str__(self) -> str:
        if self.top_n is not None:
            return f"top_n:{self.top_n}"
        if self.best is not None:
            return f"best:{self.best}"
        return "uids:" + ",".join(str(u) for u in self.uids)

    def summary(self, max_chars: int = 200) -> str:
        """The strategy as a log column holds it: in full when it fits,
        else the first uids and how many more."""
        text = str(self)
        if len(text) <= max_chars:
            return text
        tail = f",… ({len(self.uids)} uids)"
        head = text[: max_chars - len(tail)].rsplit(",", 1)[0]
        return head + tail


def distinct_uids(uids) -> tuple[int, ...]:
    """``uids`` in their order, each once: a uid asked twice is still one miner."""
    return tuple(dict.fromkeys(uids))


DEFAULT = Strategy(uids=(0,))


def parse_strategy(text: str) -> Strategy | None:
    """The strategy ``text`` names; None for empty text. ValueError if malformed."""
    text = (text or "").strip()
    if not text:
        return None
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    if kind == "best" and not sep:
        return Strategy(best=1)
    if not sep:
        raise ValueError(f"strategy {text!r} is not of the form 'top_n:N', 'best:N', 'uids:1,2' or 'uid:N'")
    try:
        if kind in ("top_n", "best"):
            n = int(value)
            if n < 1:
                raise ValueError
            return Strategy(top_n=n) if kind == "top_n" else Strategy(best=n)
        if kind in ("uids", "uid"):
            uids = distinct_uids(int(part) for part in value.split(",") if part.strip())
            if not uids or any(u < 0 for u in uids) or (kind == "uid" and len(uids) != 1):
                raise ValueError
            return Strategy(uids=uids)
    except ValueError:
        usage = "use 'top_n:N' or 'best:N' (N ≥ 1) or 'uids:1,2'"
        raise ValueError(f"strategy {text!r} has a bad number: {usage}") from None
    raise ValueError(f"unknown strategy {kind!r}: use 'top_n:N', 'best:N', 'uids:1,2' or 'uid:N'")


def normalize_strategy(text: str) -> str:
    """``text`` checked and written the canonical way ('' stays '')."""
    parsed = parse_strategy(text)
    return str(parsed) if parsed else ""
