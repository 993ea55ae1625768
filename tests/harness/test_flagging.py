"""Flagging rules and the review sample on small hand-made runs whose flags are worked out here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from records_factory import turn

from harness.records import to_frame
from harness.review.config import FlagRules, Sample, load_review_config
from harness.review.flagging import RULES, Selection, conversation_facts, flags_of, in_sample, select
from harness.scoring.metrics import ScoringCore
from harness.scoring.scored_run import ScoredRun

DEFAULT = load_review_config().flags
NO_SAMPLE = Sample(rate=0.0, seed=1)
LABELLED_RULES = {"outcome_mismatch", "wrong_queue", "missed_escalation", "unnecessary_escalation"}


def rules_with(enabled: set[str], **settings: dict[str, Any]) -> FlagRules:
    """The default rules with only `enabled` switched on; `settings` override a rule's fields (e.g. its priority)."""
    updates = {}
    for name in RULES:
        rule = getattr(DEFAULT, name).model_copy(update={"enabled": name in enabled})
        updates[name] = rule.model_copy(update=settings.get(name, {}))
    return DEFAULT.model_copy(update=updates)


def only(name: str, **fields: Any) -> FlagRules:
    return rules_with({name}, **{name: fields})


NONE = rules_with(set())


def scored(rows: list[dict]) -> ScoringCore:
    """The run's scoring core, built once as the review load builds it (`ScoredRun`)."""
    core = ScoredRun.from_records(to_frame(rows)).core
    assert core is not None
    return core


def reasons(rows: list[dict], rules: FlagRules) -> dict[str, list[tuple[str, str]]]:
    """Every conversation of the run (flagged or not) with its (rule, reason) pairs."""
    return {
        cid: [(f.rule, f.reason) for f in flags_of(facts, rules)] for cid, facts in conversation_facts(scored(rows))
    }


def fired(rows: list[dict], name: str, **fields: Any) -> dict[str, list[str]]:
    """The reasons the one rule `name` gives per conversation (an empty list when it did not fire)."""
    return {cid: [reason for _, reason in pairs] for cid, pairs in reasons(rows, only(name, **fields)).items()}


def say(conversation: str, index: int, text: str, **kwargs: Any) -> dict:
    """A well-understood customer turn with the given text."""
    return {**turn(conversation, index, "inform", "inform", **kwargs), "text": text}


def test_default_rules_are_the_review_yml_ones() -> None:
    # The tests below lean on these defaults (threshold 0.3, 8 messages, similarity 0.85, meaning 0.5).
    assert (DEFAULT.low_confidence.below, DEFAULT.long_dialog.max_bot_messages) == (0.3, 8)
    assert (DEFAULT.repetition.similarity, DEFAULT.repetition.meaning) == (0.85, 0.5)
    assert all(getattr(DEFAULT, name).enabled for name in RULES)


# --- low_confidence ---------------------------------------------------------------------------------------------


def test_low_confidence_fires_per_turn_below_threshold() -> None:
    rows = [
        {**turn("L", 0, "fees", "fees"), "confidence": 0.25},
        turn("L", 1, "fees", "fees"),  # 0.9
        {**turn("L", 2, "check_balance", "check_balance"), "confidence": 0.12},
        {**turn("H", 0, "fees", "fees"), "confidence": 0.35},
    ]
    assert fired(rows, "low_confidence") == {
        "H": [],
        "L": [
            "turn 0: acted on fees at confidence 0.25 (below 0.30)",
            "turn 2: acted on check_balance at confidence 0.12 (below 0.30)",
        ],
    }


def test_a_fallback_turn_is_not_low_confidence() -> None:
    # The bot fell back at 0.10: it did not act on the intent, so only the fallback rule speaks for this turn.
    rows = [turn("F", 0, "fees", "fees"), {**turn("F", 1, "fees", "fees", fallback=True), "confidence": 0.10}]
    assert fired(rows, "low_confidence") == {"F": []}
    both = rules_with({"low_confidence", "fallback"})
    assert reasons(rows, both)["F"] == [("fallback", "turn 1: the bot did not understand (fallback)")]


