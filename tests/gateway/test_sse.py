"""The SSE decoder: events from arbitrary network chunk boundaries."""

from __future__ import annotations

from gateway.net.sse import DONE, decode_stream, encode


async def chunks(*parts: bytes):
    for part in parts:
        yield part


async def events(*parts: bytes) -> list[tuple[str, str]]:
    return [(e.event, e.data) async for e in decode_stream(chunks(*parts))]


async def test_events_split_anywhere_even_inside_a_character():
    text = "data: {\"content\": \"héllo ☃\"}\n\n".encode()
    cut = text.index("☃".encode()) + 1  # in the middle of the snowman's three bytes
    assert await events(text[:5], text[5:cut], text[cut:]) == [("", '{"content": "héllo ☃"}')]


async def test_crlf_comments_event_names_and_multiline_data():
    raw = b": keep-alive\r\nevent: message_start\r\ndata: a\r\ndata: b\r\n\r\ndata: [DONE]\r\n\r\n"
    assert await events(raw[:17], raw[17:40], raw[40:]) == [
        ("message_start", "a\nb"), ("", "[DONE]")]


async def test_a_last_event_without_its_blank_line_is_still_delivered():
    assert await events(b"data: tail") == [("", "tail")]


def test_encoding():
    assert encode({"a": 1}) == b'data: {"a":1}\n\n'
    assert DONE == b"data: [DONE]\n\n"
