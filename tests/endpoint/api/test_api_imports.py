"""The schema module describes the views; it must not import them back (the
request models it documents live in endpoint/api/serializers.py, which both
the views and the schema import)."""

from __future__ import annotations

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[3] / "endpoint" / "api"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_schema_imports_no_view():
    views = {".chat", ".completions", "endpoint.api.chat", "endpoint.api.completions"}
    assert not imported_modules(API / "schema.py") & views


def test_request_models_import_neither_views_nor_schema():
    assert not imported_modules(API / "serializers.py") & {".chat", ".completions", ".schema"}
