"""The condition evaluator, table-driven."""

from __future__ import annotations

import pytest

from gateway.routing.conditional import matches

CONTEXT = {
    "metadata": {"user_plan": "paid", "region": "eu", "tier": "3"},
    "params": {"model": "gpt-4o", "max_tokens": 500, "temperature": 0.2,
               "response_format": {"type": "json_object"},
               "messages": [{"role": "user", "content": "hi"}]},
    "url": {"pathname": "/v1/chat/completions"},
}

CASES = [
    ({"metadata.user_plan": "paid"}, True),
    ({"metadata.user_plan": "free"}, False),
    ({"metadata.user_plan": {"$eq": "paid"}}, True),
    ({"metadata.user_plan": {"$ne": "paid"}}, False),
    ({"metadata.missing": {"$ne": "x"}}, True),
    ({"metadata.missing": {"$eq": None}}, False),
    ({"params.max_tokens": {"$gt": 100}}, True),
    ({"params.max_tokens": {"$gte": 500}}, True),
    ({"params.max_tokens": {"$lt": 500}}, False),
    ({"params.max_tokens": {"$lte": 500}}, True),
    ({"metadata.tier": {"$gt": 2}}, True),  # numbers compared as numbers
    ({"params.model": {"$gt": 2}}, False),  # not a number: never greater
    ({"params.model": {"$in": ["gpt-4o", "gpt-4"]}}, True),
    ({"params.model": {"$nin": ["gpt-4o"]}}, False),
    ({"params.model": {"$regex": "^gpt-4"}}, True),
    ({"params.response_format.type": "json_object"}, True),  # any depth
    ({"params.messages.0.role": "user"}, True),
    ({"url.pathname": {"$regex": "chat"}}, True),
    # Every operator of an object is evaluated: the regex passing does not end the check.
    ({"params.model": {"$regex": "^gpt", "$eq": "gpt-4"}}, False),
    ({"params.max_tokens": {"$gt": 100, "$lt": 200}}, False),
    ({"$or": [{"metadata.region": "us"}, {"metadata.region": "eu"}]}, True),
    ({"$and": [{"metadata.region": "eu"}, {"params.model": "gpt-4"}]}, False),
    # Sibling keys after $or still count (Portkey returns early here).
    ({"$or": [{"metadata.region": "eu"}], "metadata.user_plan": "free"}, False),
    ({"$and": [{"metadata.region": "eu"}], "params.model": "gpt-4o"}, True),
    ({"$or": [{"$and": [{"metadata.tier": {"$gte": 3}}, {"metadata.region": "eu"}]},
              {"metadata.user_plan": "enterprise"}]}, True),
]


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_matches(query, expected):
    assert matches(query, CONTEXT) is expected