def test_low_confidence_threshold_is_configurable() -> None:
    rows = [{**turn("M", 0, "fees", "fees"), "confidence": 0.45}]
    assert fired(rows, "low_confidence") == {"M": []}
    assert fired(rows, "low_confidence", below=0.5) == {"M": ["turn 0: acted on fees at confidence 0.45 (below 0.50)"]}


def test_low_confidence_ignores_turns_the_bot_did_not_answer() -> None:
    rows = [
        turn("T", 0, "fees", "fees"),
        {**turn("T", 1, "fees", "fees", status="timeout"), "confidence": 0.05},
    ]
    assert fired(rows, "low_confidence") == {"T": []}


# --- fallback ---------------------------------------------------------------------------------------------------


def test_fallback_lists_the_turns() -> None:
    rows = [
        turn("A", 0, "fees", "fees", fallback=True),
        turn("A", 1, "fees", "fees"),
        turn("A", 2, "fees", "fees", fallback=True),
        turn("A", 3, "fees", "fees"),
        turn("B", 0, "fees", "fees"),
        turn("B", 1, "fees", "fees", fallback=True),
        turn("C", 0, "fees", "fees"),
    ]
    assert fired(rows, "fallback") == {
        "A": ["turns 0, 2: the bot did not understand (fallback)"],
        "B": ["turn 1: the bot did not understand (fallback)"],
        "C": [],
    }


# --- outcome rules (need a label) -------------------------------------------------------------------------------

# Each conversation is one turn; its actual outcome follows harness.scoring.metrics.core.
OUTCOME_ROWS = [
    # Served as labelled.
    turn("ok_self", 0, "fees", "fees"),
    # Handed to fraud as labelled.
    turn("ok_fraud", 0, "report_fraud", "report_fraud", expected="escalated", queue="fraud", handoff="fraud"),
    # Handed to general, should have gone to payments.
    turn("wrong_q", 0, "transfer_status", "request_human", expected="escalated", queue="payments", handoff="general"),
    # Should have gone to fraud; the bot answered it itself (completed: self_served).
    turn("missed_kept", 0, "report_fraud", "fees", expected="escalated", queue="fraud"),
    # Should have gone to fraud; the bot fell back (abandoned).
    turn("missed_lost", 0, "report_fraud", "fees", expected="escalated", queue="fraud", fallback=True),
    # Should have been served; handed to general.
    turn("needless", 0, "fees", "request_human", handoff="general"),
    # Should have been served; the bot fell back (abandoned).
    turn("dropped", 0, "fees", "fees", fallback=True),
]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "outcome_mismatch",
            {
                "ok_self": [],
                "ok_fraud": [],
                "wrong_q": ["ended escalated:general, labelled escalated:payments"],
                "missed_kept": ["ended self_served, labelled escalated:fraud"],
                "missed_lost": ["ended abandoned, labelled escalated:fraud"],
                "needless": ["ended escalated:general, labelled self_served"],
                "dropped": ["ended abandoned, labelled self_served"],
            },
        ),
        (
            "wrong_queue",
            {
                "ok_self": [],
                "ok_fraud": [],
                "wrong_q": ["handed to general, should have gone to payments"],
                "missed_kept": [],
                "missed_lost": [],
                "needless": [],
                "dropped": [],
            },
        ),
        (
            "missed_escalation",
            {
                "ok_self": [],
                "ok_fraud": [],
                "wrong_q": [],
                "missed_kept": ["should have been handed to fraud, the bot kept it (self_served)"],
                "missed_lost": ["should have been handed to fraud, the bot kept it (abandoned)"],
                "needless": [],
                "dropped": [],
            },
        ),
        (
            "unnecessary_escalation",
            {
                "ok_self": [],
                "ok_fraud": [],
                "wrong_q": [],
                "missed_kept": [],
                "missed_lost": [],
                "needless": ["handed to general, the bot should have served it"],
                "dropped": [],
            },
        ),
    ],
)
def test_outcome_rules(rule: str, expected: dict[str, list[str]]) -> None:
    assert fired(OUTCOME_ROWS, rule) == expected


