"""The in-process cache of chain links: a bounded LRU (entries and bytes) with a TTL.

Links are immutable once written, so caching them is safe; the TTL only bounds how long a
deletion made on another replica goes unnoticed here.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from gateway.store.responses.records import Link

CACHE_TTL_S = 60.0
_CACHE_ENTRIES = 4096
_CACHE_BYTES = 64 * 1024 * 1024


class LinkCache:
    def __init__(self, expired: Callable[[datetime], bool]) -> None:
        self._expired = expired  # the retention: an expired link is never served
        self._links: OrderedDict[str, tuple[float, Link]] = OrderedDict()
        self._bytes = 0

    def __contains__(self, response_id: str) -> bool:
        return response_id in self._links

    def get(self, response_id: str) -> Link | None:
        entry = self._links.get(response_id)
        if entry is None:
            return None
        if entry[0] < time.monotonic() or self._expired(entry[1].created_at):
            self.forget(response_id)
            return None
        self._links.move_to_end(response_id)
        return entry[1]

    def put(self, response_id: str, link: Link) -> None:
        self.forget(response_id)
        size = link.size
        if size > _CACHE_BYTES // 16:
            return  # one huge conversation turn must not empty the cache
        self._links[response_id] = (time.monotonic() + CACHE_TTL_S, link)
        self._bytes += size
        while len(self._links) > _CACHE_ENTRIES or self._bytes > _CACHE_BYTES:
            _, (_, oldest) = self._links.popitem(last=False)
            self._bytes -= oldest.size

    def forget(self, response_id: str) -> None:
        entry = self._links.pop(response_id, None)
        if entry is not None:
            self._bytes -= entry[1].size
