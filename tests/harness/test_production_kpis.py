"""Production KPIs on hand-built production stores, every answer worked out by hand (DuckDB, the default engine,
and the in-memory pandas path; Spark gives the same numbers in test_production_engines.py)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from statistics import NormalDist

import pytest
from scipy import stats

from harness.errors import InputError
from harness.records.production import ProductionStore, Window, to_production_frame
from harness.scoring.metrics import intervals
from harness.scoring.production import ProductionKpiOptions, ProductionScorecard, score_production

Z = NormalDist().inv_cdf(0.975)
ENGINES = ["duckdb", "pandas"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def conversation(cid: str, start: str, turns: list[dict], customer: str | None = None) -> list[dict]:
    """Rows of one conversation; each turn's unspecified fields: answered, no fallback, active, not awaiting."""
    began = at(start)
    rows = []
    for index, fields in enumerate(turns):
        row = {
            "conversation_id": cid,
            "turn_index": index,
            "status": "ok",
            "attempts": 1,
            "fallback": False,
            "state": "active",
            "awaiting_reply": False,
            "n_bot_messages": 1,
            "latency_ms": 100.0,
            "customer": customer,
            "conversation_start": began,
            "sent_at": began + timedelta(minutes=5 * index),
            "source": "test",
        }
        row.update(fields)
        rows.append(row)
    return rows


def write(tmp_path, *conversations: list[dict]) -> ProductionStore:
    store = ProductionStore(tmp_path / "store")
    store.append(to_production_frame([row for conv in conversations for row in conv]), "test")
    return store


@pytest.fixture
def week_store(tmp_path) -> ProductionStore:
    """Four conversations in the window 2024-01-06 (Saturday) .. 2024-01-08 (Monday), and three outside it.

    c1 Sat  customer A: answered, then answered with a fallback while awaiting a reply (abandoned); 3 messages.
    c2 Sun 23:50 customer A: handed to `billing` by `asked_human`; then a message to the human on Monday
       (silenced, awaiting: not bot-owned, so not abandoned). Started Sunday: belongs to the week of Jan 1.
    c3 Mon customer B: answered (fallback null: no fallback), then a timeout awaiting a reply (the last bot-owned
       turn: abandoned), then a turn never sent.
    c4 Mon no customer: answered with a fallback; state handed_off (no queue), rule `low_confidence`.
    Outside: c0 (Jan 5, B), c5 (Jan 10 09:00, B: exactly 2 days after c3), c6 (Jan 20 09:00, C: the newest)."""
    return write(
        tmp_path,
        conversation("c0", "2024-01-05T08:00:00", [{}], customer="B"),
        conversation(
            "c1",
            "2024-01-06T10:00:00",
            [
                {"n_bot_messages": 2, "latency_ms": 100.0},
                {"fallback": True, "latency_ms": 300.0, "awaiting_reply": True},
            ],
            customer="A",
        ),
        conversation(
            "c2",
            "2024-01-07T23:50:00",
            [
                {"latency_ms": 200.0, "handoff_queue": "billing", "handoff_rule": "asked_human", "state": "handed_off"},
                {
                    "status": "silenced",
                    "n_bot_messages": 0,
                    "latency_ms": None,
                    "awaiting_reply": True,
                    "state": "handed_off",
                    "sent_at": at("2024-01-08T00:05:00"),
                },
            ],
            customer="A",
        ),
        conversation(
            "c3",
            "2024-01-08T09:00:00",
            [
                {"fallback": None, "latency_ms": 400.0},
                {"status": "timeout", "n_bot_messages": 0, "latency_ms": None, "awaiting_reply": True},
                {"status": "not_sent", "n_bot_messages": 0, "latency_ms": None},
            ],
            customer="B",
        ),
        conversation(
            "c4",
            "2024-01-08T12:00:00",
            [
                {
                    "fallback": True,
                    "latency_ms": 500.0,
                    "state": "handed_off",
                    "handoff_rule": "low_confidence",
                    "n_bot_messages": 2,
                }
            ],
        ),
        conversation("c5", "2024-01-10T09:00:00", [{}], customer="B"),
        conversation("c6", "2024-01-20T09:00:00", [{}], customer="C"),
    )


