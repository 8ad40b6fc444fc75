"""The usage the gateway records for translated answers, streamed or not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai

from tests.support.fixture_upstream import FixtureUpstream, Reply
from tests.support.recording import add_recorder
from tests.support.servers import ThreadedServer
from tests.support.waiting import wait_until

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_usage_recorded_with_cache_tokens_even_when_the_client_hides_it(
        start_gateway: Callable[..., ThreadedServer]) -> None:
    fake = FixtureUpstream()
    with ThreadedServer(fake.app()) as upstream:
        gateway = start_gateway(provider_base_urls={"anthropic": f"{upstream.url}/anthropic"})
        recorded: list[Any] = []
        add_recorder(gateway, recorded.append)
        folder = FIXTURES / "anthropic" / "text"
        request = json.loads((folder / "case.json").read_text())["request"]
        sdk = openai.OpenAI(api_key="k", base_url=f"{gateway.url}/v1", max_retries=0,
                            default_headers={"x-portkey-provider": "anthropic"})
        fake.reply = Reply((folder / "response.json").read_bytes())
        sdk.chat.completions.create(**request)
        fake.reply = Reply((folder / "stream.sse").read_bytes(), stream=True,
                           content_type="text/event-stream")
        chunks = list(sdk.chat.completions.create(**request, stream=True))
        # The relay records once its response is over, just after the client saw the end.
        wait_until(lambda: len(recorded) >= 2)
    assert all(chunk.usage is None for chunk in chunks)  # the client did not ask
    assert [ctx.usage["prompt_tokens"] for ctx in recorded] == [2060, 2060]
    assert [ctx.usage["prompt_tokens_details"]["cached_tokens"] for ctx in recorded] == [
        2048, 2048]
