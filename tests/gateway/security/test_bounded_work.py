"""Attacks 3, 4 and the header half of 6: no request can freeze, bloat or hold the gateway.

A real `python -m gateway serve` process (its own HTTP protocol, gateway/server/http_protocol.py)
and a hostile OpenAI-compatible upstream on 127.0.0.2, set as the base URL of a few providers
so that only the work bounds (not the destination rules) are exercised:

    /slow    a normal answer, held until the test releases it
    /huge    64 MB of JSON without usage, sent in chunks, pausing at 16 MiB until released
    /sized   the same, but declared up front in Content-Length
    /endless an SSE stream whose first line never ends, pausing at 16 MiB until released
    /emoji   an SSE event of one 48 MiB data line of 4-byte characters (12 Mi characters)
    /error   a 500 whose body is 64 MB

While a hostile request is in flight, `/healthz` must answer within 100 ms: the event loop is
free. The upstream bodies are generated chunk by chunk, never held as one object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.errors import UpstreamTooLarge
from gateway.net.eventstream import decode_eventstream
from tests.support.gateway_process import GatewayProcess, gateway_env
from tests.support.servers import ThreadedServer
from tests.support.waiting import wait_until

MiB = 1024 * 1024
HUGE = 64 * MiB
HEADER_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 1.0
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
          "choices": [{"index": 0, "finish_reason": "stop",
                       "message": {"role": "assistant", "content": "ok"}}],
          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
_PREFIX = (b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":'
           b'[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"')
_CHUNK = b"a" * (64 * 1024)
_EMOJI = "\N{GRINNING FACE}".encode() * (16 * 1024)  # 64 KiB, 16 Ki characters


class Hostile:
    """The upstream; `arrived` is set once a request is in (for /huge, at 16 MiB sent)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.sent = 0  # bytes the current test's request was sent
        self._test = 0

    def reset(self) -> None:
        self._test += 1  # a body still being sent from an earlier test counts no more
        self.arrived.clear()
        self.release.clear()
        self.sent = 0

    async def _hold(self) -> None:
        self.arrived.set()
        await asyncio.to_thread(self.release.wait, 30)

    async def _slow(self, request: Request) -> Response:
        await self._hold()
        return JSONResponse(ANSWER)

    async def _body(self, request: Request, prefix: bytes, suffix: bytes,
                    pause_at: int | None, total: int = HUGE,
                    chunk: bytes = _CHUNK) -> AsyncIterator[bytes]:
        test, sent = self._test, len(prefix)
        yield prefix
        while sent < total and not await request.is_disconnected():
            if pause_at is not None and sent >= pause_at and not self.arrived.is_set():
                await self._hold()
            yield chunk
            sent += len(chunk)
            if test == self._test:
                self.sent = sent
        yield suffix

    async def _huge(self, request: Request) -> Response:
        return StreamingResponse(self._body(request, _PREFIX, b'"}}]}', 16 * MiB),
                                 media_type="application/json")

    async def _sized(self, request: Request) -> Response:
        self.arrived.set()
        length = len(_PREFIX) + HUGE + len(b'"}}]}')
        return StreamingResponse(self._body(request, _PREFIX, b'"}}]}', None),
                                 media_type="application/json",
                                 headers={"content-length": str(length)})

    async def _emoji(self, request: Request) -> Response:
        self.arrived.set()
        return StreamingResponse(self._body(request, b"data: ", b"\n\n", None, 48 * MiB, _EMOJI),
                                 media_type="text/event-stream")

    async def _endless(self, request: Request) -> Response:
        return StreamingResponse(self._body(request, b"data: ", b"", 16 * MiB, 4 * HUGE),
                                 media_type="text/event-stream")

    async def _error(self, request: Request) -> Response:
        self.arrived.set()
        return StreamingResponse(self._body(request, b"boom ", b"", None), status_code=500,
                                 media_type="text/plain")

    def app(self) -> Starlette:
        paths = {"slow": self._slow, "huge": self._huge, "sized": self._sized,
                 "endless": self._endless, "error": self._error, "emoji": self._emoji}
        return Starlette(routes=[Route(f"/{name}/v1/chat/completions", handler, methods=["POST"])
                                 for name, handler in paths.items()])


