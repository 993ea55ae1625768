"""A review load masks each dialog's customer turns together: a card number sent four digits a message is masked
in every message before it reaches the database (harness/review/dialogs.py with harness.masking)."""

from __future__ import annotations

import pandas as pd
from records_factory import turn

from harness.records import to_frame
from harness.review.config import load_review_config
from harness.review.dialogs import build_dialogs
from harness.scoring.scored_run import ScoredRun

REVIEW = load_review_config()
# Without the sentence-embedding model (the repetition rule's meaning check), which these tests do not need.
NO_MODEL = REVIEW.model_copy(
    update={
        "flags": REVIEW.flags.model_copy(
            update={"repetition": REVIEW.flags.repetition.model_copy(update={"meaning": None})}
        )
    }
)
TEXTS = ["my card was stolen, the number is", "4111", "1111", "1111", "1111", "and my email is jo@example.com"]


def records(texts: list[str]) -> pd.DataFrame:
    rows = []
    for index, text in enumerate(texts):
        row = turn("split-card", index, "card_lost_stolen", "card_lost_stolen")
        # Low confidence flags the dialog for review.
        rows.append({**row, "text": text, "confidence": 0.1, "bot_messages": '["Thanks, 4111 1111 1111 1111?"]'})
    return to_frame(rows)


def test_a_card_number_split_across_turns_is_masked_in_the_stored_dialog() -> None:
    dialogs = build_dialogs(ScoredRun.from_records(records(TEXTS)), NO_MODEL)
    assert [d.conversation_id for d in dialogs] == ["split-card"]
    stored = dialogs[0].turns
    assert [t["text"] for t in stored] == [
        "my card was stolen, the number is",
        *["[card number]"] * 4,
        "and my email is [email]",
    ]
    assert all(t["bot_messages"] == ["Thanks, [card number]?"] for t in stored)
