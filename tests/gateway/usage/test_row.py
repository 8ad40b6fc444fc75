"""A usage row as the writer queues it: one JSON array, encoded when the request ends, which a
CSV COPY reads once its brackets are off."""

from __future__ import annotations

import gc
import os
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from starlette.datastructures import Headers

from gateway.contracts.outcome import Attempt, Outcome
from gateway.contracts.request import ParsedRequest
from gateway.usage import codec
from gateway.usage.pricing import PriceBook, load_table
from gateway.usage.row import price_request, row_values
from gateway.usage.spool import Spool
from gateway.usage.table import request_logs
from providers.base import Endpoint


def finished_request(provider: str | None = "openai", request_id: str = "req-1") -> Outcome:
    ctx = Outcome(ParsedRequest(
        request_id=request_id, trace_id="trace-1", endpoint=Endpoint.CHAT, method="POST",
        path="chat/completions", query="", headers=Headers({}), raw_body=b"{}",
        body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        provider=provider, metadata={"team": "search"}))
    ctx.model, ctx.status, ctx.ttfb_ms = "gpt-4o-mini", 200, 1.5
    ctx.usage = {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
    ctx.attempts = [Attempt("config", "openai", 200, 1.25)]
    ctx.upstream_ms, ctx.finished_ms = 1.0, 2.0
    return ctx


def test_a_row_is_encoded_with_every_column_and_decodes_to_the_same_values():
    ctx = finished_request()
    values = row_values(ctx, price_request(ctx, PriceBook(load_table())), log_bodies=False)
    row = dict(zip(codec.COLUMNS, values, strict=True))  # table order: each value its column's
    assert list(codec.COLUMNS) == [column.name for column in request_logs.columns]
    assert row == {
        "id": "req-1", "created_at": row["created_at"], "trace_id": "trace-1",
        "api_key_id": None, "virtual_key_id": None, "config_id": None,
        "endpoint": "chat/completions", "provider": "openai", "model": "gpt-4o-mini",
        "stream": False, "status_code": 200, "error_type": None, "error_message": None,
        "prompt_tokens": 10, "completion_tokens": 20, "cached_tokens": 0, "total_tokens": 30,
        "tokens_estimated": False, "cost_usd": Decimal("0.0000135"),
        "latency_ms": 2.0, "ttfb_ms": 1.5, "upstream_latency_ms": 1.0,
        "gateway_overhead_ms": 1.0, "retry_count": 0, "last_used_option": None,
        "cache_status": None, "metadata": {"team": "search"},
        "attempts": [{"path": "config", "provider": "openai", "status": 200,
                      "latency_ms": 1.25, "error": None}],
        "prompt_id": None, "prompt_version": None, "request_body": None,
        "response_body": None, "hook_results": None, "hooks_failed": None,
        "dialect": "chat"}
    encoded = codec.encode_values(values)
    # What the queue holds is invisible to the cycle collector (queued dicts made every full
    # collection walk them: millisecond pauses several times a second).
    assert isinstance(encoded, bytes) and not gc.is_tracked(encoded)
    decoded = orjson.loads(encoded)
    assert decoded[codec.COLUMNS.index("metadata")] == '{"team":"search"}'  # JSON text: a
    assert decoded[codec.COLUMNS.index("cost_usd")] == "0.0000135"  # CSV field; exact decimal
    assert codec.decode(encoded) == row == codec.decode(codec.encode(row))


def test_a_row_with_a_lone_surrogate_is_kept_with_a_replacement():
    row = {"id": "r1", "created_at": datetime(2026, 1, 1, tzinfo=UTC),
           "cost_usd": Decimal("0.5"), "metadata": {"team": "a\ud800b"}}
    decoded = codec.decode(codec.encode(row))  # orjson refuses it; the fallback keeps the row
    assert decoded["metadata"] == {"team": "a?b"} and decoded["cost_usd"] == Decimal("0.5")
    assert decoded["created_at"] == row["created_at"] and decoded["model"] is None


def test_rows_are_csv_lines_once_unbracketed_and_rewritten_only_for_other_escapes():
    plain = codec.encode({"id": "r1", "model": 'a "quoted" \\ model', "metadata": {"k": "v"}})
    awkward = codec.encode({"id": "r2", "error_message": "line\nnext\ttab\x01"})
    data = codec.copy_data([plain, awkward])
    first, second = data.split(b"\n", 1)
    # \" and \\ read the same in JSON and in CSV with ESCAPE '\': the line is sent as it is.
    assert first == plain[1:-1]
    # JSON's \n, \t and \u0001 mean nothing to CSV: that row is rewritten with the raw
    # characters inside its quotes (a newline is fine in a quoted CSV field).
    assert second.startswith(b'"r2",') and b'"line\nnext\ttab\x01"' in second


def test_spooled_lines_of_older_versions_replay_as_json_values(tmp_path):
    spool = Spool(tmp_path)
    older = {"id": "r1", "metadata": '{"team":"search"}', "attempts": '[{"status":200}]'}
    current = codec.encode({"id": "r2", "metadata": {"team": "ads"}})
    spool.append([orjson.dumps(older), current])
    spool.path.open("ab").write(b'{"id": "cut short by a cr')  # a crash mid-write
    [claimed] = spool.claim()
    replayed = [codec.decode(line) for line in spool.read(claimed)]
    assert [(r["id"], r["metadata"], r["attempts"]) for r in replayed] == [
        ("r1", {"team": "search"}, [{"status": 200}]), ("r2", {"team": "ads"}, None)]
    assert (tmp_path / f"rejected-{os.getpid()}.rows").read_bytes() == \
        b'{"id": "cut short by a cr\n'


def test_a_client_that_left_mid_call_is_billed_its_prompt_and_one_that_left_a_retry_not():
    prices = PriceBook(load_table())
    for last_status, billed in ((None, True), (200, True), (503, False)):
        # No provider named by the client, none answered: priced at the one the call went to.
        ctx = finished_request(provider=None)
        ctx.usage, ctx.status, ctx.error_type = None, 499, "client_disconnect"
        ctx.answered_by = None
        ctx.attempts = [Attempt("config", "openai", last_status, 1.0)]
        tokens = price_request(ctx, prices)
        if billed:
            assert tokens is not None and tokens.estimated and tokens.completion == 0
            assert tokens.prompt > 0 and ctx.cost_usd is not None and ctx.cost_usd > 0
        else:
            assert tokens is None and ctx.cost_usd == 0
    ctx = finished_request()
    ctx.usage, ctx.status, ctx.error_type, ctx.attempts = None, 499, "client_disconnect", []
    assert price_request(ctx, prices) is None  # left before any upstream call
