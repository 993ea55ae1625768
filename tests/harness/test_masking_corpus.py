"""The masking benchmark's corpus as a CI check: no card number, IBAN, e-mail address or phone number leaks, and
under 2% of harmless numbers change (issue 14, item 9); and the scoring that judges it (evaluation.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InputError
from harness.masking import PLACEHOLDERS, mask, mask_turns, warm_up
from harness.masking.evaluation import (
    NUMBER_KINDS,
    Evaluation,
    evaluate,
    load_corpus,
    replaced_spans,
)

BENCH_DATA = Path(__file__).resolve().parents[2] / "bench" / "data"
CORPORA = [BENCH_DATA / "masking_corpus.yml", BENCH_DATA / "masking_corpus_heldout.yml"]


@pytest.fixture(scope="module", params=CORPORA, ids=lambda path: path.stem)
def evaluation(request: pytest.FixtureRequest) -> Evaluation:
    warm_up()
    return evaluate(load_corpus(request.param), mask_turns, PLACEHOLDERS)


def test_the_corpus_has_every_kind_and_enough_harmless_numbers() -> None:
    samples = load_corpus(CORPORA[0])
    strings = [s for s in samples if not s.dialog]
    harmless = [s for s in strings if not any(i.personal for i in s.items) and any(c.isdigit() for c in s.turns[0])]
    kinds = {i.kind for s in samples for i in s.items if i.personal}
    assert len(strings) >= 300 and len(harmless) >= 100
    assert kinds == set(PLACEHOLDERS)
    assert any(s.dialog and any(i.personal for i in s.items) for s in samples)


@pytest.mark.parametrize("kind", ["card", "iban", "email", "phone"])
def test_no_card_iban_email_or_phone_number_leaks(evaluation: Evaluation, kind: str) -> None:
    masked, total = evaluation.recall(kind)
    assert total > 0
    assert [(o.sample.location, o.text, o.output) for o in evaluation.leaks([kind])] == []


def test_under_two_percent_of_harmless_numbers_change(evaluation: Evaluation) -> None:
    changed, total = evaluation.over_masked(NUMBER_KINDS)
    assert changed / total < 0.02, [(o.sample.location, o.text, o.output) for o in evaluation.over_masks(NUMBER_KINDS)]


def test_masking_each_corpus_string_twice_changes_nothing() -> None:
    for sample in load_corpus(CORPORA[0]):
        for text in sample.turns:
            once = mask(text)
            assert mask(once) == once, text


def test_scoring_counts_leaks_and_over_masks() -> None:
    """A masking that keeps everything leaks every item; one that masks every digit over-masks every number."""
    samples = load_corpus(CORPORA[0])
    kept = evaluate(samples, lambda turns: turns, PLACEHOLDERS)
    assert kept.recall("card")[0] == 0 and kept.over_masked(NUMBER_KINDS)[0] == 0
    digits = evaluate(
        samples,
        lambda turns: ["".join("[account number]" if c.isdigit() else c for c in turn) for turn in turns],
        PLACEHOLDERS,
    )
    masked, total = digits.over_masked(NUMBER_KINDS)
    assert masked == total
    assert digits.recall("email")[0] < digits.recall("email")[1]  # letters stay readable: a leak
    assert digits.precision("account")[0] < digits.precision("account")[1]


def test_replaced_spans_are_recovered_from_the_output() -> None:
    assert replaced_spans("card 4111 and jo@x.com!", "card [card number] and [email]!", PLACEHOLDERS) == [
        (5, 9, "card"),
        (14, 22, "email"),
    ]
    with pytest.raises(ValueError, match="not"):
        replaced_spans("card 4111", "card 4112", PLACEHOLDERS)


def test_a_broken_corpus_reports_every_problem_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "corpus.yml"
    path.write_text(
        "version: 1\n"
        "strings:\n"
        "  - {text: 'card 4111', pii: [[crad, '4111']]}\n"
        "  - {text: 'card 4111', pii: [[card, '4112']]}\n"
        "dialogs:\n"
        "  - {turns: ['a'], keep: [[number, 3, 'a']]}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as error:
        load_corpus(path)
    assert error.value.problems == [
        f"{path}: strings[0]: pii crad '4111': unknown kind (one of card, iban, email, phone, sort_code, account, "
        "ssn, date_of_birth, name, address, postcode)",
        f"{path}: strings[1]: pii card '4112': not found in its text (or only overlapping another item)",
        f"{path}: dialogs[0]: keep number 'a': no turn 3",
    ]


def test_an_unknown_key_in_the_corpus_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "corpus.yml"
    path.write_text("version: 1\nstrings:\n  - {text: 'x', pi: []}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"strings\.0\.pi: Extra inputs are not permitted"):
        load_corpus(path)
