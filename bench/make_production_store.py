"""A synthetic production store (harness.records.production): the Parquet dataset `harness logs import` writes,
generated directly with a seeded generator, for scoring benchmarks at sizes a tracker store import would take too
long to build (10,000,000 turns).

    .venv/bin/python bench/make_production_store.py OUT_DIR [--turns 10000000] [--seed 15] [--days 30]

Rows have every column of `harness.records.production.ALL_COLUMNS`, filled as the importer fills them (labels empty,
`sender_id` null, a pseudonymous `customer`, masked texts with placeholders, JSON lists and mappings as text) with
the mix of bench/make_tracker_store.py: about 5.3 customer turns a conversation, about 19% of conversations handed
off (queue and rule of bot/escalation.yml; one in ten followed by a `silenced` turn), 5% fallback turns, forms
(`active_form`), 0.5% empty replies, server-side latencies, two models (a deployment on day 17), about 15% of
conversations by a customer seen in the previous days, endings of every kind (ENDINGS), `awaiting_reply` where the
bot waited. Written through `ProductionStore.append` in chunks of whole days (one Parquet file a day), so memory
stays bounded by a chunk (about 1,000,000 turns).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tracker_store import HOUR_PROFILE, MODELS, RESPONSES, TEXTS, TOPIC_QUEUE  # noqa: E402

from harness.records.production import ALL_COLUMNS, ProductionStore  # noqa: E402

SOURCE = "bench"
TURNS_PER_CONVERSATION = 5.3
P_HANDOFF = 0.19
P_SILENCED_AFTER_HANDOFF = 0.10
P_FALLBACK = 0.05
P_EMPTY = 0.005
P_REPEAT = 0.15
HANDOFFS = (  # (queue, rule, weight): the escalation policy's rules and queues
    ("fraud", "fraud_immediate", 5),
    ("complaints", "complaint_immediate", 3),
    ("general", "explicit_human_request", 6),
    ("accounts", "explicit_human_request", 1),
    ("cards", "explicit_human_request", 1),
    ("payments", "explicit_human_request", 1),
    ("general", "not_understood_twice", 1),
    ("cards", "not_understood_twice", 0.3),
    ("accounts", "failed_self_service", 0.2),
    ("cards", "failed_self_service", 0.2),
)
ENDINGS_MIX = (("timeout", 0.78), ("session_start", 0.12), ("session_end", 0.09), ("restart", 0.01))
FORMS = {
    "card_lost_stolen": "block_card_form",
    "card_activate": "activate_card_form",
    "update_address": "update_address_form",
}
MASKED = {  # masked customer texts (what the importer stores for texts with personal data)
    "card_declined": "my card was declined, card number [card number]",
    "statement_request": "I need a bank statement, email me at [email]",
    "request_human": "can I speak to a person. I'm Sarah Thompson, call me on [phone number]",
    "update_address": "[address]",
}


@dataclass
class Stats:
    turns: int = 0
    conversations: int = 0
    customers: int = 0
    days: int = 0
    files: int = 0
    seconds: float = 0.0
    bytes: int = 0


def _choice(rng: np.random.Generator, values: list[Any], size: int, weights: list[float] | None = None) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    p = None if weights is None else np.asarray(weights, dtype=float) / sum(weights)
    return array[rng.choice(len(values), size, p=p)]


def _chunk(
    rng: np.random.Generator, starts: np.ndarray, customers: np.ndarray, first_index: int, switch: float
) -> pd.DataFrame:
    """The production rows of conversations starting at `starts` (epoch seconds, sorted) of `customers`."""
    n = starts.size
    lengths = np.minimum(1 + rng.poisson(TURNS_PER_CONVERSATION - 1, n), 40)
    handoff = rng.random(n) < P_HANDOFF
    silenced_extra = handoff & (rng.random(n) < P_SILENCED_AFTER_HANDOFF) & (lengths > 1)
    conv = np.repeat(np.arange(n), lengths)
    total = conv.size
    offsets = np.cumsum(lengths) - lengths
    turn_index = np.arange(total) - np.repeat(offsets, lengths)
    last = turn_index == np.repeat(lengths, lengths) - 1
    handoff_turn = np.repeat(handoff & ~silenced_extra, lengths) & last
    handoff_turn |= np.repeat(silenced_extra, lengths) & (turn_index == np.repeat(lengths, lengths) - 2)
    silenced = np.repeat(silenced_extra, lengths) & last

    think = np.minimum(rng.lognormal(3.0, 0.8, total), 600.0)
    think[turn_index == 0] = 0.0
    sent = np.repeat(starts, lengths) + (
        np.cumsum(think) - np.repeat(np.cumsum(think)[offsets] - think[offsets], lengths)
    )
    pool = [*TOPIC_QUEUE, "greet", "thanks", "goodbye", "affirm", "inform", "out_of_scope"]
    pool += ["report_fraud", "complaint", "request_human", "nlu_fallback"]
    code = {name: i for i, name in enumerate(pool)}
    intent = rng.integers(0, len(pool) - 4, total)  # integer codes into `pool`; strings at the end
    intent[rng.random(total) < P_FALLBACK] = code["nlu_fallback"]
    weights = np.array([h[2] for h in HANDOFFS])
    handoff_pick = np.repeat(rng.choice(len(HANDOFFS), n, p=weights / weights.sum()), lengths)
    turn_queue = np.where(handoff_turn, np.array([h[0] for h in HANDOFFS], dtype=object)[handoff_pick], None)
    turn_rule = np.where(handoff_turn, np.array([h[1] for h in HANDOFFS], dtype=object)[handoff_pick], None)
    by_rule = np.array(
        [
            {"fraud_immediate": code["report_fraud"], "complaint_immediate": code["complaint"]}.get(
                h[1], code["request_human"] if h[1] == "explicit_human_request" else code["nlu_fallback"]
            )
            for h in HANDOFFS
        ]
    )
    intent = np.where(handoff_turn, by_rule[handoff_pick], intent)
    fallback = intent == code["nlu_fallback"]
    empty = (rng.random(total) < P_EMPTY) & ~handoff_turn & ~silenced
    status = np.where(silenced, "silenced", np.where(empty, "empty_reply", "ok")).astype(object)
    answered = status == "ok"

    text = np.empty(total, dtype=object)
    for name, number in code.items():
        where = np.flatnonzero(intent == number)
        choices = list(TEXTS.get(name if name != "nlu_fallback" else "unclear", ("ok",)))
        choices += [MASKED[name]] if name in MASKED else []
        text[where] = _choice(rng, choices, where.size)
    form_of = np.array([FORMS.get(name) for name in pool], dtype=object)
    form = form_of[intent]
    in_form = form != None  # noqa: E711
    replies = [
        RESPONSES["utter_fees"],
        RESPONSES["utter_rephrase"],
        RESPONSES["utter_ask_new_postcode"],
        RESPONSES["utter_you_are_welcome"],
        RESPONSES["utter_greet"],
        "A colleague from our team now has this conversation and will reply here. Your reference is [ref].",
    ]
    reply = np.zeros(total, dtype=np.int8)
    reply[fallback] = 1
    reply[in_form] = 2
    reply[intent == code["thanks"]] = 3
    reply[intent == code["greet"]] = 4
    reply[handoff_turn] = 5
    bot_messages = np.array([json.dumps([r]) for r in replies], dtype=object)[reply]
    bot_messages[~answered] = "[]"
    ticket = np.full(total, None, dtype=object)
    handed = np.flatnonzero(handoff_turn)
    ticket[handed] = [f"T-{first_index + int(i):012X}" for i in handed]
    actions = np.where(
        handoff_turn,
        '["action_escalate", "action_listen"]',
        np.where(fallback, '["action_not_understood", "action_listen"]', '["utter_fees", "action_listen"]'),
    ).astype(object)
    actions[~answered & ~handoff_turn] = "[]"
    slots_set = np.where(handoff_turn, '{"conversation_state": "handed_off"}', "{}").astype(object)
    state = np.where(handoff_turn | silenced, "handed_off", "active").astype(object)
    latency = np.where(answered, rng.gamma(2.0, 60.0, total), np.nan)
    confidence = np.where(fallback, 0.2, rng.uniform(0.45, 0.99, total))
    awaiting = answered & (fallback | in_form | (intent == code["thanks"]) | (intent == code["greet"]))
    intent = np.array(pool, dtype=object)[intent]

    ending_names = [e[0] for e in ENDINGS_MIX]
    ended = _choice(rng, ending_names, n, [e[1] for e in ENDINGS_MIX])
    ended[handoff] = "handoff"
    ids = np.arange(first_index, first_index + n)
    conversation_id = [
        f"{SOURCE}:{int(s * 1000)}:{((i + 1) * 2654435761) % 2**32:08x}"
        for s, i in zip(starts.tolist(), ids.tolist(), strict=True)
    ]
    customer = [f"{((c + 1) * 0x9E3779B97F4A7C15) % 2**64:016x}" for c in customers.tolist()]
    started = pd.to_datetime(np.repeat(starts, lengths), unit="s", utc=True)
    frame = pd.DataFrame(
        {
            "conversation_id": np.repeat(np.array(conversation_id, dtype=object), lengths),
            "turn_index": turn_index,
            "text": text,
            "status": status,
            "attempts": 1,
            "bot_messages": bot_messages,
            "n_bot_messages": answered.astype(int),
            "intent": np.where(silenced, None, intent),
            "confidence": np.where(silenced, np.nan, confidence),
            "ranking": np.where(silenced, None, '[{"name": "greet", "confidence": 0.5}]'),
            "fallback": np.where(silenced, False, fallback),
            "actions": actions,
            "slots_set": slots_set,
            "handoff_queue": turn_queue,
            "handoff_rule": turn_rule,
            "ticket_id": ticket,
            "state": state,
            "active_form": form,
            "latency_ms": latency,
            "model": np.where(np.repeat(starts, lengths) >= switch, MODELS[1], MODELS[0]),
            "source": SOURCE,
            "customer": np.repeat(np.array(customer, dtype=object), lengths),
            "sent_at": pd.to_datetime(sent, unit="s", utc=True),
            "conversation_start": started,
            "ended_by": np.repeat(ended, lengths),
            "awaiting_reply": awaiting,
        }
    )
    return frame.reindex(columns=list(ALL_COLUMNS))


def conversation_starts(conversations: int, start: datetime, days: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted epoch seconds: uniform days, a daytime hour profile."""
    day = rng.integers(0, days, conversations)
    hour = rng.choice(24, conversations, p=HOUR_PROFILE / HOUR_PROFILE.sum())
    seconds = np.sort(day * 86400.0 + hour * 3600.0 + rng.random(conversations) * 3600.0)
    return start.timestamp() + seconds


