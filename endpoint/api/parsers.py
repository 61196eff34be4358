"""JSON bodies of the DRF routes, read with the gateway's bounds (depth, NUL)."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from endpoint.core import errors
from endpoint.core.jsonbody import loads_bounded


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser recurses in Python's json module (a deep body is a
    RecursionError, a 500) and lets NUL through to PostgreSQL; this one
    refuses both with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return loads_bounded(stream.read() if stream is not None else b"")
        except errors.InvalidBody as exc:
            raise ParseError(exc.detail) from None
