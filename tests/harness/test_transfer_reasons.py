"""The transfer-reasons report: handed-off conversations by rule, queue, topic intent and cluster, from a hand-built
production store, with counts, shares and intervals worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

import harness.embeddings
from harness.records.production import ProductionStore, Window, to_production_frame
from harness.trainer.transfer_reasons import (
    NO_TOPIC,
    TransferOptions,
    analyse,
    handoffs,
    markdown,
    transfer_reasons,
)


def row(conv: str, i: int, text: str, intent: str | None, day: str, **extra: object) -> dict[str, object]:
    start = datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)
    return {
        "conversation_id": conv,
        "turn_index": i,
        "text": text,
        "intent": intent,
        "fallback": intent == "nlu_fallback",
        "status": "ok",
        "state": "active",
        "conversation_start": start,
        "sent_at": start,
        "source": "test",
        "attempts": 1,
        "n_bot_messages": 1,
        **extra,
    }


def handed(queue: str | None, rule: str | None) -> dict[str, object]:
    return {"handoff_queue": queue, "handoff_rule": rule, "state": "handed_off"}


def store_with(tmp_path: Path) -> ProductionStore:
    rows = [
        # c1: card topic, then asks for a person: topic card_lost_stolen, reason text the card turn.
        row("c1", 0, "hello", "greet", "2026-01-10"),
        row("c1", 1, "my card is lost", "card_lost_stolen", "2026-01-10"),
        row("c1", 2, "get me a human", "request_human", "2026-01-10", **handed("cards", "explicit_human_request")),
        row("c1", 3, "hello? anyone", None, "2026-01-10", status="silenced", state="handed_off"),
        # c2: not understood twice: no topic (fallbacks), reason text the handoff turn.
        row("c2", 0, "blorp", "nlu_fallback", "2026-01-20"),
        row("c2", 1, "zzzz", "nlu_fallback", "2026-01-20", **handed("general", "not_understood_twice")),
        # c3: fraud at once.
        row("c3", 0, "someone took money", "report_fraud", "2026-02-03", **handed("fraud", "fraud_immediate")),
        # c4: a state-only handoff (the bot kind cannot say which queue or rule).
        row("c4", 0, "I lost my card", "card_lost_stolen", "2026-02-05"),
        row("c4", 1, "agent", "request_human", "2026-02-05", state="handed_off"),
        # c5, c6: never handed off.
        row("c5", 0, "balance", "check_balance", "2026-01-11"),
        row("c6", 0, "thanks", "thanks", "2026-02-11"),
    ]
    store = ProductionStore(tmp_path / "store")
    assert store.append(to_production_frame(rows), "t1") == 6
    return store


@pytest.fixture
def fake_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each text its own direction: no two texts cluster (the one clustering test uses the real model)."""

    def embed(texts: list[str]) -> np.ndarray:
        vectors = np.eye(max(len(texts), 1), 64)[: len(texts)]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    monkeypatch.setattr(harness.embeddings, "embed", embed)


def wilson(x: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    centre = (x + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(x * (n - x) / n + z * z / 4)
    return centre - half, centre + half


def test_handed_off_conversations_with_rule_queue_topic_and_reason_turn(tmp_path: Path) -> None:
    frame = store_with(tmp_path).read(Window())
    found = handoffs(frame, TransferOptions(not_topics=("nlu_fallback", "out_of_scope", "greet", "thanks")))
    by_id = found.set_index("conversation_id")
    assert sorted(by_id.index) == ["c1", "c2", "c3", "c4"]
    assert by_id.loc["c1", ["rule", "queue", "topic", "text"]].tolist() == [
        "explicit_human_request",
        "cards",
        "card_lost_stolen",
        "my card is lost",
    ]
    assert by_id.loc["c2", ["rule", "topic", "text"]].tolist() == ["not_understood_twice", NO_TOPIC, "zzzz"]
    assert by_id.loc["c3", ["topic", "text"]].tolist() == ["report_fraud", "someone took money"]
    assert by_id.loc["c4", ["rule", "queue", "topic", "text"]].tolist() == [
        "(unknown)",
        "(unknown)",
        "card_lost_stolen",
        "I lost my card",
    ]


def test_shares_intervals_and_trend_per_month(tmp_path: Path, fake_embeddings: None) -> None:
    report = transfer_reasons(store_with(tmp_path), Window(), None)
    # 6 conversations, 4 handed off; topics: card_lost_stolen 2 (c1, c4), report_fraud 1, none 1.
    assert (report.conversations, report.handed_off.count) == (6, 4)
    assert report.handed_off.value == pytest.approx(4 / 6)
    low, high = wilson(4, 6)  # 2 failures of 6: the exact Poisson bound replaces Wilson's upper end
    assert report.handed_off.low == pytest.approx(low)
    topics = {s.key: (s.count, s.n) for s in report.by_topic}
    assert topics == {"card_lost_stolen": (2, 4), "report_fraud": (1, 4), NO_TOPIC: (1, 4)}
    assert report.by_topic[0].key == "card_lost_stolen"
    queues = {s.key: s.count for s in report.by_queue}
    assert queues == {"cards": 1, "general": 1, "fraud": 1, "(unknown)": 1}
    assert {s.key: s.count for s in report.by_cluster} == {"(unclustered)": 4}
    # January: c1, c2, c5 (2 of 3 handed off); February: c3, c4, c6 (2 of 3); one quarter only.
    assert list(report.trend) == ["month"]
    months = report.trend["month"]
    assert [(p.period, p.conversations, p.handoff_rate.count) for p in months] == [
        ("2026-01", 3, 2),
        ("2026-02", 3, 2),
    ]
    assert {s.key: s.count for s in months[1].by_rule} == {"fraud_immediate": 1, "(unknown)": 1}
    text = markdown(report)
    assert "at least quarterly" in text and "| card_lost_stolen | 2 | 50.0% |" in text


def test_a_share_away_from_the_boundary_has_wilsons_interval(tmp_path: Path, fake_embeddings: None) -> None:
    rows = [
        row(f"h{i}", 0, f"text {i}", "fees", "2026-03-01", **handed("accounts" if i < 3 else "general", "r"))
        for i in range(6)
    ]
    store = ProductionStore(tmp_path / "s")
    store.append(to_production_frame(rows), "t")
    report = transfer_reasons(store, Window(), None)
    accounts = next(s for s in report.by_queue if s.key == "accounts")
    low, high = wilson(3, 6)
    assert (accounts.count, accounts.n) == (3, 6)
    assert (accounts.low, accounts.high) == (pytest.approx(low), pytest.approx(high))
    assert report.trend == {}


def test_last_turns_before_the_handoff_cluster_by_meaning(tmp_path: Path) -> None:
    from intent_project import project

    from harness.project.intents import load_catalog

    texts = ["I lost my debit card", "my card has been lost", "someone stole my bank card", "what is the fee for x"]
    rows = [
        row(f"c{i}", 0, t, "nlu_fallback", "2026-03-02", **handed("general", "not_understood_twice"))
        for i, t in enumerate(texts)
    ]
    catalog = load_catalog(project(tmp_path) / "intents")
    report = analyse(
        to_production_frame(rows).assign(day="2026-03-02"), catalog, TransferOptions(distance_threshold=0.5)
    )
    assert len(report.clusters) == 1
    cluster = report.clusters[0]
    assert (cluster.share.count, cluster.share.n) == (3, 4)
    assert set(cluster.representatives) == set(texts[:3]) and "card" in cluster.top_terms
    assert cluster.nearest_intent is not None