def unlabelled(row: dict) -> dict:
    """The same turn as it would come from production logs: no expected outcome, queue or resolvability."""
    return {**row, "expected_outcome": None, "expected_queue": None, "resolvable": None}


def test_rules_needing_a_label_skip_unlabelled_conversations() -> None:
    labelled = reasons(OUTCOME_ROWS, rules_with(LABELLED_RULES))
    production = reasons([unlabelled(r) for r in OUTCOME_ROWS], rules_with(LABELLED_RULES))
    assert {cid for cid, pairs in labelled.items() if pairs} == {
        "wrong_q",
        "missed_kept",
        "missed_lost",
        "needless",
        "dropped",
    }
    assert production == {cid: [] for cid in labelled}


def test_unlabelled_conversations_are_still_flagged_by_label_free_rules() -> None:
    rows = [unlabelled(turn("P", 0, "fees", "fees", fallback=True)), turn("Q", 0, "fees", "fees", fallback=True)]
    got = reasons(rows, DEFAULT)
    assert got["P"] == [("fallback", "turn 0: the bot did not understand (fallback)")]
    # The labelled twin also ends abandoned against its self_served label.
    assert got["Q"] == [*got["P"], ("outcome_mismatch", "ended abandoned, labelled self_served")]


def test_selection_of_production_logs() -> None:
    rows = [unlabelled(turn("P", 0, "fees", "request_human", handoff="general", fallback=True))]
    [chosen] = select(scored(rows), DEFAULT, NO_SAMPLE)
    assert [f.rule for f in chosen.flags] == ["fallback"] and chosen.priority == DEFAULT.fallback.priority


# --- long_dialog ------------------------------------------------------------------------------------------------


def test_long_dialog_fires_above_the_limit() -> None:
    rows = [
        turn("at", 0, "fees", "fees", messages=5),
        turn("at", 1, "fees", "fees", messages=3),
        turn("over", 0, "fees", "fees", messages=5),
        turn("over", 1, "fees", "fees", messages=4),
    ]
    assert fired(rows, "long_dialog") == {"at": [], "over": ["9 bot messages (more than 8)"]}
    assert fired(rows, "long_dialog", max_bot_messages=7) == {
        "at": ["8 bot messages (more than 7)"],
        "over": ["9 bot messages (more than 7)"],
    }


# --- repetition -------------------------------------------------------------------------------------------------


def test_repetition_fires_on_similar_customer_turns() -> None:
    rows = [
        say("R", 0, "I want to block my card"),
        say("R", 1, "yes"),
        say("R", 2, "i want to BLOCK my card!"),
        say("S", 0, "I want to block my card"),
        say("S", 1, "where is my money transfer"),
    ]
    assert fired(rows, "repetition") == {
        "R": ["turns 0 and 2: the customer repeated themselves (similarity 1.00)"],
        "S": [],
    }


@pytest.mark.parametrize("text", ["yes", "no thanks"])
def test_short_turns_repeat_without_firing(text: str) -> None:
    rows = [say("Y", 0, text), say("Y", 1, "I lost my card"), say("Y", 2, text)]
    assert fired(rows, "repetition") == {"Y": []}


def test_repetition_threshold_is_configurable() -> None:
    # "i lost my card yesterday" vs "i lost my card": character ratio 2 * 14 / 38 = 0.74.
    rows = [say("Z", 0, "I lost my card yesterday"), say("Z", 1, "I lost my card.")]
    assert fired(rows, "repetition") == {"Z": []}
    assert fired(rows, "repetition", similarity=0.7) == {
        "Z": ["turns 0 and 1: the customer repeated themselves (similarity 0.74)"]
    }


def test_repetition_ignores_turns_without_text_and_turns_not_sent() -> None:
    rows = [
        say("N", 0, "I want to block my card"),
        {**say("N", 1, "x"), "text": None},
        say("N", 2, "I want to block my card", handoff="cards"),
        {**turn("N", 3, "inform", status="not_sent"), "text": "I want to block my card"},
    ]
    assert fired(rows, "repetition") == {"N": ["turns 0 and 2: the customer repeated themselves (similarity 1.00)"]}