# Which provider reaches which hostile path (each is OpenAI-compatible).
PROVIDERS = {"together-ai": "slow", "openai": "huge", "anyscale": "sized", "groq": "endless",
             "fireworks-ai": "error", "deepinfra": "emoji"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Hostile, ThreadedServer]]:
    hostile = Hostile()
    with ThreadedServer(hostile.app(), host="127.0.0.2") as server:
        yield hostile, server


@pytest.fixture
def hostile(upstream: tuple[Hostile, ThreadedServer]) -> Iterator[Hostile]:
    upstream[0].reset()
    yield upstream[0]
    upstream[0].release.set()  # never leave a handler waiting


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory,
            upstream: tuple[Hostile, ThreadedServer]) -> Iterator[GatewayProcess]:
    tmp: Path = tmp_path_factory.mktemp("bounded")
    url = upstream[1].url
    env = gateway_env(
        tmp, f"{url}/slow",
        GATEWAY_PROVIDER_BASE_URLS=json.dumps(
            {slug: f"{url}/{path}/v1" for slug, path in PROVIDERS.items()}),
        GATEWAY_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S), GATEWAY_KEEP_ALIVE_S=str(KEEP_ALIVE_S))
    process = GatewayProcess(env, cwd=tmp).start()
    yield process
    process.stop()


def _headers(provider: str, **extra: str) -> dict[str, str]:
    return {"x-portkey-provider": provider, "authorization": "Bearer sk-test", **extra}


class InFlight:
    """One request to the gateway, sent from a thread; `rss` samples the gateway meanwhile."""

    def __init__(self, gateway: GatewayProcess, headers: dict[str, str],
                 body: dict[str, Any] | None = None) -> None:
        self.gateway = gateway
        self.response: httpx.Response | None = None
        self.error: BaseException | None = None
        self.rss_peak_kib = 0
        self._done = threading.Event()
        self._request = threading.Thread(target=self._send, args=(headers, body or BODY))
        self._sampler = threading.Thread(target=self._sample)

    def __enter__(self) -> InFlight:
        self._sampler.start()
        self._request.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._request.join(60)
        self._done.set()
        self._sampler.join(10)

    def _send(self, headers: dict[str, str], body: dict[str, Any]) -> None:
        try:
            self.response = httpx.post(f"{self.gateway.url}/v1/chat/completions", json=body,
                                       headers=headers, timeout=60)
        except BaseException as exc:  # surfaced by the test's assertions
            self.error = exc
        finally:
            self._done.set()

    def _sample(self) -> None:
        assert self.gateway.process is not None
        status = Path(f"/proc/{self.gateway.process.pid}/status")
        while not self._done.wait(0.01):
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.rss_peak_kib = max(self.rss_peak_kib, int(line.split()[1]))


# Timed in a process of its own: in this one, a flood's sender threads hold the GIL the
# probe needs to read its answer (with four of them, tens of milliseconds a probe on a slow
# machine, which is the test's own cost, not the gateway's).
_PROBE = """
import sys, time, httpx
took = []
for _ in range(int(sys.argv[2])):
    with httpx.Client(timeout=10) as client:  # a fresh connection each (its connect is timed)
        started = time.perf_counter()
        status = client.get(sys.argv[1] + "/healthz").status_code
        took.append(time.perf_counter() - started)
    assert status == 200, status
print(*sorted(took))
"""


def healthz_latencies(gateway: GatewayProcess, probes: int = 5) -> list[float]:
    """Seconds each of a few /healthz calls took, on fresh connections, sorted."""
    probed = subprocess.run([sys.executable, "-c", _PROBE, gateway.url, str(probes)],
                            capture_output=True, text=True, timeout=120, check=True)
    return [float(seconds) for seconds in probed.stdout.split()]


