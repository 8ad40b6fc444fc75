"""Where limit counters live. Both stores admit a request all-or-nothing: every check passes
and then every entry is taken, or nothing is taken (a request refused for concurrency does
not use up its requests-per-minute)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from gateway.db.redis_link import RedisLink
from gateway.limits.checks import Add, Check

if TYPE_CHECKING:
    from redis.asyncio import Redis

# (index of the first failing check or None, seconds until it may pass or None)
Verdict = tuple[int | None, float | None]


class Counters(Protocol):
    async def admit(self, checks: Sequence[Check], now: float, member: str) -> Verdict: ...

    async def settle(self, member: str, slots: Sequence[str], adds: Sequence[Add],
                     now: float) -> None: ...

    async def peek(self, checks: Sequence[Check], now: float) -> list[float]:
        """What each check's counter holds now (entries in the window, slots, level)."""
        ...


# KEYS: one per check. ARGV: now, member, then kind, limit, window for each check.
# Numbers go back as strings: Redis would truncate a Lua float reply to an integer.
_ADMIT = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
for i = 1, #KEYS do
  local kind, limit, window = ARGV[3 * i], tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local key = KEYS[i]
  if kind == "log" then
    redis.call("ZREMRANGEBYSCORE", key, "-inf", now - window)
    if redis.call("ZCARD", key) >= limit then
      local oldest = redis.call("ZRANGE", key, 0, 0, "WITHSCORES")
      return {i, tostring(tonumber(oldest[2]) + window - now)}
    end
  elseif kind == "slot" then
    redis.call("ZREMRANGEBYSCORE", key, "-inf", now)
    if redis.call("ZCARD", key) >= limit then return {i, ""} end
  elseif tonumber(redis.call("GET", key) or "0") >= limit then
    return {i, ""}
  end
end
for i = 1, #KEYS do
  local kind, window = ARGV[3 * i], tonumber(ARGV[3 * i + 2])
  if kind == "log" then
    redis.call("ZADD", KEYS[i], now, member)
    redis.call("EXPIRE", KEYS[i], math.ceil(window) + 1)
  elseif kind == "slot" then
    redis.call("ZADD", KEYS[i], now + window, member)
    redis.call("EXPIRE", KEYS[i], math.ceil(window) + 1)
  end
end
return {0, ""}
"""


class RedisCounters:
    """Counters shared by every gateway process using the same Redis and prefix."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._admit = link.client.register_script(_ADMIT)

    async def admit(self, checks: Sequence[Check], now: float, member: str) -> Verdict:
        args: list[Any] = [repr(now), member]
        for check in checks:
            args += [check.kind, repr(float(check.limit)), repr(float(check.window))]
        keys = [check.key for check in checks]
        index, retry = await self.link.run(lambda _: self._admit(keys=keys, args=args))
        if int(index) == 0:
            return None, None
        return int(index) - 1, float(retry) if retry else None

    async def settle(self, member: str, slots: Sequence[str], adds: Sequence[Add],
                     now: float) -> None:
        async def send(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                for key in slots:
                    pipe.zrem(key, member)
                for add in adds:
                    if float(add.amount).is_integer():
                        pipe.incrby(add.key, int(add.amount))
                    else:
                        pipe.incrbyfloat(add.key, add.amount)
                    if add.ttl is not None:
                        pipe.expire(add.key, add.ttl)
                await pipe.execute()

        if slots or adds:
            await self.link.run(send)


    async def peek(self, checks: Sequence[Check], now: float) -> list[float]:
        async def read(client: Redis) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for check in checks:
                if check.kind == "log":
                    pipe.zcount(check.key, f"({now - check.window!r}", "+inf")
                elif check.kind == "slot":
                    pipe.zcount(check.key, f"({now!r}", "+inf")
                else:
                    pipe.get(check.key)
            return list(await pipe.execute())
        values = await self.link.run(read)
        return [float(value or 0) for value in values]


class MemoryCounters:
    """The same checks for one process, when no Redis is configured."""

    def __init__(self) -> None:
        self._logs: dict[str, deque[float]] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._levels: dict[str, tuple[float, float]] = {}  # key -> (amount, expires at)
        self._settled = 0

    async def admit(self, checks: Sequence[Check], now: float, member: str) -> Verdict:
        for index, check in enumerate(checks):
            verdict = self._check(check, now)
            if verdict is not None:
                return index, verdict if verdict >= 0 else None
        for check in checks:
            if check.kind == "log":
                self._logs.setdefault(check.key, deque()).append(now)
            elif check.kind == "slot":
                self._slots.setdefault(check.key, {})[member] = now + check.window
        return None, None

    def _check(self, check: Check, now: float) -> float | None:
        """None when it passes, else seconds to wait (-1 when unknown)."""
        if check.kind == "log":
            log = self._logs.get(check.key)
            while log and log[0] <= now - check.window:
                log.popleft()
            if log and len(log) >= check.limit:
                return log[0] + check.window - now
            return -1.0 if check.limit <= 0 else None
        if check.kind == "slot":
            slots = self._slots.get(check.key, {})
            for expired in [m for m, until in slots.items() if until <= now]:
                del slots[expired]
            return -1.0 if len(slots) >= check.limit else None
        return -1.0 if self._level(check.key, now) >= check.limit else None

    def _level(self, key: str, now: float) -> float:
        amount, expires = self._levels.get(key, (0.0, math.inf))
        if expires <= now:
            del self._levels[key]
            return 0.0
        return amount

    async def settle(self, member: str, slots: Sequence[str], adds: Sequence[Add],
                     now: float) -> None:
        for key in slots:
            held = self._slots.get(key)
            if held is not None:
                held.pop(member, None)
                if not held:
                    del self._slots[key]
        for add in adds:
            amount = self._level(add.key, now) + add.amount
            expires = now + add.ttl if add.ttl is not None else math.inf
            self._levels[add.key] = (amount, expires)
        self._settled += 1
        if self._settled % 1000 == 0:  # counters of past minutes nobody reads again
            for key in [k for k, (_, until) in self._levels.items() if until <= now]:
                del self._levels[key]

    async def peek(self, checks: Sequence[Check], now: float) -> list[float]:
        values: list[float] = []
        for check in checks:
            if check.kind == "log":
                values.append(float(sum(1 for t in self._logs.get(check.key, ())
                                        if t > now - check.window)))
            elif check.kind == "slot":
                slots = self._slots.get(check.key, {})
                values.append(float(sum(1 for until in slots.values() if until > now)))
            else:
                values.append(self._level(check.key, now) if check.key in self._levels else 0.0)
        return values