class TableEncoder:
    """A stand-in sentence encoder: each text's unit vector is written out here, so cosines are worked out by hand.
    Records every call, to check the run is encoded once, in one batch."""

    VECTORS = {
        "I want to stop my card": (1.0, 0.0),
        "can you block my debit card please": (0.6, 0.8),  # cosine with the first: 0.60
        "where is my money transfer": (0.0, 1.0),  # cosine with the first: 0.00
        "has my salary arrived yet": (0.0, -1.0),
    }

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(texts)
        return np.array([self.VECTORS[text] for text in texts])


def repetition_reasons(selections: list[Selection]) -> dict[str, list[str]]:
    return {s.conversation_id: [f.reason for f in s.flags if f.rule == "repetition"] for s in selections}


def test_with_an_encoder_a_rephrasing_is_flagged_by_meaning() -> None:
    rows = [
        say("P", 0, "I want to stop my card"),
        say("P", 1, "can you block my debit card please"),
        say("Q", 0, "I want to stop my card"),
        say("Q", 1, "where is my money transfer"),
        say("Q", 2, "has my salary arrived yet"),  # cosine -1 with the transfer: opposite, not alike
    ]
    encoder = TableEncoder()
    chosen = select(scored(rows), only("repetition"), NO_SAMPLE, encoder=encoder)
    assert repetition_reasons(chosen) == {"P": ["turns 0 and 1: the customer rephrased (meaning similarity 0.60)"]}
    assert len(encoder.calls) == 1 and sorted(encoder.calls[0]) == sorted(TableEncoder.VECTORS)
    stricter = select(scored(rows), only("repetition", meaning=0.61), NO_SAMPLE, encoder=TableEncoder())
    assert stricter == []


def test_without_an_encoder_or_with_meaning_off_only_repeats_count() -> None:
    rows = [say("P", 0, "I want to stop my card"), say("P", 1, "can you block my debit card please")]
    assert select(scored(rows), only("repetition"), NO_SAMPLE) == []
    encoder = TableEncoder()
    assert select(scored(rows), only("repetition", meaning=None), NO_SAMPLE, encoder=encoder) == []
    assert encoder.calls == [], "with the meaning check off, nothing is encoded"


def test_a_repeat_is_reported_as_a_repeat_even_when_the_meaning_matches_too() -> None:
    rows = [say("R", 0, "I want to stop my card"), say("R", 1, "i want to STOP my card!")]
    encoder = TableEncoder()
    encoder.VECTORS = {**TableEncoder.VECTORS, "i want to STOP my card!": (1.0, 0.0)}
    assert repetition_reasons(select(scored(rows), only("repetition"), NO_SAMPLE, encoder=encoder)) == {
        "R": ["turns 0 and 1: the customer repeated themselves (similarity 1.00)"]
    }


def test_the_minilm_encoder_finds_a_rephrasing_that_shares_few_characters() -> None:
    from harness.embeddings import embed

    rows = [
        say("P", 0, "I want to stop my card"),
        say("P", 1, "can you block my debit card please"),
        say("Q", 0, "what's my current balance"),
        say("Q", 1, "show me my last five transactions"),
    ]
    assert fired(rows, "repetition") == {"P": [], "Q": []}, "too few characters in common for a repeat"
    reasons = repetition_reasons(select(scored(rows), only("repetition"), NO_SAMPLE, encoder=embed))
    assert list(reasons) == ["P"] and reasons["P"][0].startswith("turns 0 and 1: the customer rephrased")


# --- critical_tag -----------------------------------------------------------------------------------------------


def test_critical_tag() -> None:
    rows = [
        {**turn("text", 0, "fees", "fees"), "critical": "card blocked without consent"},
        {**turn("tag", 0, "fees", "fees"), "tags": '["fraud", "critical"]'},
        {**turn("both", 0, "fees", "fees"), "tags": '["critical"]', "critical": "fraud"},
        {**turn("neither", 0, "fees", "fees"), "tags": '["fraud", "criticality"]'},
    ]
    assert fired(rows, "critical_tag") == {
        "both": ["marked critical: fraud"],
        "neither": [],
        "tag": ["tagged critical"],
        "text": ["marked critical: card blocked without consent"],
    }


