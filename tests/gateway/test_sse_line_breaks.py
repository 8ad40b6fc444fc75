"""SSE lines end only at CR, LF or CRLF: model text may hold other Unicode line breaks."""

from __future__ import annotations

import orjson
import pytest

from gateway.net.sse import SSEDecoder

# Characters str.splitlines treats as line ends; JSON encoders leave the last three unescaped.
UNICODE_BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", UNICODE_BREAKS)
def test_unicode_line_breaks_stay_inside_the_event(char: str):
    payload = orjson.dumps({"text": f"a{char}b"}).decode()
    decoder = SSEDecoder()
    events = decoder.feed(f"data: {payload[:5]}") + decoder.feed(f"{payload[5:]}\n\n")
    assert [orjson.loads(e.data) for e in events] == [{"text": f"a{char}b"}]


def test_crlf_split_across_chunks_is_one_line_end():
    decoder = SSEDecoder()
    events = decoder.feed("data: a\r") + decoder.feed("\n\r") + decoder.feed("\n")
    events += decoder.feed("data: b\n") + decoder.feed("\n")
    assert [e.data for e in events] == ["a", "b"]
