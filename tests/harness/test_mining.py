"""Mining not-understood turns: which turns count, clusters of similar wording, and the import-ready CSV."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from intent_project import project

from harness.project.intents import load_catalog
from harness.trainer.intent_import import read_csv
from harness.trainer.mining import candidates_csv, cluster_texts, mine, not_understood, proposed_name


def records(rows: list[tuple[str, int, str, str | None, bool, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "conversation_id": c,
                "turn_index": i,
                "text": t,
                "intent": intent,
                "fallback": fb,
                "active_form": form,
                "status": "ok",
            }
            for c, i, t, intent, fb, form in rows
        ]
    )


def test_fallbacks_and_out_of_scope_count_but_answers_to_the_bots_question_do_not() -> None:
    frame = records(
        [
            ("c1", 0, "I moved house", "update_address", False, "address_form"),
            ("c1", 1, "14 Park Road", "nlu_fallback", True, None),  # answer to the form's question
            ("c2", 0, "can I buy shares", "out_of_scope", False, None),
            ("c2", 1, "asdfgh", "nlu_fallback", True, None),
            ("c3", 0, "what's my balance", "check_balance", False, None),
        ]
    )
    assert not_understood(frame)["text"].tolist() == ["can I buy shares", "asdfgh"]


def test_clusters_group_close_vectors_most_representative_first_and_drop_singletons() -> None:
    vectors = np.array([[1.0, 0.0], [0.85, 0.35], [0.97, 0.15], [0.0, 1.0]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert cluster_texts(["a", "b", "c", "d"], vectors, distance_threshold=0.1) == [[2, 0, 1]]


def test_proposed_names_use_content_words_and_never_clash() -> None:
    assert proposed_name(["my mortgage rate", "mortgage rate please"], set()) == "candidate_mortgage_rate"
    assert proposed_name(["mortgage rate"], {"candidate_mortgage_rate"}) == "candidate_mortgage_rate_2"


def test_mined_clusters_become_an_importable_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    catalog = load_catalog(project(tmp_path) / "intents")
    frame = records(
        [
            ("c1", 0, "can I get a mortgage", "nlu_fallback", True, None),
            ("c2", 0, "I want a mortgage", "nlu_fallback", True, None),
            ("c3", 0, "mortgage for a house please", "out_of_scope", False, None),
            ("c4", 0, "what do you charge for overdrafts", "nlu_fallback", True, None),
            ("c5", 0, "how much is the overdraft fee", "nlu_fallback", True, None),
        ]
    )
    clusters, total = mine(frame, catalog, distance_threshold=0.6)
    assert total == 5
    by_intent = {c.proposed_intent: set(c.texts) for c in clusters}
    assert by_intent["fees"] == {"what do you charge for overdrafts", "how much is the overdraft fee"}
    new = next(c for c in clusters if c.proposed_intent == c.name)
    assert new.name.startswith("candidate_mortgage") and len(new.texts) == 3
    rows = read_csv(candidates_csv(clusters), "mined.csv")
    assert {(r.text, r.intent) for r in rows} == {(t, c.proposed_intent) for c in clusters for t in c.texts}
    assert io.StringIO(candidates_csv([])).read() == "text,intent,queue\n"
