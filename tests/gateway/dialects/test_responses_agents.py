"""The OpenAI Agents SDK (`openai-agents`) running an agent with one function tool through the
gateway's `/v1/responses`, streamed and not, to a chat-only upstream (the mock asks for the
tool once, then answers). Tracing is off: nothing leaves loopback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agents import (
    Agent,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from tests.support.mock_upstream import STREAM_WORDS, TOOL_CALL, MockUpstream
from tests.support.servers import ThreadedServer


@pytest.fixture(autouse=True)
def no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    set_tracing_disabled(True)


def weather_agent(gateway: ThreadedServer, mock_url: str,
                  calls: list[dict[str, Any]]) -> Agent[Any]:
    @function_tool(name_override=TOOL_CALL[0])
    def get_weather(city: str, unit: str) -> str:
        """The weather in a city."""
        calls.append({"city": city, "unit": unit})
        return f"18 degrees {unit} in {city}"

    openai_client = AsyncOpenAI(
        api_key="sk-provider-key", base_url=f"{gateway.url}/v1", max_retries=0,
        default_headers={"x-portkey-provider": "anyscale",
                         "x-portkey-custom-host": f"{mock_url}/s/tool-once/v1"})
    return Agent(name="weather", instructions="Answer with the weather.",
                 tools=[get_weather],
                 model=OpenAIResponsesModel(model="mock-model", openai_client=openai_client))


def check_the_round_trip(mock: MockUpstream, calls: list[dict[str, Any]]) -> None:
    assert calls == [json.loads("".join(TOOL_CALL[1]))]
    first, second = mock.requests
    assert first.body["tools"][0]["function"]["name"] == TOOL_CALL[0]
    assert first.body["messages"][0] == {"role": "system", "content": "Answer with the weather."}
    tool_result = second.body["messages"][-1]
    assert tool_result["role"] == "tool" and tool_result["tool_call_id"] == "call_mock"
    assert tool_result["content"] == "18 degrees celsius in Paris"


async def test_agent_with_a_function_tool(gateway: ThreadedServer, mock: MockUpstream,
                                          mock_url: str):
    calls: list[dict[str, Any]] = []
    result = await Runner.run(weather_agent(gateway, mock_url, calls), "Weather in Paris?",
                              run_config=RunConfig(tracing_disabled=True))
    assert result.final_output == "".join(STREAM_WORDS)
    check_the_round_trip(mock, calls)
    assert all(not r.body.get("stream") for r in mock.requests)


async def test_agent_with_a_function_tool_streamed(gateway: ThreadedServer, mock: MockUpstream,
                                                   mock_url: str):
    calls: list[dict[str, Any]] = []
    result = Runner.run_streamed(weather_agent(gateway, mock_url, calls), "Weather in Paris?",
                                 run_config=RunConfig(tracing_disabled=True))
    kinds = [event.type async for event in result.stream_events()]
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert result.final_output == "".join(STREAM_WORDS)
    check_the_round_trip(mock, calls)
    assert all(r.body.get("stream") for r in mock.requests)
