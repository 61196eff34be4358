"""Writes openai_schemas.json: the schemas the tests check /v1 against, copied
unchanged (with every schema they $ref) from OpenAI's openapi.json.

Run when the vendored copy should follow a newer document:
    python tests/endpoint/api/extract_openai_schemas.py path/to/openapi.json [commit]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOTS = (
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateChatCompletionRequest",
    "ListModelsResponse",
    "Model",
    "ErrorResponse",
    "CreateEmbeddingResponse",
    "ImagesResponse",
    "CreateTranscriptionResponseJson",
)
OUT = Path(__file__).with_name("openai_schemas.json")
PREFIX = "#/components/schemas/"


def refs_in(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix(PREFIX)} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs_in(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs_in(v) for v in node))
    return set()


def closure(schemas: dict, roots: tuple[str, ...]) -> dict:
    wanted, todo = {}, list(roots)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted[name] = schemas[name]
            todo += refs_in(schemas[name])
    return dict(sorted(wanted.items()))


def main(source: str, commit: str = "f85dbe2") -> None:
    document = json.loads(Path(source).read_text())
    vendored = {
        "$comment": (
            f"Schemas copied unchanged from OpenAI's openapi.json (github.com/openai/openai-openapi, commit {commit};"
            " MIT, see openai_schemas.LICENSE), for checking /v1 answers and request bounds."
            " Written by extract_openai_schemas.py."
        ),
        "components": {"schemas": closure(document["components"]["schemas"], ROOTS)},
    }
    OUT.write_text(json.dumps(vendored, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