WINDOW = Window(date(2024, 1, 6), date(2024, 1, 8))


def kpi(card: ProductionScorecard, name: str, period: str = "all", start: date | None = None, breakdown=None):
    found = [
        k
        for k in card.kpis
        if k.name == name and k.period == period and k.period_start == start and k.breakdown == breakdown
    ]
    assert len(found) == 1, (name, period, start, breakdown, found)
    return found[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_window_overall_by_hand(week_store, engine):
    card = score_production(week_store, WINDOW, ProductionKpiOptions(), engine)
    assert card.engine == engine
    assert (card.first_day, card.last_day) == (date(2024, 1, 6), date(2024, 1, 8))
    assert kpi(card, "conversation_count.v1").value == 4
    # Handed off: c2 (queue) and c4 (state only).
    assert (kpi(card, "containment.v1").value, kpi(card, "containment.v1").n) == (0.5, 4)
    assert kpi(card, "handoff_rate.v1").value == 0.5
    assert kpi(card, "handoff_rate.v1", breakdown="queue=billing").value == 0.25
    assert kpi(card, "handoff_rate.v1", breakdown="rule=asked_human").value == 0.25
    assert kpi(card, "handoff_rate.v1", breakdown="rule=low_confidence").value == 0.25
    # Answered turns: c1 2 (one fallback), c2 1, c3 1 (null fallback is no fallback), c4 1 (fallback): 3 of 5.
    coverage = kpi(card, "coverage.v1")
    assert (coverage.value, coverage.n, coverage.method) == (0.6, 5, "wilson (design effect)")
    # Abandoned: c1 (last bot-owned turn awaits) and c3 (the timeout awaits); not c2 (silenced turn, handed off).
    assert kpi(card, "abandonment.v1").value == 0.5
    # Bot messages 3, 1, 1, 2; customer turns (sent, silenced included) 2, 2, 2, 1.
    assert kpi(card, "messages_per_conversation.v1").value == 7 / 4
    assert kpi(card, "customer_turns_per_conversation.v1").value == 7 / 4
    # Answered latencies 100, 300, 200, 400, 500: ranks ceil(0.5*5)=3 and ceil(0.95*5)=5.
    assert (kpi(card, "server_latency_p50.v1").value, kpi(card, "server_latency_p50.v1").n) == (300.0, 5)
    assert kpi(card, "server_latency_p95.v1").value == 500.0
    assert "recognition_rate" in card.undefined and "no labels" in card.undefined["recognition_rate"]


@pytest.mark.parametrize("engine", ENGINES)
def test_days_weeks_and_breakdowns_by_hand(week_store, engine):
    card = score_production(week_store, WINDOW, ProductionKpiOptions(), engine)
    sat, sun, mon = date(2024, 1, 6), date(2024, 1, 7), date(2024, 1, 8)
    assert [k.period_start for k in card.series("conversation_count.v1", "day")] == [sat, sun, mon]
    assert [k.value for k in card.series("conversation_count.v1", "day")] == [1, 1, 2]
    # c2 started on Sunday: its Monday turn stays in the week of Monday Jan 1.
    assert [(k.period_start, k.value) for k in card.series("conversation_count.v1", "week")] == [
        (date(2024, 1, 1), 2),
        (mon, 2),
    ]
    assert [k.value for k in card.series("handoff_rate.v1", "week")] == [0.5, 0.5]
    assert kpi(card, "handoff_rate.v1", "day", sun, "queue=billing").value == 1.0
    # A queue or rule seen in the window is reported for every period, 0 where it did not occur.
    assert kpi(card, "handoff_rate.v1", "day", sun, "rule=low_confidence").value == 0.0
    assert kpi(card, "handoff_rate.v1", "day", mon, "rule=low_confidence").value == 0.5
    assert kpi(card, "abandonment.v1", "day", mon).value == 0.5
    assert kpi(card, "coverage.v1", "day", sat).value == 0.5
    assert kpi(card, "coverage.v1", "day", mon).value == 0.5
    assert kpi(card, "messages_per_conversation.v1", "day", sat).value == 3
    # Saturday's latencies 100, 300: p50 rank 1, p95 rank 2.
    assert kpi(card, "server_latency_p50.v1", "day", sat).value == 100.0
    assert kpi(card, "server_latency_p95.v1", "day", sat).value == 300.0
    # Sunday has one answered turn: a value, no interval of zero width.
    single = kpi(card, "server_latency_p50.v1", "day", sun)
    assert (single.value, single.low, single.high) == (200.0, None, None)


@pytest.mark.parametrize("engine", ENGINES)
def test_repeat_contact_with_censoring_by_hand(week_store, engine):
    # Newest start in the store: c6, Jan 20 09:00. With 7 days every window conversation with a customer (c1, c2,
    # c3) started before Jan 13 09:00: eligible. c1 -> c2 (A, 1 day 13:50 later): hit; c2: A never came back;
    # c3 -> c5 (B, outside the window, 2 days later): hit. c4 has no customer.
    card = score_production(week_store, WINDOW, ProductionKpiOptions(repeat_contact=timedelta(days=7)), engine)
    repeat = kpi(card, "repeat_contact.v1")
    assert (repeat.value, repeat.n) == (2 / 3, 3)
    # Exactly 2 days (c3 -> c5) is within the bound; c1 -> c2 too.
    two = score_production(week_store, WINDOW, ProductionKpiOptions(repeat_contact=timedelta(days=2)), engine)
    assert kpi(two, "repeat_contact.v1").value == 2 / 3
    one = score_production(week_store, WINDOW, ProductionKpiOptions(repeat_contact=timedelta(days=1)), engine)
    assert kpi(one, "repeat_contact.v1").value == 0.0
    # 13.5 days: the cutoff is Jan 6 21:00, so only c1 is eligible (c2, c3 are censored): 1 of 1.
    long = score_production(
        week_store, WINDOW, ProductionKpiOptions(repeat_contact=timedelta(days=13, hours=12)), engine
    )
    assert (kpi(long, "repeat_contact.v1").value, kpi(long, "repeat_contact.v1").n) == (1.0, 1)
    censored = kpi(long, "repeat_contact.v1", "day", date(2024, 1, 8))
    assert censored.value is None and "censored" in censored.undefined_reason
    anonymous = score_production(week_store, WINDOW, ProductionKpiOptions(customers_identified=False), engine)
    assert kpi(anonymous, "repeat_contact.v1").value is None
    assert "customer" in kpi(anonymous, "repeat_contact.v1").undefined_reason


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_window_is_undefined_not_zero(week_store, engine):
    card = score_production(week_store, Window(date(2023, 1, 1), date(2023, 1, 31)), ProductionKpiOptions(), engine)
    assert (card.first_day, card.last_day) == (None, None)
    assert kpi(card, "conversation_count.v1").value == 0
    for name in (
        "containment.v1",
        "handoff_rate.v1",
        "coverage.v1",
        "abandonment.v1",
        "repeat_contact.v1",
        "messages_per_conversation.v1",
        "customer_turns_per_conversation.v1",
        "server_latency_p50.v1",
        "server_latency_p95.v1",
    ):
        value = kpi(card, name)
        assert value.value is None and value.n == 0 and value.undefined_reason, name
    assert all(k.period == "all" for k in card.kpis)
    assert ProductionScorecard.from_json(card.to_json()) == card


@pytest.fixture
def twenty(tmp_path) -> ProductionStore:
    """20 one-turn conversations on 2024-02-01: the first 8 handed off; latencies 10, 20, ..., 200 ms; bot
    messages i % 4 for conversation i."""
    return write(
        tmp_path,
        *[
            conversation(
                f"t{i:02d}",
                f"2024-02-01T{i:02d}:00:00",
                [
                    {
                        "latency_ms": 10.0 * (i + 1),
                        "n_bot_messages": i % 4,
                        **({"handoff_queue": "billing", "state": "handed_off"} if i < 8 else {}),
                    }
                ],
            )
            for i in range(20)
        ],
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_wilson_t_and_woodruff_against_their_formulas(twenty, engine):
    card = score_production(twenty, Window(), ProductionKpiOptions(), engine)
    # Wilson (8 of 20: away from 0 and n, so no Poisson bound): centre (x + z^2/2)/(n + z^2), half-width
    # z/(n + z^2) sqrt(x(n - x)/n + z^2/4).
    x, n = 8, 20
    centre = (x + Z**2 / 2) / (n + Z**2)
    half = Z / (n + Z**2) * math.sqrt(x * (n - x) / n + Z**2 / 4)
    rate = kpi(card, "handoff_rate.v1")
    assert (rate.value, rate.method) == (0.4, "wilson")
    assert rate.low == pytest.approx(centre - half, abs=1e-12)
    assert rate.high == pytest.approx(centre + half, abs=1e-12)
    # Messages 0,1,2,3 five times each: mean 1.5, s^2 = (5 * (0+1+4+9) - 20 * 1.5^2)/19 = 25/19; t interval.
    mean = kpi(card, "messages_per_conversation.v1")
    spread = math.sqrt(25 / 19)
    t = stats.t.ppf(0.975, 19)
    assert mean.value == 1.5
    assert (mean.low, mean.high) == pytest.approx((1.5 - t * spread / math.sqrt(20), 1.5 + t * spread / math.sqrt(20)))
    # Latency p50: rank ceil(0.5*20) = 10 -> 100 ms. One turn per conversation: y_i in {0, 1}, m_i = 1, so
    # sum (y - p m)^2 = n p (1 - p), v = n/(n-1) n p(1-p), deff = n/(n-1): n_eff = 19 (t ratio 1: M = n).
    # Wilson of q = 0.5 on 19 trials, then ranks ceil(low * 20), ceil(high * 20).
    p50 = kpi(card, "server_latency_p50.v1")
    n_eff = 19
    centre = (0.5 * n_eff + Z**2 / 2) / (n_eff + Z**2)
    half = Z / (n_eff + Z**2) * math.sqrt(0.5 * 0.5 * n_eff + Z**2 / 4)
    low_rank, high_rank = math.ceil((centre - half) * 20), math.ceil((centre + half) * 20)
    assert (low_rank, high_rank) == (6, 15)
    assert (p50.value, p50.low, p50.high, p50.method) == (100.0, 60.0, 150.0, "woodruff (design effect)")


@pytest.mark.parametrize("engine", ENGINES)
def test_coverage_interval_equals_the_per_conversation_one(week_store, engine):
    # The engines send sums; the interval must equal the one from per-conversation counts (y, m):
    # c1 (1, 2), c2 (1, 1), c3 (1, 1), c4 (0, 1).
    card = score_production(week_store, WINDOW, ProductionKpiOptions(), engine)
    expected = intervals.clustered_proportion([1, 1, 1, 0], [2, 1, 1, 1])
    coverage = kpi(card, "coverage.v1")
    assert (coverage.low, coverage.high) == pytest.approx(expected, abs=1e-12)


def test_unknown_engine_and_bad_options(week_store):
    with pytest.raises(InputError, match="unknown engine"):
        score_production(week_store, WINDOW, ProductionKpiOptions(), "polars")
    with pytest.raises(InputError, match="repeat_contact"):
        ProductionKpiOptions(repeat_contact=timedelta(0))
