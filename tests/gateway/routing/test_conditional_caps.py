"""Caps on conditional queries: nesting, size, `$regex` operands and their RE2 programs."""

from __future__ import annotations

import time

import pytest

from gateway.errors import InvalidRequest
from gateway.regex import safe_regex
from gateway.routing.conditional import (
    MAX_QUERY_DEPTH,
    MAX_QUERY_OPERATORS,
    matches,
    query_problems,
)
from gateway.routing.config import validate_config


def _config(*queries: dict) -> dict:
    target = {"provider": "openai", "api_key": "sk-test"}
    return {"strategy": {"mode": "conditional", "default": "b",
                         "conditions": [{"query": q, "then": "a"} for q in queries]},
            "targets": [target | {"name": "a"}, target | {"name": "b"}]}


def _problems(*queries: dict) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        validate_config(_config(*queries))
    assert caught.value.status == 400
    return caught.value.extra["errors"]


def _nested(levels: int) -> dict:
    query: dict = {"metadata.x": "y"}
    for _ in range(levels - 1):
        query = {"$and": [query]}
    return query


def test_deep_nesting_is_a_400_naming_the_path_not_a_recursion_error():
    # 480 levels passed validation and then blew Python's stack at evaluation: a 500.
    problems = _problems(_nested(480))
    assert len(problems) == 1
    deepest = "strategy.conditions[0].query" + ".$and[0]" * MAX_QUERY_DEPTH
    assert problems[0].startswith(f"{deepest}: $and/$or nested {MAX_QUERY_DEPTH + 1} levels")


def test_the_deepest_accepted_query_evaluates():
    query = _nested(MAX_QUERY_DEPTH)
    assert query_problems(query, "q") == []
    validate_config(_config(query))
    assert matches(query, {"metadata": {"x": "y"}}) is True
    assert query_problems(_nested(MAX_QUERY_DEPTH + 1), "q")


def test_too_many_operators_in_one_query_is_a_400():
    wide = {f"metadata.k{i}": {"$ne": "v"} for i in range(MAX_QUERY_OPERATORS)}
    problems = _problems(wide)
    assert problems == [f"strategy.conditions[0].query: more than {MAX_QUERY_OPERATORS} keys "
                        "and operators, the cap (see README: Bounded work per request)"]
    half = {f"metadata.k{i}": {"$ne": "v"} for i in range(MAX_QUERY_OPERATORS // 2)}
    assert query_problems(half, "q") == []
    # Logical lists count too: many small clauses under one $or.
    clauses = {"$or": [{f"metadata.k{i}": "v"} for i in range(MAX_QUERY_OPERATORS)]}
    assert any("the cap" in p for p in query_problems(clauses, "q"))


@pytest.mark.parametrize("operand", [{"a": 1}, ["^a"], 5, None])
def test_a_regex_operand_that_is_not_a_string_is_a_400(operand):
    problems = _problems({"params.model": {"$regex": operand}})
    assert problems == ["strategy.conditions[0].query.params.model.$regex: must be a string "
                        "(a regular expression)"]


def test_an_unvalidated_non_string_regex_is_still_a_400():
    with pytest.raises(InvalidRequest) as caught:
        matches({"params.model": {"$regex": {"a": 1}}}, {"params": {"model": "gpt"}})
    assert caught.value.status == 400


def test_a_pattern_with_a_large_program_is_refused_naming_its_size():
    # 24 characters, 10,004 RE2 instructions: seconds per 120 KB of text.
    problems = _problems({"params.messages.0.content": {"$regex": "(a|aa|aaa|aaaa){1,1000}b"}})
    assert len(problems) == 1
    assert "query.params.messages.0.content.$regex: invalid regular expression" in problems[0]
    assert "10004 RE2 instructions; the limit is 200" in problems[0]


def test_ordinary_patterns_fit_the_program_cap():
    for pattern in [r"^user-\d+$", r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}",
                    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                    r"(?i)\b(urgent|asap|immediately)\b",
                    "^(gpt-4o|gpt-4o-mini|gpt-4-turbo|gpt-3.5-turbo|claude-3-5-sonnet|"
                    "claude-3-haiku|llama-3-70b|mistral-large|gemini-1.5-pro|command-r-plus)$"]:
        assert safe_regex.problem(pattern) is None, pattern


def test_the_regexes_of_one_config_are_capped_together():
    heavy = "[ab]*a[ab]{190}c"  # just under the per-pattern cap
    size = safe_regex.program_size(heavy)
    assert 150 < size <= safe_regex.MAX_PROGRAM_SIZE
    fits = 1000 // size
    validate_config(_config(*[{f"metadata.k{i}": {"$regex": heavy}} for i in range(fits)]))
    problems = _problems(*[{f"metadata.k{i}": {"$regex": heavy}} for i in range(fits + 1)])
    assert problems == [f"strategy.conditions: the $regex patterns total {(fits + 1) * size} "
                        "RE2 instructions, over the cap of 1000 "
                        "(see README: Bounded work per request)"]


def test_a_search_looks_at_the_first_bytes_of_the_text_only():
    cap = safe_regex.MAX_SEARCH_BYTES
    assert safe_regex.search("needle", "x" * (cap - 6) + "needle" + "x" * 10)
    assert not safe_regex.search("needle", "x" * (cap - 5) + "needle")
    # Cut in bytes: a 4-byte character split at the cap is dropped, not mangled.
    head = safe_regex.head("😀" * cap)
    assert head == "😀" * (cap // 4)
    assert len(safe_regex.head("é" * cap + "z").encode()) == cap


def test_the_worst_accepted_match_on_a_huge_text_takes_milliseconds():
    # The slowest family found (bench/regex_worst_case.py): a DFA state per byte of input.
    pattern = "[ab]*a[ab]{193}c"
    assert safe_regex.problem(pattern) is None
    text = "ab" * (16 * 1024 * 1024)  # 32 MiB, a whole request body
    started = time.perf_counter()
    safe_regex.search(pattern, text)
    # ~5 ms measured; before the caps, 120 KB of it took seconds.
    assert time.perf_counter() - started < 0.25
