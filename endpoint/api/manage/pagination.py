"""Bounded pages: a client may ask for smaller or bigger pages, never for
more rows than the server is willing to build at once."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, PageNumberPagination

MAX_PAGE_SIZE = 200


class KeyPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class LogCursorPagination(CursorPagination):
    """Newest first. A cursor, not page numbers: OFFSET on a table of millions
    of requests gets slower with every page, and rows arriving while a
    script pages would shift the pages under it."""

    ordering = ("-started_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
