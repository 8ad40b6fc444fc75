"""The jsonSchema validator never fetches a schema, and matches patterns with RE2."""

from __future__ import annotations

import socket

import pytest

from gateway.guardrails import json_schema


def test_references_to_urls_are_never_fetched() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/schema.json"
        assert json_schema.problem({"$ref": url}) is not None
        validator = json_schema.compile({"$schema": url, "properties": {"a": {"$ref": url}}})
        with pytest.raises(Exception, match="Unresolvable"):
            json_schema.errors(validator, {"a": 1})
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected


def test_local_references_resolve() -> None:
    schema = {"$defs": {"name": {"type": "string"}},
              "properties": {"name": {"$ref": "#/$defs/name"}}}
    assert json_schema.problem(schema) is None
    assert json_schema.errors(json_schema.compile(schema), {"name": 1}) == [
        {"path": "/name", "message": "1 is not of type 'string'"}]


def test_pattern_properties_use_re2() -> None:
    schema = {"patternProperties": {"^(a+)+$": {"type": "integer"}}}
    validator = json_schema.compile(schema)
    assert json_schema.errors(validator, {"a" * 40_000 + "!": "x", "aaa": "y"}) == [
        {"path": "/aaa", "message": "'y' is not of type 'integer'"}]


def test_errors_are_capped() -> None:
    validator = json_schema.compile({"items": {"type": "string"}})
    assert len(json_schema.errors(validator, list(range(500)))) == json_schema.MAX_ERRORS
