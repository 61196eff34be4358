"""Parsing a JSON request body with bounds, so that whatever is accepted can
later be serialised, forwarded to miners and written to the log.

- Depth is capped (``MAX_JSON_DEPTH``): orjson reads 1024 levels but writes
  only 254, and Python's json recurses; a body nested deeper than any real
  request is refused up front, before credits are held.
- NUL characters are refused everywhere in the body: PostgreSQL cannot store
  them in text or jsonb, so a NUL accepted here would surface later as a log
  that cannot be written.

Both checks are nearly free for ordinary bodies: the depth walk runs only
when the body has more opening brackets than the cap (depth can't exceed
their count), the NUL walk only when the escape ``\\u0000`` is in the bytes
(a raw NUL is not valid JSON and orjson refuses it already).
"""

from __future__ import annotations

from typing import Any

import orjson

from endpoint.core import errors

MAX_JSON_DEPTH = 64
_NUL_ESCAPE = b"\\u0000"
NOT_JSON = "Request body is not valid JSON."


def loads_bounded(raw: bytes | str) -> Any:
    """``raw`` parsed as JSON; InvalidBody if it is not JSON, too deep, or holds a NUL."""
    if isinstance(raw, str):
        raw = raw.encode()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.InvalidBody(NOT_JSON) from None
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(data) > MAX_JSON_DEPTH:
        raise errors.InvalidBody(f"Request body is nested deeper than {MAX_JSON_DEPTH} levels.")
    if _NUL_ESCAPE in raw and holds_nul(data):
        raise errors.InvalidBody("Request body contains a NUL character (\\u0000), which is not accepted.")
    return data


def json_depth(data: Any) -> int:
    """How deeply ``data``'s lists and objects nest (a scalar is 0); iterative,
    so no input can exhaust the stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                return deepest
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def holds_nul(data: Any) -> bool:
    """Whether any string of ``data``, key or value, contains a NUL character."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False
