"""jsonSchema, jsonKeys, containsCode and validUrls, with Portkey's expectations as ours.

Validation messages are python-jsonschema's, not @cfworker's: the errors asserted are the
same errors, in this validator's words. validUrls judges URLs by their form only (no DNS,
no HTTP: docs/guardrails.md), so Portkey's DNS expectations are replaced by form ones.
"""

from __future__ import annotations

import orjson

from tests.gateway.guardrails.build import problems_of, run

KEY_SCHEMA = {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}
USER_SCHEMA = {
    "type": "object", "required": ["user"],
    "properties": {"user": {
        "type": "object", "required": ["name", "contact", "preferences"],
        "properties": {
            "name": {"type": "string"},
            "contact": {"type": "object", "required": ["email", "phone"], "properties": {
                "email": {"type": "string", "format": "email"},
                "phone": {"type": "object", "required": ["country", "number"], "properties": {
                    "country": {"type": "string"}, "number": {"type": "string"}}}}},
            "preferences": {"type": "object", "required": ["theme", "notifications"],
                            "properties": {"theme": {"type": "string",
                                                     "enum": ["light", "dark"]},
                                           "notifications": {"type": "boolean"}}}}}},
}


# --- jsonSchema ---------------------------------------------------------------------------

def test_json_schema_code_block_and_trailing_object() -> None:
    text = ('adding some text before this ```json\n{"key": "value"}\n```\n and adding some '
            'text after {"key":"value"}')
    result = run("default.jsonSchema", text, schema=KEY_SCHEMA)
    assert result.error is None and result.verdict is True
    assert result.data["matchedJson"] == {"key": "value"}
    assert "Successfully validated" in result.data["explanation"]


def test_json_that_only_python_reads_is_read_as_json_parse_does() -> None:
    """Past 64 bits an integer is a double, as in JavaScript (orjson could not write it back
    into `hook_results`); NaN and Infinity are not JSON."""
    big = run("default.jsonSchema", '{"key": "v", "n": 123456789012345678901234567890}',
              schema=KEY_SCHEMA)
    assert big.verdict is True and big.data["matchedJson"]["n"] == 1.2345678901234568e29
    assert orjson.loads(orjson.dumps(big.data))["matchedJson"]["n"] == 1.2345678901234568e29
    huge = run("default.jsonKeys", '{"key": 1' + "0" * 5000 + "}", keys=["key"],
               operator="any")
    assert huge.verdict is True and orjson.dumps(huge.data)  # Infinity: written as null
    for constant in ("NaN", "Infinity", "-Infinity"):
        result = run("default.jsonSchema", f'{{"key": "v", "n": {constant}}}', schema=KEY_SCHEMA)
        assert result.verdict is False
        assert result.data["explanation"] == "No valid JSON found in the response."


def test_json_schema_mismatch() -> None:
    schema = {"type": "object", "properties": {"key2": {"type": "string"}},
              "required": ["key2"]}
    result = run("default.jsonSchema", '{"key": "value"}', schema=schema)
    assert result.error is None and result.verdict is False


def test_json_schema_bare_object_with_prose_fields() -> None:
    text = ('{\n  "title": "The Rise of AI Agents: Transforming the Future",\n  "short_intro": '
            '"AI agents are revolutionizing various sectors."\n}')
    schema = {"type": "object", "required": ["title", "short_intro"],
              "properties": {"title": {"type": "string"}, "short_intro": {"type": "string"}}}
    for wrapped in (text, f"```json\n{text}\n```"):
        result = run("default.jsonSchema", wrapped, schema=schema)
        assert result.verdict is True, wrapped
        assert set(result.data["matchedJson"]) == {"title", "short_intro"}


def test_json_schema_only_code_blocks_count_when_there_are_some() -> None:
    text = ('adding some text before this ```json\n{"key1": "value"}\n```\n and adding some '
            'text after {"key":"value')
    result = run("default.jsonSchema", text, schema=KEY_SCHEMA)
    assert result.error is None and result.verdict is False
    assert "Failed to validate" in result.data["explanation"]
    assert result.data["validationErrors"] == [
        {"path": "/", "message": "'key' is a required property"}]


def test_json_schema_no_json_is_false_even_inverted() -> None:
    result = run("default.jsonSchema", "This is just plain text with no JSON",
                 schema=KEY_SCHEMA)
    assert result.verdict is False and result.error is None
    assert "No valid JSON found" in result.data["explanation"]
    inverted = run("default.jsonSchema", "plain", schema=KEY_SCHEMA, **{"not": True})
    assert inverted.verdict is False