def assert_loop_free(gateway: GatewayProcess) -> None:
    # The median of five: two hiccups of a busy CI machine are forgiven, a loop blocked for
    # the hostile request's work (seconds, or in bursts over most of the probes) is not.
    took = healthz_latencies(gateway)
    assert took[2] < 0.1, f"/healthz took {took}"


# --- attack 3: a catastrophic regex --------------------------------------------------------

def _conditional(pattern: str) -> str:
    target = {"provider": "together-ai", "api_key": "sk-test"}
    return json.dumps({
        "strategy": {"mode": "conditional", "default": "plain",
                     "conditions": [{"query": {"metadata.user": {"$regex": pattern}},
                                     "then": "matched"}]},
        "targets": [target | {"name": "matched"}, target | {"name": "plain"}]})


def test_a_backtracking_regex_runs_in_linear_time(gateway: GatewayProcess,
                                                  hostile: Hostile) -> None:
    headers = {"x-portkey-config": _conditional("^(a+)+$"),
               "x-portkey-metadata": json.dumps({"user": "a" * 40 + "!"})}
    with InFlight(gateway, headers) as call:
        # With a backtracking engine the route is never chosen, so the upstream never hears.
        assert wait_until(hostile.arrived.is_set, timeout=10), "the regex froze the gateway"
        assert_loop_free(gateway)
        hostile.release.set()
    assert call.error is None and call.response is not None
    assert call.response.status_code == 200, call.response.text


def _on_content(pattern: str) -> str:
    config = json.loads(_conditional(pattern))
    query = config["strategy"]["conditions"][0]["query"]
    query["params.messages.0.content"] = query.pop("metadata.user")
    return json.dumps(config)


def _message(content: str) -> dict[str, Any]:
    return BODY | {"messages": [{"role": "user", "content": content}]}


def test_a_regex_with_a_huge_program_is_refused_before_it_runs(gateway: GatewayProcess,
                                                               hostile: Hostile) -> None:
    # 24 characters, 10,004 RE2 instructions: linear, but ~14 s on this 240 KB message.
    headers = {"x-portkey-config": _on_content("(a|aa|aaa|aaaa){1,1000}b")}
    with InFlight(gateway, headers, _message("a" * 240_000)) as call:
        assert_loop_free(gateway)
    assert call.error is None and call.response is not None
    assert call.response.status_code == 400, call.response.text
    message = call.response.json()["error"]["message"]
    assert "query.params.messages.0.content.$regex" in message
    assert "10004 RE2 instructions; the limit is 200" in message
    assert not hostile.arrived.is_set()


def test_the_worst_accepted_regex_on_a_huge_message_leaves_the_loop_free(
        gateway: GatewayProcess, hostile: Hostile) -> None:
    # A new DFA state at every byte, at the largest program accepted: only the message's
    # first bytes are matched (safe_regex.MAX_SEARCH_BYTES), so milliseconds, not seconds.
    rng = random.Random(22)
    content = "".join(rng.choice("ab") for _ in range(240_000))
    headers = {"x-portkey-config": _on_content("[ab]*a[ab]{193}c")}
    for _ in range(3):  # each with its own DFA states: the pattern's cache is no help
        with InFlight(gateway, headers, _message(content)) as call:
            assert wait_until(hostile.arrived.is_set, timeout=10), "the regex held the loop"
            assert_loop_free(gateway)
            hostile.release.set()
        assert call.error is None and call.response is not None
        assert call.response.status_code == 200, call.response.text
        hostile.reset()
        content = "".join(rng.choice("ab") for _ in range(240_000))


