"""The structure a client asked answers to have (``response_format``), checked
on every miner's answer.

A miner is not a model we control: asked for JSON, it may send prose, broken
JSON or an object of the wrong shape. With ``json_schema`` and
``strict: true`` an answer that does not parse or does not validate against
the schema is that miner's failure, so retries and the race move on to
another miner and only a valid answer is delivered (and charged). Without
``strict`` (and for ``json_object``) the answer must at least be a JSON
object, which is what OpenAI's own JSON mode promises. A refusal or a tool
call is a valid answer either way: OpenAI's SDKs expect both there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from endpoint.core.errors import InvalidBody, MinerFailure


@dataclass(frozen=True)
class AnswerFormat:
    """What ``check`` holds an answer to: a JSON object, and (``validator``) one valid against a schema."""

    name: str
    validator: Draft202012Validator | None = None

    @classmethod
    def from_request(cls, response_format: Any) -> AnswerFormat | None:
        """The format ``response_format`` asks for; None for text (or none given).
        A schema that is not a valid JSON Schema is the client's error (400)."""
        if not isinstance(response_format, dict):
            return None
        kind = response_format.get("type")
        if kind == "json_object":
            return cls("json_object")
        if kind != "json_schema" or not isinstance(response_format.get("json_schema"), dict):
            return None
        spec = response_format["json_schema"]
        name = str(spec.get("name") or "json_schema")
        if spec.get("strict") is not True:
            return cls(name)
        schema = spec.get("schema", {})
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise InvalidBody(
                f"response_format.json_schema.schema is not a valid JSON Schema: {exc.message}",
                param="response_format",
            ) from None
        return cls(name, Draft202012Validator(schema))

    def check(self, message: dict[str, Any]) -> None:
        """Raise MinerFailure unless ``message`` is an answer of this format."""
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            return  # a refusal or tool calls (the protocol refuses an empty answer already)
        try:
            value = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise MinerFailure("miner's answer is not the JSON the request asked for") from None
        if not isinstance(value, dict):
            raise MinerFailure("miner's answer is JSON but not an object, as the request asked")
        if self.validator is None:
            return
        error = next(iter(self.validator.iter_errors(value)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the top level"
            complaint = f"miner's answer does not follow the schema {self.name!r} at {where}: {error.message}"
            raise MinerFailure(complaint[:300])