# --- every rule at once, and disabled rules ---------------------------------------------------------------------

BAD_RUN = [
    # Served-by-the-bot case gone wrong in every label-free way, then needlessly handed to general.
    {**say("X", 0, "I want to see my card fees please"), "confidence": 0.2, "critical": "fees misquoted"},
    say("X", 1, "i want to see my card fees please!!", fallback=True),
    say("X", 2, "talk to a human now", handoff="general", messages=9),
    turn("Y", 0, "transfer_status", "request_human", expected="escalated", queue="payments", handoff="general"),
    turn("Z", 0, "report_fraud", "fees", expected="escalated", queue="fraud"),
]


def fired_rules(rows: list[dict], rules: FlagRules) -> dict[str, set[str]]:
    return {cid: {rule for rule, _ in pairs} for cid, pairs in reasons(rows, rules).items()}


def test_bad_run_fires_every_rule() -> None:
    assert fired_rules(BAD_RUN, DEFAULT) == {
        "X": {
            "low_confidence",
            "fallback",
            "outcome_mismatch",
            "unnecessary_escalation",
            "long_dialog",
            "repetition",
            "critical_tag",
        },
        "Y": {"outcome_mismatch", "wrong_queue"},
        "Z": {"outcome_mismatch", "missed_escalation"},
    }


@pytest.mark.parametrize("name", list(RULES))
def test_a_disabled_rule_does_not_fire(name: str) -> None:
    everything = fired_rules(BAD_RUN, DEFAULT)
    without = fired_rules(BAD_RUN, rules_with(set(RULES) - {name}))
    assert without == {cid: names - {name} for cid, names in everything.items()}
    assert any(name in names for names in everything.values())


def test_no_rule_enabled_flags_nothing() -> None:
    assert fired_rules(BAD_RUN, NONE) == {"X": set(), "Y": set(), "Z": set()}
    assert select(scored(BAD_RUN), NONE, NO_SAMPLE) == []


def test_production_version_of_the_bad_run() -> None:
    assert fired_rules([unlabelled(r) for r in BAD_RUN], DEFAULT) == {
        "X": {"low_confidence", "fallback", "long_dialog", "repetition", "critical_tag"},
        "Y": set(),
        "Z": set(),
    }


# --- select -----------------------------------------------------------------------------------------------------


def test_priority_sums_the_distinct_rules_that_fired() -> None:
    rules = rules_with({"low_confidence", "fallback"}, low_confidence={"priority": 3}, fallback={"priority": 5})
    rows = [
        {**turn("P", 0, "fees", "fees"), "confidence": 0.1},
        {**turn("P", 1, "fees", "fees"), "confidence": 0.2},
        turn("P", 2, "fees", "fees", fallback=True),
        turn("P", 3, "fees", "fees"),
    ]
    [chosen] = select(scored(rows), rules, NO_SAMPLE)
    # Three flags, two rules: 3 + 5, not 3 + 3 + 5.
    assert [f.rule for f in chosen.flags] == ["low_confidence", "low_confidence", "fallback"]
    assert (chosen.conversation_id, chosen.priority, chosen.sampled) == ("P", 8, False)


ORDER_RUN = [
    turn("e", 0, "fees", "fees"),
    turn("a", 0, "fees", "fees", fallback=True),
    {**turn("c", 0, "fees", "fees"), "critical": "c"},
    {**turn("b", 0, "fees", "fees"), "critical": "b"},
    {**turn("d", 0, "fees", "fees", fallback=True), "critical": "d"},
]
ORDER_RULES = rules_with({"fallback", "critical_tag"}, fallback={"priority": 2}, critical_tag={"priority": 5})


