"""SlicePacer: a COPY's next slice goes just after a request finishes, after a short wait
when none does, and at once when the gateway is serving nobody."""

from __future__ import annotations

import asyncio
import time

from gateway.usage import store
from gateway.usage.store import SlicePacer, _slices
from tests.gateway.usage.test_writer import row


async def timed(turn) -> float:
    started = time.monotonic()
    await turn
    return time.monotonic() - started


async def test_a_slice_waits_for_a_finished_request_or_the_wait(monkeypatch):
    monkeypatch.setattr(store, "SLICE_WAIT_S", 0.5)
    monkeypatch.setattr(store, "SERVING_S", 60.0)
    pacer = SlicePacer()
    pacer.request_finished()  # serving: slices are paced
    asyncio.get_running_loop().call_later(0.05, pacer.request_finished)
    assert 0.04 <= await timed(pacer.next_turn()) < 0.4  # went with the finish
    assert await timed(pacer.next_turn()) >= 0.45  # none finished: the whole wait


async def test_an_idle_gateway_sends_slices_without_waiting(monkeypatch):
    monkeypatch.setattr(store, "SLICE_WAIT_S", 5.0)
    monkeypatch.setattr(store, "SERVING_S", 0.05)
    pacer = SlicePacer()
    assert await timed(pacer.next_turn()) < 1.0  # no request ever finished
    pacer.request_finished()
    await asyncio.sleep(0.1)
    assert await timed(pacer.next_turn()) < 1.0  # the last one finished a while ago


async def test_slices_carry_every_row_in_order_between_turns(monkeypatch):
    monkeypatch.setattr(store, "SLICE_ROWS", 2)
    turns = []

    class Counting(SlicePacer):
        async def next_turn(self) -> None:
            turns.append(1)

    rows = [row(i) for i in range(5)]
    data = [chunk async for chunk in _slices(rows, Counting())]
    assert len(data) == 3 and len(turns) == 2  # a turn between slices, none before the first
    assert b"".join(data) == b"".join(row[1:-1] + b"\n" for row in rows)
