"""The console's pure parts: signed sessions, time buckets and percentiles, SVG charts,
the limit labels."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.console import charts, stats
from gateway.console.limit_usage import limit_label
from gateway.console.session import SessionSigner, csrf_ok

NOW = 1_800_000_000.0


def test_a_session_cookie_round_trips_and_any_change_voids_it() -> None:
    signer = SessionSigner(b"k" * 32, 3600)
    cookie = signer.issue("admin", "admin token", NOW)
    session = signer.read(cookie, NOW + 10)
    assert session is not None and session.subject == "admin" and session.csrf
    assert csrf_ok(session, session.csrf) and not csrf_ok(session, "x") and not csrf_ok(
        session, None)
    body, _, mac = cookie.partition(".")
    assert signer.read(body[:-2] + "AA." + mac, NOW) is None
    assert signer.read(cookie + "x", NOW) is None
    assert signer.read("garbage", NOW) is None and signer.read(None, NOW) is None
    assert signer.read(cookie, NOW + 3601) is None  # expired
    assert SessionSigner(b"o" * 32, 3600).read(cookie, NOW) is None  # another server key


def test_login_tokens_are_bound_to_their_nonce() -> None:
    signer = SessionSigner(b"k" * 32, 3600)
    token = signer.login_token("nonce-1")
    assert signer.check_login_token("nonce-1", token)
    assert not signer.check_login_token("nonce-2", token)
    assert not signer.check_login_token(None, token)
    assert not signer.check_login_token("nonce-1", None)


def test_buckets_cover_the_window_on_hour_and_day_boundaries() -> None:
    since = datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    until = datetime(2026, 1, 2, 10, 30, tzinfo=UTC)
    hours = stats.bucket_starts(since, until, "hour")
    assert hours[0] == datetime(2026, 1, 1, 10, tzinfo=UTC) and len(hours) == 25
    days = stats.bucket_starts(since, until, "day")
    assert days == [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)]


def test_percentiles() -> None:
    assert stats.percentile([], 50) is None
    assert stats.percentile([7.0], 95) == 7.0
    values = [float(v) for v in range(1, 101)]
    assert stats.percentile(values, 50) == 50.5
    assert stats.percentile(values, 95) == 95.05


def test_series_beyond_the_palette_fold_into_other() -> None:
    series = {f"m{i}": [float(i), 1.0] for i in range(12)}
    kept = charts.top_series(series)
    assert len(kept) == charts.MAX_SERIES + 1 and "m11" in kept and "m0" not in kept
    folded = [n for n in series if n not in kept]
    assert kept["other"] == [sum(series[n][0] for n in folded), float(len(folded))]


def test_charts_escape_names_and_scale_to_the_tallest_stack() -> None:
    buckets = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(3)]
    svg = charts.stacked_bars("Requests", buckets, {"<b>": [1, 0, 3], "x": [1, 0, 0]},
                              {"<b>": "#111111", "x": "#222222"}, str, True)
    assert "&lt;b&gt;" in svg and svg.count("<rect") == 3
    assert ">3<" in svg  # the y axis's top label is the tallest stack
    assert charts.stacked_bars("Empty", [], {}, {}, str, True).startswith("<svg")


def test_money_keeps_fractions_of_a_cent() -> None:
    assert [charts.money(v) for v in (0, 0.00001, 0.5, 12.345)] == [
        "$0", "$0.00001", "$0.5", "$12.35"]


def test_limit_labels() -> None:
    assert limit_label("gw:limits:virtual_key:1:rpm", None) == "requests / minute"
    assert limit_label("gw:limits:virtual_key:1:tpm:123", None) == "tokens this minute"
    assert limit_label("gw:limits:api_key:1:budget:2026-01", "monthly") == "spend this month"
    assert limit_label("gw:limits:api_key:1:budget:total", None) == "spend (total)"
    assert limit_label("gw:limits:api_key:1:concurrent", None) == "in flight"