@pytest.mark.parametrize(("pattern", "reason"), [
    (r"^(a)\1$", "RE2"),            # a backreference
    (r"^(?=a)a", "RE2"),            # a lookahead
    ("a" * 1001, "limit is 1000"),  # too long
])
def test_a_regex_re2_cannot_run_is_refused_naming_where(gateway: GatewayProcess,
                                                         hostile: Hostile, pattern: str,
                                                         reason: str) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY, timeout=10,
                          headers={"x-portkey-config": _conditional(pattern)})
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "strategy.conditions[0].query.metadata.user.$regex" in message and reason in message
    assert not hostile.arrived.is_set()


# --- attack 6: fan-out ---------------------------------------------------------------------

def test_10000_target_configs_are_refused_by_count_with_the_loop_free(
        gateway: GatewayProcess, hostile: Hostile) -> None:
    # Targets as small as JSON allows, so the config fits the head limit and reaches the
    # config validator (a longer one is a 431 before the app sees it).
    config = json.dumps({"strategy": {"mode": "fallback"}, "targets": [{}] * 10_000},
                        separators=(",", ":"))
    answers: list[httpx.Response] = []
    stop = threading.Event()

    def flood() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                answers.append(client.post(f"{gateway.url}/v1/chat/completions", json=BODY,
                                           headers=_headers("together-ai") | {
                                               "x-portkey-config": config}))

    senders = [threading.Thread(target=flood) for _ in range(4)]
    for sender in senders:
        sender.start()
    try:
        assert wait_until(lambda: len(answers) >= 8, timeout=30), "no answer to the flood"
        assert_loop_free(gateway)
    finally:
        stop.set()
        for sender in senders:
            sender.join(30)
    assert {a.status_code for a in answers} == {400}
    error = answers[0].json()["error"]
    assert error["code"] == "config_too_large" and "targets" in error["message"], error
    assert not hostile.arrived.is_set()


# --- attack 4: huge upstream answers --------------------------------------------------------

def test_a_64_mb_answer_is_cut_at_the_cap_with_memory_and_loop_to_spare(
        gateway: GatewayProcess, hostile: Hostile) -> None:
    with InFlight(gateway, _headers("openai")) as call:
        assert wait_until(hostile.arrived.is_set, timeout=20), "the upstream was never asked"
        assert_loop_free(gateway)  # 16 MiB in, the gateway still serves others
        hostile.release.set()
    assert call.error is None and call.response is not None
    assert call.response.status_code == 502, call.response.text
    error = call.response.json()["error"]
    assert error["code"] == "upstream_body_too_large"
    assert str(32 * MiB) in error["message"]
    assert call.rss_peak_kib and call.rss_peak_kib < 300 * 1024, f"{call.rss_peak_kib} KiB"
    assert hostile.sent < HUGE  # the gateway stopped reading
    assert_loop_free(gateway)


def test_a_declared_oversized_answer_is_refused_unread(gateway: GatewayProcess,
                                                       hostile: Hostile) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY, timeout=30,
                          headers=_headers("anyscale"))
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "upstream_body_too_large"
    assert hostile.sent < 16 * MiB


def test_an_endless_sse_line_is_cut_at_the_cap(gateway: GatewayProcess,
                                               hostile: Hostile) -> None:
    with InFlight(gateway, _headers("groq"), BODY | {"stream": True}) as call:
        assert wait_until(hostile.arrived.is_set, timeout=20)
        assert_loop_free(gateway)  # 16 MiB of one line in, the gateway still serves others
        hostile.release.set()
    assert call.error is None and call.response is not None
    # The line never ended, so no event reached the client: the error is still a status.
    assert call.response.status_code == 502, call.response.text
    assert call.response.json()["error"]["code"] == "upstream_body_too_large"
    assert call.rss_peak_kib < 300 * 1024, f"{call.rss_peak_kib} KiB"
    assert hostile.sent < 2 * HUGE


