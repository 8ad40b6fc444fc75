"""Guardrail verdicts in usage rows: what `hook_results` keeps (and leaves out), `hooks_failed`,
and rows carrying them through the usage log into Postgres (COPY) and SQLite (INSERT), through
the spool and the crash-safe journal, and back out filtered by failure."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.db import migrate
from gateway.db.engine import open_database
from gateway.guardrails.results import (
    CheckError,
    CheckResult,
    HookResult,
    PhaseResult,
    iso,
)
from gateway.settings import Settings
from gateway.usage import codec, queries, verdicts
from gateway.usage.journal import Journal
from gateway.usage.pricing import PriceBook, load_table
from gateway.usage.row import price_request, row_values
from gateway.usage.setup import UsageLog
from gateway.usage.spool import Spool
from gateway.usage.store import UsageStore
from tests.gateway.usage.test_journal import kill_while_journaling, spooled
from tests.gateway.usage.test_row import finished_request

NOW = datetime(2026, 12, 8, 12, 0, 0, tzinfo=UTC).timestamp()
SECRET_TEXT = "my card is 4111 1111 1111 1111"  # text a check quoted: never in a row


def check(check_id: str, verdict: bool, *, error: CheckError | None = None,
          data: object = None, fail_on_error: bool = False) -> CheckResult:
    return CheckResult(check_id, verdict, data, error, 0.125, iso(NOW),
                       fail_on_error=fail_on_error)


def failing_input() -> PhaseResult:
    """A denying hook whose regex check failed (quoting the text) and whose webhook errored."""
    regex = check("default.regexMatch", False, data={
        "explanation": "The regex pattern '\\d{4}' matched the text when it should not have.",
        "matchDetails": {"matchedText": SECRET_TEXT}, "textExcerpt": SECRET_TEXT})
    webhook = check("default.webhook", False, fail_on_error=True, error=CheckError(
        "x" * 500, "TimeoutError"), data={"explanation": "Webhook error: timed out"})
    hook = HookResult("no-cards", "guardrail", verdict=False, deny=True,
                      checks=(regex, webhook), feedback={"value": -1, "weight": 1,
                                                         "metadata": {"x": "y" * 1000}},
                      execution_time=1.5, created_at=iso(NOW))
    return PhaseResult((hook,))


def passing_output() -> PhaseResult:
    words = check("default.wordCount", True, data={"explanation": "within range"})
    return PhaseResult((HookResult("output_guardrail_abc", "guardrail", checks=(words,),
                                   execution_time=0.25, created_at=iso(NOW)),
                        HookResult("later", "mutator", skipped=True)))


def test_hook_results_keep_verdicts_ids_errors_and_timings_but_not_what_checks_quoted():
    stored = verdicts.stored_hook_results(failing_input(), passing_output())
    assert stored == {
        "before_request_hooks": [{
            "id": "no-cards", "type": "guardrail", "verdict": False, "deny": True,
            "execution_time": 1.5, "created_at": "2026-12-08T12:00:00.000Z", "checks": [
                {"id": "default.regexMatch", "verdict": False, "execution_time": 0.125,
                 "explanation": "The regex pattern '\\d{4}' matched the text when it should "
                                "not have."},
                {"id": "default.webhook", "verdict": False, "execution_time": 0.125,
                 "error": {"name": "TimeoutError", "message": "x" * 199 + "…"},
                 "explanation": "Webhook error: timed out", "fail_on_error": True}]}],
        "after_request_hooks": [
            # A passing check keeps no explanation (it restates the parameters); defaults
            # (deny, async, transformed, fail_on_error false) are left out.
            {"id": "output_guardrail_abc", "type": "guardrail", "verdict": True,
             "execution_time": 0.25, "created_at": "2026-12-08T12:00:00.000Z", "checks": [
                 {"id": "default.wordCount", "verdict": True, "execution_time": 0.125}]},
            {"id": "later", "type": "mutator", "skipped": True}]}
    encoded = orjson.dumps(stored)
    assert SECRET_TEXT.encode() not in encoded and b"yyyy" not in encoded  # data, feedback
    assert len(encoded) < 1000  # two hooks, three checks: small whatever the text checked


def test_hook_results_keep_what_is_true_of_a_transforming_async_hook():
    rewritten = CheckResult("default.regexReplace", True, {"explanation": "replaced"}, None,
                            0.5, iso(NOW), transformed=True, fail_on_error=True)
    hook = HookResult("h" * 300, "mutator", is_async=True, transformed=True,
                      checks=(rewritten,), execution_time=0.5, created_at=iso(NOW))
    [kept] = verdicts.stored_hook_results(PhaseResult((hook,)), None)["before_request_hooks"]
    assert kept == {"id": "h" * 199 + "…", "type": "mutator", "verdict": True,
                    "execution_time": 0.5, "created_at": "2026-12-08T12:00:00.000Z",
                    "async": True, "transformed": True, "checks": [
                        {"id": "default.regexReplace", "verdict": True, "execution_time": 0.5,
                         "transformed": True, "fail_on_error": True}]}


def test_an_error_is_kept_even_where_the_check_passed():
    """requiredMetadataKeys after the request passes with an error (it only runs before):
    the row keeps the error, as the metrics count it, but no explanation."""
    misplaced = CheckResult("default.requiredMetadataKeys", True, {"explanation": "n/a"},
                            CheckError("This plugin only works for before_request_hooks"),
                            0.01, iso(NOW))
    hook = HookResult("out", "guardrail", checks=(misplaced,), created_at=iso(NOW))
    [kept] = verdicts.stored_hook_results(None, PhaseResult((hook,)))["after_request_hooks"]
    assert kept["checks"] == [{
        "id": "default.requiredMetadataKeys", "verdict": True, "execution_time": 0.01,
        "error": {"name": "Error", "message": "This plugin only works for before_request_hooks"}}]


def test_hooks_failed_is_null_without_hooks_false_when_all_passed_true_when_one_failed():
    assert verdicts.columns(None, None) == (None, None)
    assert verdicts.columns(PhaseResult(), None) == (None, None)  # only async hooks: none ran
    assert verdicts.columns(None, passing_output())[1] is False
    assert verdicts.columns(passing_output(), failing_input())[1] is True
    # A check that errored fail-open passes its hook: the request did not fail a guardrail,
    # though the metrics count the check as an error.
    errored = check("default.log", False, error=CheckError("unreachable"))
    lenient = PhaseResult((HookResult("h", "guardrail", verdict=errored.passes,
                                      checks=(errored,)),))
    assert verdicts.columns(lenient, None)[1] is False


def guarded_request(before: PhaseResult | None, after: PhaseResult | None = None):
    outcome = finished_request()
    outcome.request = replace(outcome.request, request_id=uuid.uuid4().hex)
    outcome.hooks_before, outcome.hooks_after = before, after
    return outcome


def test_the_row_carries_them_after_the_bodies():
    outcome = guarded_request(failing_input(), passing_output())
    values = row_values(outcome, price_request(outcome, PriceBook(load_table())), False)
    row = codec.decode(codec.encode_values(values))
    assert row["hooks_failed"] is True
    assert row["hook_results"] == verdicts.stored_hook_results(failing_input(),
                                                               passing_output())
    assert codec.COLUMNS[-3:] == ("hook_results", "hooks_failed", "dialect")


def test_rows_of_older_versions_read_as_without_hooks(tmp_path: Path):
    """A spool or a dead journal written before migration 0006 holds arrays three values short
    (the hook columns and 0008's dialect): they replay with null hook columns, beside new rows
    whose results are intact."""
    current = row_bytes(guarded_request(failing_input()))
    older = orjson.dumps(orjson.loads(current)[:-3])
    kill_while_journaling(tmp_path / "journal", [older, current])
    assert Journal(tmp_path / "journal").start(Spool(tmp_path / "spool")) == 2
    old, new = [codec.decode(line) for line in spooled(tmp_path / "spool")]
    assert (old["hook_results"], old["hooks_failed"]) == (None, None)
    assert old["id"] == new["id"] and old["latency_ms"] == new["latency_ms"]
    assert new["hooks_failed"] is True
    assert new["hook_results"]["before_request_hooks"][0]["id"] == "no-cards"


def row_bytes(outcome) -> bytes:
    tokens = price_request(outcome, PriceBook(load_table()))
    return codec.encode_values(row_values(outcome, tokens, False))


def test_rows_round_trip_through_the_usage_log_and_filter_by_failure(database_url: str,
                                                                       tmp_path: Path):
    """Through the usage log (journal on) and the writer into the database: Postgres by COPY,
    SQLite by INSERT; then read back with the /admin/logs filter."""
    failed = guarded_request(failing_input(), passing_output())
    passed = guarded_request(None, passing_output())
    plain = guarded_request(None)
    settings = Settings(_env_file=None, database_url=database_url, spool_dir=tmp_path / "spool",
                        usage_flush_interval_s=0.01)

    async def run() -> tuple[list, list, list, dict | None]:
        db = open_database(settings)
        try:
            await migrate.upgrade(db)
            usage = UsageLog(settings, UsageStore(db))
            await usage.start()
            for outcome in (failed, passed, plain):
                usage.record(outcome)
            await usage.close()  # writes what it holds
            found = [await queries.list_logs(db, queries.LogFilters(hooks_failed=flag), None, 10)
                     for flag in (True, False, None)]
            return *(page for page, _ in found), await queries.get_log(db, failed.request
                                                                        .request_id)
        finally:
            await db.close()

    failures, others, everything, stored = asyncio.run(run())
    assert len(everything) == 3
    assert [r["id"] for r in failures] == [failed.request.request_id]
    assert {r["id"] for r in others} == {passed.request.request_id, plain.request.request_id}
    assert stored is not None and stored["hooks_failed"] is True
    assert stored["hook_results"] == verdicts.stored_hook_results(failing_input(),
                                                                  passing_output())
    by_id = {r["id"]: r for r in everything}
    assert by_id[passed.request.request_id]["hooks_failed"] is False
    assert by_id[plain.request.request_id]["hook_results"] is None
    assert by_id[plain.request.request_id]["hooks_failed"] is None
    assert not list((tmp_path / "spool").glob("usage-*"))  # written, not spooled
