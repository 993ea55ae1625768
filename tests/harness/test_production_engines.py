"""The production KPIs give identical numbers on DuckDB, Spark (local mode) and the in-memory pandas path, on the
same random store: a few hundred conversations with nulls and every turn status, customers coming back, handoffs to
queues by rules, several days and weeks."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from harness.records.production import ProductionStore, Window, to_production_frame
from harness.records.table import TurnStatus
from harness.scoring.production import ProductionKpiOptions, score_production
from harness.scoring.production.spark import spark_session, stop_spark_session

STATUSES = [*TurnStatus, TurnStatus.ok, TurnStatus.ok, None]


def random_rows(conversations: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    base = datetime(2024, 3, 1, tzinfo=UTC)
    customers = [f"cust{i}" for i in range(30)]
    rows = []
    for i in range(conversations):
        start = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 24), microseconds=rng.choice([0, 1, 999_999]))
        customer = rng.choice([*customers, None, None, None])
        for j in range(rng.randint(1, 5)):
            rows.append(
                {
                    "conversation_id": f"conv{i:04d}",
                    "turn_index": j,
                    "status": None if (s := rng.choice(STATUSES)) is None else str(s),
                    "attempts": 1,
                    "fallback": rng.choice([True, False, None]),
                    "handoff_queue": rng.choice([None] * 10 + ["billing", "cards"]),
                    "handoff_rule": rng.choice([None] * 10 + ["asked_human", "low_confidence"]),
                    "state": rng.choice(["active"] * 6 + ["handed_off", None]),
                    "awaiting_reply": rng.choice([True, False, None]),
                    "n_bot_messages": rng.randint(0, 3),
                    # Integer milliseconds repeat (ties), halves do not; some turns carry none.
                    "latency_ms": rng.choice([None, float(rng.randint(50, 120)), rng.randint(50, 3000) + 0.5]),
                    "customer": customer,
                    "conversation_start": start,
                    "sent_at": start + timedelta(seconds=30 * j),
                    "source": "random",
                }
            )
    return rows


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ProductionStore:
    store = ProductionStore(tmp_path_factory.mktemp("engines") / "store")
    rows = random_rows(240, seed=15)
    store.append(to_production_frame(rows[: len(rows) // 2]), "first")
    store.append(to_production_frame(rows[len(rows) // 2 :]), "second")
    return store


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", {"spark.sql.shuffle.partitions": "2"})
    yield session
    stop_spark_session()


def as_table(card) -> dict:
    return {(k.name, k.breakdown, k.period, k.period_start): k for k in card.kpis}


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-300)


def test_duckdb_spark_and_pandas_agree(store, spark):
    # The window leaves days on both sides out: repeat contact must read the next conversations after it and the
    # newest start from the whole store.
    window = Window(date(2024, 3, 4), date(2024, 3, 17))
    options = ProductionKpiOptions(repeat_contact=timedelta(days=3))
    cards = {
        engine: score_production(store, window, options, engine, session=spark if engine == "spark" else None)
        for engine in ("pandas", "duckdb", "spark")
    }
    tables = {engine: as_table(card) for engine, card in cards.items()}
    reference = tables["pandas"]
    names = {key[0] for key in reference}
    assert len(names) == 10 and any(key[1] and key[1].startswith("rule=") for key in reference)
    assert {key[2] for key in reference} == {"all", "day", "week"}
    defined = [k for k in reference.values() if k.value is not None]
    assert len(defined) > 200
    for engine in ("duckdb", "spark"):
        assert set(tables[engine]) == set(reference), engine
        assert (cards[engine].first_day, cards[engine].last_day) == (
            cards["pandas"].first_day,
            cards["pandas"].last_day,
        )
        for key, expected in reference.items():
            got = tables[engine][key]
            assert got.n == expected.n, (engine, key)
            assert (got.method, got.undefined_reason) == (expected.method, expected.undefined_reason), (engine, key)
            for field in ("value", "low", "high"):
                assert same(getattr(got, field), getattr(expected, field)), (engine, key, field)