def test_an_sse_line_of_4_byte_characters_is_cut_at_the_cap_in_bytes(
        gateway: GatewayProcess, hostile: Hostile) -> None:
    # 48 MiB of one data line, 12 Mi characters: under a cap counted in characters (32 Mi),
    # it was relayed whole and the worker grew by 660 MB.
    with InFlight(gateway, _headers("deepinfra"), BODY | {"stream": True}) as call:
        assert wait_until(hostile.arrived.is_set, timeout=20)
        assert_loop_free(gateway)
    assert call.error is None and call.response is not None
    assert call.response.status_code == 502, call.response.text[:300]
    error = call.response.json()["error"]
    assert error["code"] == "upstream_body_too_large"
    assert f"longer than {32 * MiB} bytes" in error["message"]
    assert call.rss_peak_kib < 300 * 1024, f"{call.rss_peak_kib} KiB"
    assert hostile.sent < 48 * MiB  # the gateway stopped reading at the cap


def test_a_huge_error_body_is_truncated_not_read_whole(gateway: GatewayProcess,
                                                       hostile: Hostile) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY, timeout=30,
                          headers=_headers("fireworks-ai"))
    assert response.status_code == 500, response.text[:300]
    assert "boom" in response.text
    assert len(response.content) < 2 * MiB  # the error cap is 1 MiB
    assert hostile.sent < HUGE


async def test_an_oversized_event_stream_frame_is_refused_from_its_prelude() -> None:
    # A Bedrock frame declaring 100 MB: refused from its 12-byte prelude, nothing awaited.
    prelude = struct.pack(">II", 100 * 1000 * 1000, 0)
    prelude += struct.pack(">I", zlib.crc32(prelude))

    async def chunks() -> AsyncIterator[bytes]:
        yield prelude
        raise AssertionError("the decoder waited for the frame's body")

    with pytest.raises(UpstreamTooLarge, match="100000000 bytes"):
        async for _ in decode_eventstream(chunks(), 32 * MiB):
            pass


# --- attack 6, headers: size, count and time -----------------------------------------------

def raw_exchange(gateway: GatewayProcess, data: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes, then read until the gateway closes the connection."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=timeout) as sock:
        # Closed on us mid-send: what it answered is still to be read.
        with contextlib.suppress(OSError):
            sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def _head(*headers: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nhost: gw\r\n" + b"".join(headers)


def test_an_8_mb_header_gets_431(gateway: GatewayProcess) -> None:
    answer = raw_exchange(gateway, _head(b"x-big: " + b"a" * 8_000_000 + b"\r\n", b"\r\n"))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"131072 bytes" in answer
    assert_loop_free(gateway)


def test_10000_headers_get_431(gateway: GatewayProcess) -> None:
    many = [b"x-h%d: v\r\n" % i for i in range(10_000)]
    answer = raw_exchange(gateway, _head(*many, b"\r\n"))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"more than 100 headers" in answer


def test_ordinary_heads_pass(gateway: GatewayProcess) -> None:
    headers = {f"x-extra-{i}": "v" * 200 for i in range(90)}
    assert httpx.get(f"{gateway.url}/healthz", headers=headers, timeout=10).status_code == 200


def test_a_half_sent_head_is_closed_after_the_header_timeout(gateway: GatewayProcess) -> None:
    started = time.monotonic()
    answer = raw_exchange(gateway, b"GET /healthz HTTP/1.1\r\nhost: gw\r\nx-half: ")
    took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert HEADER_TIMEOUT_S * 0.9 <= took < HEADER_TIMEOUT_S + 3


def test_a_silent_connection_is_closed_after_the_header_timeout(
        gateway: GatewayProcess) -> None:
    started = time.monotonic()
    raw_exchange(gateway, b"")
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 3


def test_an_idle_keep_alive_connection_is_closed(gateway: GatewayProcess) -> None:
    started = time.monotonic()
    answer = raw_exchange(gateway, _head(b"\r\n"))  # keep-alive: the gateway closes it
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1") == 1
    assert time.monotonic() - started < KEEP_ALIVE_S + 3