def test_select_orders_by_priority_then_id_and_returns_only_flagged() -> None:
    chosen = select(scored(ORDER_RUN), ORDER_RULES, NO_SAMPLE)
    assert [(s.conversation_id, s.priority, s.sampled) for s in chosen] == [
        ("d", 7, False),
        ("b", 5, False),
        ("c", 5, False),
        ("a", 2, False),
    ]


def test_select_returns_sampled_conversations_without_flags() -> None:
    chosen = select(scored(ORDER_RUN), ORDER_RULES, Sample(rate=1.0, seed=1))
    assert [(s.conversation_id, s.priority, s.sampled) for s in chosen] == [
        ("d", 7, True),
        ("b", 5, True),
        ("c", 5, True),
        ("a", 2, True),
        ("e", 0, True),
    ]
    assert chosen[-1] == Selection("e", (), 0, True)


def test_select_on_an_empty_run() -> None:
    assert select(scored([]), DEFAULT, Sample(rate=1.0)) == []


# --- the sample -------------------------------------------------------------------------------------------------

IDS = [f"conv-{i:04d}" for i in range(2000)]


def sampled_ids(sample: Sample, run_id: str = "r", ids: list[str] = IDS) -> set[str]:
    return {cid for cid in ids if in_sample(run_id, cid, sample)}


def test_sample_is_deterministic_for_the_same_seed() -> None:
    first = sampled_ids(Sample(rate=0.1, seed=7))
    assert first and first == sampled_ids(Sample(rate=0.1, seed=7))


def test_different_seeds_give_different_samples() -> None:
    one, two = sampled_ids(Sample(rate=0.1, seed=1)), sampled_ids(Sample(rate=0.1, seed=2))
    # Independent draws overlap in about a tenth of each sample, not in most of it.
    assert one != two and len(one & two) < len(one) / 2


def test_different_runs_give_different_samples() -> None:
    sample = Sample(rate=0.1, seed=1)
    assert sampled_ids(sample, "run-1") != sampled_ids(sample, "run-2")


@pytest.mark.parametrize(("rate", "expected"), [(0.0, set()), (1.0, set(IDS))])
def test_rate_zero_samples_none_and_one_samples_all(rate: float, expected: set[str]) -> None:
    assert sampled_ids(Sample(rate=rate, seed=3)) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("rate", "tolerance"), [(0.1, 0.03), (0.5, 0.05)])
def test_sampled_share_is_close_to_the_rate(rate: float, tolerance: float, seed: int) -> None:
    # 2000 draws: the binomial standard deviation is 0.0067 at 0.1 and 0.011 at 0.5; tolerances are ~4.5 of them.
    share = len(sampled_ids(Sample(rate=rate, seed=seed))) / len(IDS)
    assert abs(share - rate) <= tolerance


def synthetic_run(conversations: int) -> ScoringCore:
    """`conversations` one-turn conversations; every third one falls back (flagged), the others are clean."""
    return scored([turn(f"c{i:03d}", 0, "fees", "fees", fallback=i % 3 == 0) for i in range(conversations)])


def test_sampling_is_independent_of_flags() -> None:
    core, sample = synthetic_run(300), Sample(rate=0.3, seed=5)
    flagged = {f"c{i:03d}" for i in range(0, 300, 3)}
    with_flags = select(core, DEFAULT, sample)
    without_flags = select(core, NONE, sample)
    sampled = {s.conversation_id for s in with_flags if s.sampled}
    assert all(s.sampled and not s.flags for s in without_flags)
    assert {s.conversation_id for s in without_flags} == sampled
    assert sampled == sampled_ids(sample, "r", [f"c{i:03d}" for i in range(300)])
    # The sample holds flagged and clean conversations alike, and every flagged one is selected.
    assert sampled & flagged and sampled - flagged
    assert {s.conversation_id for s in with_flags} == flagged | sampled


def test_adding_conversations_does_not_reshuffle_the_sample() -> None:
    sample = Sample(rate=0.3, seed=5)
    small = {s.conversation_id for s in select(synthetic_run(100), NONE, sample)}
    large = {s.conversation_id for s in select(synthetic_run(300), NONE, sample)}
    assert small and small == {cid for cid in large if int(cid[1:]) < 100}