def test_json_schema_nested_valid() -> None:
    text = ('Here\'s a profile:\n```json\n{"user": {"name": "John Doe", "contact": {"email": '
            '"john@example.com", "phone": {"country": "+1", "number": "555-0123"}}, '
            '"preferences": {"theme": "dark", "notifications": true}}}\n```\nThat is all.')
    result = run("default.jsonSchema", text, schema=USER_SCHEMA)
    assert result.verdict is True
    assert result.data["matchedJson"]["user"]["contact"]["phone"]["number"] == "555-0123"


def test_json_schema_nested_invalid_reports_every_error() -> None:
    text = ('Invalid data:\n```json\n{"user": {"name": "John Doe", "contact": {"email": '
            '"invalid-email", "phone": {"country": "+1"}}, "preferences": {"theme": '
            '"invalid-theme", "notifications": "not-a-boolean"}}}\n```\n')
    result = run("default.jsonSchema", text, schema=USER_SCHEMA)
    assert result.verdict is False
    errors = {e["path"]: e["message"] for e in result.data["validationErrors"]}
    assert errors == {
        "/user/contact/email": "'invalid-email' is not a 'email'",
        "/user/contact/phone": "'number' is a required property",
        "/user/preferences/theme": "'invalid-theme' is not one of ['light', 'dark']",
        "/user/preferences/notifications": "'not-a-boolean' is not of type 'boolean'",
    }


def test_json_schema_patterns_run_on_re2() -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^(a+)+$"}}}
    hostile = '{"id": "' + "a" * 50_000 + '!"}'
    result = run("default.jsonSchema", hostile, schema=schema)
    assert result.verdict is False
    assert result.data["validationErrors"][0]["path"] == "/id"


def test_json_schema_bad_schemas_are_config_problems() -> None:
    def problems(schema: object) -> list[str]:
        return problems_of("output_guardrails", [{"jsonSchema": {"schema": schema}}])

    assert problems({"type": "strin"}) == [
        "output_guardrails[0].jsonSchema.schema: invalid JSON Schema: /type: 'strin' is not "
        "valid under any of the given schemas"]
    assert problems("{}") == [
        "output_guardrails[0].jsonSchema.schema: must be a JSON Schema object"]
    assert "backreferences" in problems({"properties": {"a": {"pattern": "(a)\\1"}}})[0]
    assert "/patternProperties/" in problems({"patternProperties": {"(?=x)": {}}})[0]
    assert "remote schemas are never fetched" in problems({"$ref": "https://a.example/s"})[0]


# --- jsonKeys -----------------------------------------------------------------------------

OBJECT = '{"key1": "value1", "key2": "value2"}'


def test_json_keys_any() -> None:
    result = run("default.jsonKeys", OBJECT, keys=["key1", "key3"], operator="any")
    assert result.error is None and result.verdict is True
    assert result.data == {
        "matchedJson": {"key1": "value1", "key2": "value2"}, "verdict": True,
        "explanation": "Successfully found at least one required key. Found keys: [key1].",
        "presentKeys": ["key1"], "missingKeys": ["key3"], "operator": "any",
        "textExcerpt": OBJECT}


def test_json_keys_all() -> None:
    result = run("default.jsonKeys", OBJECT, keys=["key1", "key2"], operator="all")
    assert result.verdict is True
    assert result.data["explanation"] == \
        "Successfully found all required keys. Found keys: [key1, key2]."
    assert result.data["missingKeys"] == []


def test_json_keys_none() -> None:
    result = run("default.jsonKeys", OBJECT, keys=["key3", "key4"], operator="none")
    assert result.verdict is True
    assert result.data["explanation"] == ("Successfully verified no required keys are present."
                                          " Missing keys: [key3, key4].")


def test_json_keys_code_block_and_best_match() -> None:
    block = run("default.jsonKeys", f"```json\n{OBJECT}\n```", keys=["key1"], operator="any")
    assert block.verdict is True and block.data["presentKeys"] == ["key1"]
    several = run("default.jsonKeys", '{"key1": "value1"} {"key2": "value2", "key3": "value3"}',
                  keys=["key2", "key3"], operator="all")
    assert several.verdict is True
    assert several.data["matchedJson"] == {"key2": "value2", "key3": "value3"}


def test_json_keys_missing_text_and_no_json() -> None:
    empty = run("default.jsonKeys", "", keys=["key1"], operator="any")
    assert empty.error is not None and empty.error.message == "Missing text to analyze"
    assert empty.data == {
        "explanation": "An error occurred while processing JSON: Missing text to analyze",
        "operator": "any", "requiredKeys": ["key1"], "textExcerpt": "No text available"}
    plain = run("default.jsonKeys", "This is just plain text with no JSON", keys=["key1"],
                operator="any")
    assert plain.verdict is False and plain.error is None
    assert plain.data == {"explanation": "No valid JSON found in the text.",
                          "requiredKeys": ["key1"], "operator": "any",
                          "textExcerpt": "This is just plain text with no JSON"}


