"""The scorecard table: one row per review, a column per attribute in the scorecard's order, the verdict from
the critical errors' classes, and CSV cells a spreadsheet would run as formulas defused."""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd
import pytest

from harness.review.config import load_review_config
from harness.review.scorecard_table import ReviewRow, scorecard_frame, to_csv

SCORECARD = load_review_config().scorecard
WHEN = datetime(2026, 11, 22, 14, 5, 9)


def row(**fields: object) -> ReviewRow:
    base: dict[str, object] = {
        "run_id": "r1",
        "dialog_id": 7,
        "conversation_id": "cards-011",
        "eval_set": "cards",
        "intent": "card_lost_stolen",
        "flags": ["fallback", "repetition"],
        "sampled": False,
        "bot_outcome": "self_served",
        "analyst": "ann",
        "role": "analyst",
        "reference": False,
        "decides_verdict": True,
        "ratings": {"understood": "no", "tone": "good"},
        "critical_errors": [],
        "corrected_intents": {},
        "correct_outcome": "self_served",
        "note": "",
        "created_at": WHEN,
        "updated_at": WHEN,
    }
    return ReviewRow(**{**base, **fields})  # type: ignore[arg-type]


def test_one_row_per_review_with_a_column_per_attribute_in_scorecard_order() -> None:
    frame = scorecard_frame([row(), row(analyst="bob", decides_verdict=False)], SCORECARD)
    ratings = [c for c in frame.columns if c.startswith("rating:")]
    assert ratings == [f"rating:{a.name}" for a in SCORECARD.attributes]
    assert list(frame["analyst"]) == ["ann", "bob"]
    first = frame.iloc[0]
    assert (first["rating:understood"], first["rating:tone"], first["rating:resolved"]) == ("no", "good", "")
    assert (first["flags"], first["verdict"], first["outcome_agrees"]) == ("fallback repetition", "passed", True)
    assert first["created_at"] == "2026-11-22T14:05:09"


def test_any_critical_error_fails_the_review_and_its_classes_are_named() -> None:
    errors = ["fraud_not_escalated", "asked_for_secret", "wrong_queue"]  # business, compliance, business
    first = scorecard_frame([row(critical_errors=errors, correct_outcome="escalated:fraud")], SCORECARD).iloc[0]
    assert (first["verdict"], first["critical_classes"]) == ("failed", "business compliance")
    assert first["critical_errors"] == "fraud_not_escalated asked_for_secret wrong_queue"
    assert not first["outcome_agrees"]


def test_no_reviews_gives_the_header_only() -> None:
    text = to_csv(scorecard_frame([], SCORECARD))
    assert text.splitlines() == [text.splitlines()[0]] and text.startswith("run_id,dialog_id,conversation_id,")


@pytest.mark.parametrize("note", ["=1+1", "+44 7700 900123", "-2", "@SUM(A1)", "\tx"])
def test_cells_a_spreadsheet_would_run_are_defused(note: str) -> None:
    text = to_csv(scorecard_frame([row(note=note)], SCORECARD))
    assert pd.read_csv(io.StringIO(text), keep_default_na=False).iloc[0]["note"] == "'" + note


def test_ordinary_text_and_corrections_round_trip() -> None:
    note = 'said "block it", the bot replied with fees; second line\nof the note'
    frame = scorecard_frame([row(note=note, corrected_intents={"1": "card_lost_stolen"})], SCORECARD)
    back = pd.read_csv(io.StringIO(to_csv(frame)), keep_default_na=False).iloc[0]
    assert back["note"] == note and back["corrected_intents"] == '{"1": "card_lost_stolen"}'
