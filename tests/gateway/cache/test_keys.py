"""Cache keys: equal for the same request however it is written, apart for anything else."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from starlette.datastructures import Headers

from gateway.cache.keys import cache_key
from gateway.contracts.identity import VirtualKey
from gateway.contracts.plan import Leaf
from gateway.pipeline.dialects.chat import CHAT
from gateway.pipeline.parse import parse_request
from gateway.pipeline.prepare import prepare
from providers import REGISTRY
from providers.base import Endpoint

LEAF = Leaf(path="config", provider="anyscale")
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def key(body: Any = BODY, leaf: Leaf = LEAF, endpoint: Endpoint = Endpoint.CHAT,
        **headers: str) -> str:
    raw = orjson.dumps(body)
    parsed = parse_request(endpoint=endpoint, method="POST", path="chat/completions", query="",
                           headers=Headers(headers), raw_body=raw,
                           body=CHAT.decode(endpoint, raw).body, dialect=CHAT.name,
                           request_id="r", trace_id="t")
    # Keyed by what the upstream is sent: the body after the leaf's override_params.
    sent = prepare(parsed, leaf, REGISTRY[leaf.provider]).body
    return cache_key(parsed, leaf, sent)


def test_same_request_written_differently_shares_a_key():
    reordered = dict(reversed(list(BODY.items())))
    assert key(reordered) == key(BODY)
    assert key(BODY | {"stream": True, "stream_options": {"include_usage": True}}) == key(BODY)
    assert key(BODY, **{"x-portkey-trace-id": "other"}) == key(BODY)
    # What the upstream receives counts, whether the client or the config's override set it.
    assert key(BODY, leaf=dataclasses.replace(LEAF, override_params={"temperature": 1})) \
        == key(BODY | {"temperature": 1})


def test_anything_that_changes_the_answer_or_its_owner_changes_the_key():
    vk = VirtualKey(id="vk-1", slug="team", provider="anyscale", secret="s")
    variants = {
        key(BODY),
        key(BODY | {"temperature": 1}),
        key(BODY | {"model": "other"}),
        key(BODY, endpoint=Endpoint.COMPLETIONS),
        key(BODY, leaf=dataclasses.replace(LEAF, provider="together-ai")),
        key(BODY, leaf=dataclasses.replace(LEAF, custom_host="http://127.0.0.1:9/v1")),
        key(BODY, leaf=dataclasses.replace(LEAF, virtual_key=vk)),
        key(BODY, leaf=dataclasses.replace(LEAF, override_params={"top_p": 0.5})),
        key(BODY, **{"x-portkey-cache-namespace": "a"}),
        key(BODY, **{"x-portkey-cache-namespace": "b"}),
    }
    assert len(variants) == 10
