"""A usage row as the writer queues it: plain values only, JSON columns already text."""

from __future__ import annotations

import gc

import orjson
from starlette.datastructures import Headers

from gateway.context import Attempt, RequestContext
from gateway.usage.pricing import PriceBook, load_table
from gateway.usage.row import build_row
from gateway.usage.store import _COLUMNS, _copy_record, _insert_params
from providers.base import Endpoint


def finished_request() -> RequestContext:
    ctx = RequestContext(
        request_id="req-1", trace_id="trace-1", endpoint=Endpoint.CHAT, method="POST",
        path="chat/completions", query="", headers=Headers({}), raw_body=b"{}",
        body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    ctx.provider, ctx.model, ctx.status, ctx.ttfb_ms = "openai", "gpt-4o-mini", 200, 1.5
    ctx.usage = {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
    ctx.attempts = [Attempt("config", "openai", 200, 1.25)]
    ctx.metadata = {"team": "search"}
    ctx.upstream_ms, ctx.finished_ms = 1.0, 2.0
    return ctx


def test_a_queued_row_is_invisible_to_the_cycle_collector():
    row = build_row(finished_request(), PriceBook(load_table()), log_bodies=False)
    # Queued rows that held dicts made every full collection walk them (ms-long pauses).
    assert not gc.is_tracked(row)
    assert orjson.loads(row["metadata"]) == {"team": "search"}
    assert orjson.loads(row["attempts"])[0]["status"] == 200
    assert set(row) == set(_COLUMNS)


def test_copy_records_follow_the_columns_for_new_and_old_spooled_rows():
    row = build_row(finished_request(), PriceBook(load_table()), log_bodies=False)
    assert _copy_record(row) == tuple(row[name] for name in _COLUMNS)
    # A row spooled by an older version: JSON values, and a column it did not have.
    old = {**row, "metadata": {"team": "search"}, "attempts": [{"status": 200}]}
    del old["prompt_id"]
    record = dict(zip(_COLUMNS, _copy_record(old), strict=True))
    assert orjson.loads(record["metadata"]) == {"team": "search"}
    assert orjson.loads(record["attempts"]) == [{"status": 200}]
    assert record["prompt_id"] is None
    # SQLAlchemy's JSON type (INSERT path) gets values back, not text.
    assert _insert_params(row)["metadata"] == {"team": "search"}