def generate(
    path: Path,
    turns: int = 10_000_000,
    seed: int = 15,
    start: datetime | None = None,
    days: int = 30,
    chunk_days: int = 3,
) -> Stats:
    """Write a new production store at `path` (its turns/ folder replaced) with about `turns` turns."""
    import shutil

    path = Path(path)
    shutil.rmtree(path / "turns", ignore_errors=True)
    (path / "state.json").unlink(missing_ok=True)
    start = start or datetime(2026, 10, 1, tzinfo=UTC)
    switch = (start + timedelta(days=17)).timestamp()
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    n = max(1, round(turns / TURNS_PER_CONVERSATION))
    starts = conversation_starts(n, start, days, rng)
    # customers: most conversations by a new customer, some by one seen in the previous ~5 days
    window = max(1, int(n / days * 5))
    customers = np.empty(n, dtype=np.int64)
    repeat = rng.random(n) < P_REPEAT
    back = rng.integers(1, window + 1, n)
    fresh = 0
    for i in range(n):
        if repeat[i] and i - back[i] >= 0:
            customers[i] = customers[i - back[i]]
        else:
            customers[i] = fresh
            fresh += 1
    store = ProductionStore(path)
    stats = Stats(customers=fresh)
    bounds = [start.timestamp() + d * 86400.0 for d in range(0, days + chunk_days, chunk_days)]
    for index, (low, high) in enumerate(zip(bounds, bounds[1:], strict=False)):
        lo, hi = np.searchsorted(starts, [low, high])
        if hi <= lo:
            continue
        frame = _chunk(rng, starts[lo:hi], customers[lo:hi], int(lo), switch)
        stats.conversations += store.append(frame, f"bench-{index:03d}")
        stats.turns += len(frame)
    files = list((path / "turns").rglob("*.parquet"))
    stats.files = len(files)
    stats.days = len(store.days())
    stats.bytes = sum(f.stat().st_size for f in files)
    stats.seconds = time.perf_counter() - began
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the production store folder to write (its turns/ replaced)")
    parser.add_argument("--turns", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", default="2026-10-01", help="first day (UTC)")
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    stats = generate(args.out, args.turns, args.seed, start, args.days)
    print(json.dumps(asdict(stats), indent=2))


if __name__ == "__main__":
    main()
