"""What replicas tell each other through Redis pub/sub: one subscription per process.

A feature names a channel, a handler for its messages and a `resync` to catch up with. Pub/sub
delivers at most once and only to connected subscribers, so whenever the subscription is made
(at start, and again after Redis or the connection was lost) every `resync` runs once it is in
place: a feature reloads the state it keeps in Redis, or drops what it may have missed. While
the subscription is down the features keep working on their own (log once, retry every
`redis_retry_interval`); publishing never blocks a request and never fails one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.db.redis_link import RedisLink, StoreUnavailable

log = logging.getLogger("gateway.redis")

MAX_PENDING = 256  # publishes in flight; past it a message is dropped (and counted)


@dataclass(frozen=True, slots=True)
class _Channel:
    on_message: Callable[[str], None]
    resync: Callable[[], Awaitable[None]] | None


class RedisBus:
    def __init__(self, link: RedisLink, retry_interval: float, ping_interval: float = 5.0,
                 poll_s: float = 1.0) -> None:
        from redis.exceptions import RedisError

        self.link = link
        self.retry_interval = retry_interval
        self.ping_interval = ping_interval
        self.poll_s = poll_s
        self._failures = (RedisError, OSError, TimeoutError, StoreUnavailable)
        self._channels: dict[str, _Channel] = {}
        self._task: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        self.subscribed = asyncio.Event()  # set while the subscription is in place
        # Counters for metrics and tests.
        self.received = 0
        self.published = 0
        self.publish_failures = 0
        self.dropped = 0
        self.resubscribed = 0

    def channel(self, name: str) -> str:
        return f"{self.link.prefix}{name}"

    def subscribe(self, name: str, on_message: Callable[[str], None],
                  resync: Callable[[], Awaitable[None]] | None = None) -> None:
        """Call before `start`. `on_message` runs on the event loop: it must not block."""
        self._channels[self.channel(name)] = _Channel(on_message, resync)

    def publish(self, name: str, message: str) -> None:
        """Send in the background (every replica gets it, this one included)."""
        if len(self._publishing) >= MAX_PENDING:
            self.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._publish(self.channel(name), message))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _publish(self, channel: str, message: str) -> None:
        try:
            await self.link.run(lambda client: client.publish(channel, message))
        except StoreUnavailable:
            self.publish_failures += 1  # the link logged it; replicas fall back on their own
        else:
            self.published += 1

    def start(self) -> None:
        if self._channels and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Let publishes in flight go out (an admin write's), then unsubscribe."""
        if self._publishing:
            await asyncio.wait(list(self._publishing), timeout=self.link.retry_interval + 1)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        lost = False
        while True:
            try:
                await self._listen(lost)
            except self._failures as exc:
                if not lost:
                    log.warning("redis pub/sub lost (%s): circuits and key revocations are "
                                "per process until it is back; retrying every %ss",
                                type(exc).__name__, self.retry_interval)
                lost = True
            except Exception:  # a bug must not end the subscription for good
                log.exception("redis pub/sub failed")
                lost = True
            self.subscribed.clear()
            await asyncio.sleep(self.retry_interval)

    async def _listen(self, lost: bool) -> None:
        client = self.link.subscriber or self.link.client
        pubsub: Any = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*self._channels)
            for channel in self._channels.values():  # subscribed first: nothing falls between
                if channel.resync is not None:
                    await channel.resync()
            if lost:
                self.resubscribed += 1
                log.warning("redis pub/sub back: circuits and key revocations shared again")
            self.subscribed.set()
            await self._receive(pubsub)
        finally:
            await asyncio.shield(pubsub.aclose())

    async def _receive(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        heard = pinged = loop.time()
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True,
                                               timeout=self.poll_s)
            now = loop.time()
            if message is not None:
                heard = now
                if message["type"] == "message":
                    self._dispatch(message["channel"], message["data"])
            if now - heard > 3 * self.ping_interval:
                # A connection that silently died (no reset) answers nothing: start again.
                raise ConnectionError("no answer to pub/sub pings")
            if now - pinged >= self.ping_interval:
                pinged = now
                await pubsub.ping()

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        handler = self._channels.get(channel.decode())
        if handler is None:
            return
        self.received += 1
        try:
            handler.on_message(data.decode())
        except Exception:  # one bad message must not end the subscription
            log.exception("redis pub/sub: could not handle a message on %s", channel.decode())