def test_json_keys_parameters_are_checked_with_the_config() -> None:
    assert problems_of("output_guardrails", [{"jsonKeys": {"operator": "any"}}]) == [
        "output_guardrails[0].jsonKeys.keys: is required"]
    assert problems_of("output_guardrails", [{"jsonKeys": {"keys": ["a"],
                                                           "operator": "invalid"}}]) == [
        "output_guardrails[0].jsonKeys.operator: must be one of 'any', 'all', 'none'"]


def test_json_extraction_stays_linear_on_unclosed_braces() -> None:
    result = run("default.jsonKeys", "{" * 200_000, keys=["a"], operator="any")
    assert result.verdict is False and result.error is None


# --- containsCode -------------------------------------------------------------------------

def test_contains_code_matching_format() -> None:
    text = '```py\nprint("Hello World")\n```'
    result = run("default.containsCode", text, format="Python")
    assert result.verdict is True
    assert result.data == {"explanation": "Found code block(s) in Python format",
                           "searchedFormat": "Python", "not": False,
                           "foundFormats": ["Python"], "textExcerpt": text}


def test_contains_code_other_language_and_none() -> None:
    js = run("default.containsCode", '```js\nconsole.log("Hello");\n```', format="Python")
    assert js.verdict is False and js.data["foundFormats"] == ["JavaScript"]
    assert js.data["explanation"] == "No code blocks in Python format found"
    plain = run("default.containsCode", "This is just plain text", format="Python")
    assert plain.verdict is False
    assert plain.data["explanation"] == "No code blocks found in the text"
    inverted = run("default.containsCode", "plain", format="Python", **{"not": True})
    assert inverted.verdict is True


def test_contains_code_several_blocks_and_empty_text() -> None:
    both = run("default.containsCode",
               '```py\nprint("Hello")\n```\n```js\nconsole.log("Hi");\n```', format="Python")
    assert both.verdict is True and both.data["foundFormats"] == ["Python", "JavaScript"]
    empty = run("default.containsCode", "", format="Python")
    assert empty.error is not None and empty.error.message == "No text content to analyze"


def test_contains_code_format_is_case_sensitive() -> None:
    assert problems_of("output_guardrails", [{"containsCode": {"format": "python"}}]) == [
        "output_guardrails[0].containsCode.format: is case-sensitive; did you mean 'Python'?"]
    assert problems_of("output_guardrails", [{"containsCode": {}}]) == [
        "output_guardrails[0].containsCode.format: is required"]


# --- validUrls ----------------------------------------------------------------------------

def test_valid_urls_well_formed() -> None:
    result = run("default.validUrls", "Check out https://example.com and https://google.com")
    assert result.verdict is True and result.error is None
    assert result.data["validUrls"] == ["https://example.com", "https://google.com"]
    assert result.data["invalidUrls"] == [] and result.data["validationMethod"] == "syntax"


def test_valid_urls_malformed_hosts() -> None:
    text = ("Check out https://malformed.123 and http://localhost:8080/x and "
            "http://10.0.0.1/admin and https://-bad-.com")
    result = run("default.validUrls", text)
    assert result.verdict is False
    assert result.data["invalidUrls"] == ["https://malformed.123", "http://localhost:8080/x",
                                          "http://10.0.0.1/admin", "https://-bad-.com"]
    assert result.data["explanation"] == "Some URLs are invalid (4 of 4 failed)."


def test_valid_urls_mixed_query_and_long_text() -> None:
    mixed = run("default.validUrls",
                "Valid: https://example.com/path?param=1#section Invalid: https://x.123")
    assert mixed.verdict is False
    assert mixed.data["validUrls"] == ["https://example.com/path?param=1#section"]
    assert mixed.data["explanation"] == "Some URLs are invalid (1 of 2 failed)."
    long = run("default.validUrls", f"text {'-' * 200} https://example.com {'-' * 200}")
    assert long.data["validUrls"] == ["https://example.com"]
    assert long.data["textExcerpt"].endswith("...")


def test_valid_urls_without_urls_or_text() -> None:
    none = run("default.validUrls", "This text contains no URLs")
    assert none.verdict is False and none.error is None
    assert none.data["explanation"] == "No URLs found in the text." and none.data["urls"] == []
    empty = run("default.validUrls", "")
    assert empty.error is not None and empty.error.message == "Missing text to analyze"
    assert empty.data["textExcerpt"] == "No text available"
