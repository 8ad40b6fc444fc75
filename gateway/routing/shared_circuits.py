"""Circuit-breaker state shared by every replica through Redis (GATEWAY_CIRCUIT_SHARED).

The request path never waits for Redis: `Breakers.is_open` reads its own dict, and what a
process sees goes to Redis in background tasks. A tripping failure is added to the target's
failure log (a sorted set on Redis's clock); when the log holds `threshold` failures younger
than `window_s`, the script opens the circuit for everyone: it writes the end of the cool-down
to one hash and publishes `open <ms> <target>`, and every replica (this one too) `adopt`s it.
A success on a target this process saw failing clears the shared log, and closes the circuit
for everyone when it was open (`close <target>`), as a success closes it in one process.

A replica that (re)subscribes reads the hash, so an opening it missed still reaches it. While
Redis is away each process counts and opens on its own, as without the setting: the local
breakers always run, so sharing only ever opens a circuit sooner.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any

from gateway.db.redis_bus import MAX_PENDING, RedisBus
from gateway.db.redis_link import RedisLink, StoreUnavailable
from gateway.routing.breaker import Breakers

CHANNEL = "circuits"

# Milliseconds on Redis's clock, so replicas need not agree on the time.
_NOW = """
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: failure log, open hash. ARGV: target, threshold, window ms, cool-down ms, member, channel.
_FAILED = _NOW + """
local target, threshold = ARGV[1], tonumber(ARGV[2])
local window, cooldown = tonumber(ARGV[3]), tonumber(ARGV[4])
if tonumber(redis.call("HGET", KEYS[2], target) or "0") > now then return 0 end
redis.call("ZADD", KEYS[1], now, ARGV[5])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now - window)
redis.call("PEXPIRE", KEYS[1], window)
if redis.call("ZCARD", KEYS[1]) < threshold then return 0 end
redis.call("DEL", KEYS[1])
local open = redis.call("HGETALL", KEYS[2])
for i = 1, #open, 2 do
  if tonumber(open[i + 1]) <= now then redis.call("HDEL", KEYS[2], open[i]) end
end
redis.call("HSET", KEYS[2], target, now + cooldown)
if redis.call("PTTL", KEYS[2]) < cooldown then redis.call("PEXPIRE", KEYS[2], cooldown) end
redis.call("PUBLISH", ARGV[6], "open " .. cooldown .. " " .. target)
return 1
"""

# KEYS: failure log, open hash. ARGV: target, channel.
_SUCCEEDED = _NOW + """
redis.call("DEL", KEYS[1])
local open_until = tonumber(redis.call("HGET", KEYS[2], ARGV[1]) or "0")
if redis.call("HDEL", KEYS[2], ARGV[1]) == 1 and open_until > now then
  redis.call("PUBLISH", ARGV[2], "close " .. ARGV[1])
end
return 0
"""

# KEYS: open hash. Returns target, milliseconds left, ... for the circuits open now.
_OPEN_NOW = _NOW + """
local open, found = redis.call("HGETALL", KEYS[1]), {}
for i = 1, #open, 2 do
  local left = tonumber(open[i + 1]) - now
  if left > 0 then
    found[#found + 1] = open[i]
    found[#found + 1] = tostring(left)
  end
end
return found
"""


class SharedCircuits:
    """The `Shared` sink of a `Breakers`; subscribes to the circuits channel of `bus`."""

    def __init__(self, breakers: Breakers, link: RedisLink, bus: RedisBus) -> None:
        self.breakers = breakers
        self.link = link
        self.bus = bus
        # A hash tag keeps the keys of one script in one slot on a Redis Cluster.
        self._open_key = f"{link.prefix}{{circuits}}:open"
        self._failures_prefix = f"{link.prefix}{{circuits}}:failures:"
        self._channel = bus.channel(CHANNEL)
        self._failed = link.client.register_script(_FAILED)
        self._succeeded = link.client.register_script(_SUCCEEDED)
        self._open_now = link.client.register_script(_OPEN_NOW)
        self._tasks: set[asyncio.Task[None]] = set()
        # Counters for metrics and tests.
        self.sent = 0
        self.unsent = 0  # Redis away, or too many reports in flight
        bus.subscribe(CHANNEL, self.on_message, self.resync)
        breakers.shared = self

    def failed(self, key: str) -> None:
        b = self.breakers
        args: list[str | int] = [key, b.threshold, round(b.window_s * 1000),
                                 round(b.cooldown_s * 1000), uuid.uuid4().hex, self._channel]
        self._send(self._failed(keys=[self._failures_prefix + key, self._open_key], args=args))

    def succeeded(self, key: str) -> None:
        self._send(self._succeeded(keys=[self._failures_prefix + key, self._open_key],
                                   args=[key, self._channel]))

    def _send(self, call: Coroutine[Any, Any, Any]) -> None:
        if len(self._tasks) >= MAX_PENDING:
            call.close()
            self.unsent += 1
            return
        task = asyncio.get_running_loop().create_task(self._run(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: Coroutine[Any, Any, Any]) -> None:
        try:
            await self.link.run(lambda _: call)
        except StoreUnavailable:
            self.unsent += 1  # the link logged it once; this process counts alone meanwhile
        else:
            self.sent += 1
        finally:
            call.close()  # never awaited when the link was paused

    def on_message(self, message: str) -> None:
        verb, _, rest = message.partition(" ")
        if verb == "open":
            ms, _, key = rest.partition(" ")
            self.breakers.adopt(key, int(ms) / 1000)
        elif verb == "close":
            self.breakers.forget(rest)

    async def resync(self) -> None:
        """The circuits open now, for a replica that was not listening when they opened."""
        found = await self.link.run(lambda _: self._open_now(keys=[self._open_key]))
        for key, left in zip(found[::2], found[1::2], strict=True):
            self.breakers.adopt(key.decode(), int(left) / 1000)

    async def drain(self) -> None:
        """Let reports in flight reach Redis (shutdown, and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
