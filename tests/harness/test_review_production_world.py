"""A hand-built production store for the production review tests (no tests here): twenty real-looking
conversations over three days, as `harness logs import` stores them (texts already masked, labels empty).

| conversation  | day        | what happened                                  | label-free flag |
|---------------|------------|------------------------------------------------|-----------------|
| web:fraud     | 2026-11-02 | a fraud report answered as a balance at 0.27   | low_confidence  |
| web:handoff   | 2026-11-02 | handed to the general queue                    | none            |
| web:fallback  | 2026-11-03 | the bot did not understand                     | fallback        |
| web:long      | 2026-11-03 | nine bot messages; an e-mail address unmasked  | long_dialog     |
| web:repeat    | 2026-11-04 | the customer wrote the same thing twice        | repetition      |
| web:ok-00..14 | all three  | a clean balance check                          | none            |
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from review_world import FRAUD_MASKED

from harness.project.paths import ProjectPaths
from harness.records.production import ProductionStore, to_production_frame
from harness.review.config import ReviewConfig, load_review_config

DAYS = (date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4))
EMAIL = "jo.bloggs@example.com"
FLAGGED = {
    "web:fraud": ["low_confidence"],
    "web:fallback": ["fallback"],
    "web:long": ["long_dialog"],
    "web:repeat": ["repetition"],
}
CLEAN = [f"web:ok-{k:02d}" for k in range(15)]
DAY_OF = {
    "web:fraud": DAYS[0],
    "web:handoff": DAYS[0],
    "web:fallback": DAYS[1],
    "web:long": DAYS[1],
    "web:repeat": DAYS[2],
    **{cid: DAYS[k % 3] for k, cid in enumerate(CLEAN)},
}
ALL = sorted(DAY_OF)


def production_turn(cid: str, index: int, text: str, **values: Any) -> dict[str, Any]:
    """One stored production turn of conversation `cid` (started at 09:00 plus its number's minutes on its day)."""
    start = datetime.combine(DAY_OF[cid], datetime.min.time(), UTC) + timedelta(hours=9, minutes=ALL.index(cid))
    row: dict[str, Any] = {
        "conversation_id": cid,
        "turn_index": index,
        "text": text,
        "status": "ok",
        "attempts": 1,
        "n_bot_messages": 1,
        "bot_messages": '["Your balance is [amount]."]',
        "intent": "check_balance",
        "confidence": 0.92,
        "ranking": '[{"name": "check_balance", "confidence": 0.92}]',
        "fallback": False,
        "actions": '["action_check_balance"]',
        "slots_set": "{}",
        "state": "active",
        "latency_ms": 120.0,
        "source": "web",
        "customer": hashlib.sha256(cid.encode()).hexdigest()[:16],
        "sent_at": start + timedelta(seconds=40 * index),
        "conversation_start": start,
        "ended_by": "timeout",
        "awaiting_reply": False,
    }
    return row | values


def production_rows() -> list[dict[str, Any]]:
    rows = [
        production_turn(
            "web:fraud", 0, FRAUD_MASKED, confidence=0.27, ranking='[{"name": "check_balance", "confidence": 0.27}]'
        ),
        production_turn(
            "web:handoff",
            0,
            "I want to speak to a person",
            intent="human_handoff",
            bot_messages='["Putting you through to a colleague."]',
            handoff_queue="general",
            handoff_rule="bot_handoff",
            state="handed_off",
            ended_by="handoff",
        ),
        production_turn(
            "web:fallback",
            0,
            "blorp the thing",
            intent="nlu_fallback",
            confidence=0.2,
            fallback=True,
            awaiting_reply=True,
        ),
        production_turn(
            "web:long",
            0,
            f"change my email to {EMAIL}",
            intent="update_address",
            n_bot_messages=9,
            bot_messages='["' + '", "'.join(f"step {k}" for k in range(9)) + '"]',
        ),
        production_turn("web:repeat", 0, "my new card has not arrived yet"),
        production_turn("web:repeat", 1, "my new card has not arrived yet!!"),
    ]
    rows += [production_turn(cid, 0, "what's my balance please") for cid in CLEAN]
    return rows


def production_store(tmp_path: Path) -> ProductionStore:
    store = ProductionStore(tmp_path / "production")
    assert store.append(to_production_frame(production_rows()), "import-1") == len(ALL)
    return store


def review_config(tmp_path: Path, rate: float = 0.5, seed: int = 1) -> tuple[ReviewConfig, Path]:
    """The project's review configuration with the given sample and the repetition rule on characters only (no
    sentence encoder: the flags of the table above are exact); the settings and their file."""
    text = (ProjectPaths().experiments / "review.yml").read_text(encoding="utf-8")
    assert "meaning: 0.5, " in text and "rate: 0.1" in text and "seed: 1" in text
    text = text.replace("meaning: 0.5, ", "").replace("rate: 0.1", f"rate: {rate}").replace("seed: 1", f"seed: {seed}")
    path = tmp_path / f"review-{rate}-{seed}.yml"
    path.write_text(text, encoding="utf-8")
    return load_review_config(path), path


def in_sample(cid: str, rate: float = 0.5, seed: int = 1) -> bool:
    """The sample draw of a production conversation, written out: SHA-256 of (seed, "production", id) below the
    rate, the same in every window."""
    digest = hashlib.sha256(f"{seed}\0production\0{cid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate
