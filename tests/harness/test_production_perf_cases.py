"""Cases for the fast paths of the Ibis engine (harness/scoring/production/ibis_engine.py), worked out by hand:
latency order statistics picked through the bucket histogram (ties, many values in one bucket), and repeat
contact when one conversation carries two customers (the engine falls back to grouping the turns by conversation
and customer, as `definitions` says)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from harness.records.production import ProductionStore, Window, to_production_frame
from harness.scoring.production import ProductionKpiOptions, ibis_engine, score_production


def turn(cid: str, index: int, start: datetime, latency: float | None, customer: str | None) -> dict:
    return {
        "conversation_id": cid,
        "turn_index": index,
        "status": "ok",
        "attempts": 1,
        "fallback": False,
        "state": "active",
        "awaiting_reply": False,
        "n_bot_messages": 1,
        "latency_ms": latency,
        "customer": customer,
        "conversation_start": start,
        "sent_at": start + timedelta(minutes=index),
        "source": "test",
    }


def by_key(card) -> dict:
    return {(k.name, k.breakdown, k.period, k.period_start): k for k in card.kpis}


@pytest.mark.parametrize("buckets", [1, 4096])
def test_latency_order_statistics_with_ties_and_shared_buckets(tmp_path, monkeypatch, buckets):
    # Ten latencies on one day, sorted: 5 5 5 5 7 7 9 100 100 100.5. p50: rank ceil(0.5 * 10) = 5 -> 7 (inside a
    # tie of two); p95: rank ceil(0.95 * 10) = 10 -> 100.5. With one bucket for everything (scale 1/128) the ranks
    # are picked inside the bucket; with 4096 buckets (scale 32) every distinct value has its own.
    monkeypatch.setattr(ibis_engine, "BUCKETS", buckets)
    start = datetime(2024, 5, 6, 9, tzinfo=UTC)
    latencies = {"a": [5.0, 100.0, 5.0, 7.0], "b": [9.0, 5.0, 100.5], "c": [7.0, 100.0, 5.0]}
    rows = [turn(cid, i, start, v, None) for cid, values in latencies.items() for i, v in enumerate(values)]
    store = ProductionStore(tmp_path / "store")
    store.append(to_production_frame(rows), "test")
    cards = {engine: by_key(score_production(store, Window(), None, engine)) for engine in ("duckdb", "pandas")}
    for engine, card in cards.items():
        for period, day in (("all", None), ("day", date(2024, 5, 6)), ("week", date(2024, 5, 6))):
            p50 = card[("server_latency_p50.v1", None, period, day)]
            p95 = card[("server_latency_p95.v1", None, period, day)]
            assert (p50.value, p50.n, p95.value, p95.n) == (7.0, 10, 100.5, 10), (engine, period)
    for key, expected in cards["pandas"].items():
        got = cards["duckdb"][key]
        assert (got.value, got.low, got.high, got.n) == (expected.value, expected.low, expected.high, expected.n), key


def test_repeat_contact_when_a_conversation_carries_two_customers(tmp_path):
    # c1 (Mon 6 May) has turns from customers A and B: as `definitions` groups repeat contact by conversation and
    # customer, it counts as two conversations with a customer, (c1, A) and (c1, B). c2 (B, the next day) follows
    # (c1, B) within 7 days: a hit; nothing follows (c1, A). c9 (C, 30 days later) is the store's newest start, so
    # everything in the window (Mon 6 May only) is eligible: 1 hit of 2.
    monday = datetime(2024, 5, 6, 9, tzinfo=UTC)
    rows = [
        turn("c1", 0, monday, 100.0, "A"),
        turn("c1", 1, monday, 100.0, "B"),
        turn("c2", 0, monday + timedelta(days=1), 100.0, "B"),
        turn("c9", 0, monday + timedelta(days=30), 100.0, "C"),
    ]
    store = ProductionStore(tmp_path / "store")
    store.append(to_production_frame(rows), "test")
    window = Window(date(2024, 5, 6), date(2024, 5, 6))
    options = ProductionKpiOptions(repeat_contact=timedelta(days=7))
    for engine in ("duckdb", "pandas"):
        card = by_key(score_production(store, window, options, engine))
        repeat = card[("repeat_contact.v1", None, "all", None)]
        assert (repeat.value, repeat.n) == (0.5, 2), engine


def test_a_store_where_the_bot_answered_nothing_gives_undefined_coverage_and_latency_not_a_crash(tmp_path):
    # Two conversations whose every turn failed (no answer, no latency): 2 conversations, nothing answered, so
    # coverage (answered turns without fallback / answered turns) and the latency quantiles have nothing to count.
    start = datetime(2024, 5, 6, 9, tzinfo=UTC)
    rows = []
    for cid, status in (("a", "empty_reply"), ("b", "timeout")):
        row = turn(cid, 0, start, None, None)
        rows.append({**row, "status": status, "n_bot_messages": 0, "fallback": None})
    store = ProductionStore(tmp_path / "store")
    store.append(to_production_frame(rows), "test")
    for engine in ("duckdb", "pandas"):
        card = by_key(score_production(store, Window(), None, engine))
        assert card[("conversation_count.v1", None, "all", None)].value == 2, engine
        for name in ("coverage.v1", "server_latency_p50.v1", "server_latency_p95.v1"):
            kpi = card[(name, None, "all", None)]
            assert kpi.value is None and kpi.n == 0 and kpi.undefined_reason, (engine, name)
