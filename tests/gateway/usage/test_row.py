"""A usage row as the writer queues it: one JSON document, encoded when the request ends."""

from __future__ import annotations

import gc
import os
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from starlette.datastructures import Headers

from gateway.context import Attempt, RequestContext
from gateway.usage import codec
from gateway.usage.pricing import PriceBook, load_table
from gateway.usage.row import build_row
from gateway.usage.spool import Spool
from gateway.usage.table import request_logs
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


def test_a_row_is_encoded_with_every_column_and_decodes_to_the_same_values():
    row = build_row(finished_request(), PriceBook(load_table()), log_bodies=False)
    assert set(row) == {column.name for column in request_logs.columns}
    encoded = codec.encode(row)
    # What the queue holds is invisible to the cycle collector (queued dicts made every full
    # collection walk them: millisecond pauses several times a second).
    assert isinstance(encoded, bytes) and not gc.is_tracked(encoded)
    document = orjson.loads(encoded)
    assert document["metadata"] == {"team": "search"}  # JSON, not JSON text in a string
    assert document["cost_usd"] == str(row["cost_usd"])  # exact decimal, as a string
    assert codec.decode(encoded) == row


def test_a_row_with_a_lone_surrogate_is_kept_with_a_replacement():
    row = {"id": "r1", "created_at": datetime(2026, 1, 1, tzinfo=UTC),
           "cost_usd": Decimal("0.5"), "metadata": {"team": "a\ud800b"}}
    decoded = codec.decode(codec.encode(row))  # orjson refuses it; the fallback keeps the row
    assert decoded["metadata"] == {"team": "a?b"} and decoded["cost_usd"] == Decimal("0.5")


def test_spooled_lines_of_older_versions_replay_as_json_values(tmp_path):
    spool = Spool(tmp_path)
    older = {"id": "r1", "metadata": '{"team":"search"}', "attempts": '[{"status":200}]'}
    current = codec.encode({"id": "r2", "metadata": {"team": "ads"}})
    spool.append([orjson.dumps(older), current])
    spool.path.open("ab").write(b'{"id": "cut short by a cr')  # a crash mid-write
    [claimed] = spool.claim()
    replayed = [orjson.loads(line) for line in spool.read(claimed)]
    assert replayed == [{"id": "r1", "metadata": {"team": "search"},
                         "attempts": [{"status": 200}]},
                        {"id": "r2", "metadata": {"team": "ads"}}]
    assert (tmp_path / f"rejected-{os.getpid()}.jsonl").read_bytes() == \
        b'{"id": "cut short by a cr\n'
