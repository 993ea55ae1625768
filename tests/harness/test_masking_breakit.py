"""Masking faults found by the hostile test of the review app (breakit14): numbers before ` at <domain>` left half
readable, amounts read as e-mail addresses, overlapping findings dropped, cubic time on digit runs, digits and
separators in other Unicode forms, sort codes and cards written in ways the patterns missed, and over-masks."""

from __future__ import annotations

import pytest
from presidio_analyzer import RecognizerResult

from harness.masking import clear_cache, engine, find_pii, mask, warm_up
from harness.masking.recognizers import RegionalPhoneRecognizer


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    warm_up()


# H2: a number followed by ` at <domain>` lost only its last group to an e-mail placeholder.
AT_DOMAIN = [
    ("paid with 4556 7375 8689 9855 at amazon.co.uk", "paid with [card number] at amazon.co.uk"),
    ("IBAN GB33 BUKB 2020 1555 5555 55 at wise.com", "IBAN [IBAN] at wise.com"),
    ("send to DE89 3704 0044 0532 0130 00 at n26.com", "send to [IBAN] at n26.com"),
    ("my number is +44 7911 123456 at home.com", "my number is [phone number] at home.com"),
    ("call 07911 123456 at work.com", "call [phone number] at work.com"),
    ("sort code 20 45 67 at lloyds.co.uk", "sort code [sort code] at lloyds.co.uk"),
    ("card 4111111111111111 at ebay.com", "card [card number] at ebay.com"),  # mine
    ("account 41238976 at monzo.com", "account [account number] at monzo.com"),  # mine
]

# M3: amounts and references before `at <shop>.<tld>` are no e-mail local part.
AMOUNT_AT_SHOP = [
    "paid 49.99 at amazon.co.uk yesterday",
    "£5.99 at netflix.com every month",
    "got charged $1,299.99 at amazon.com",
    "spent 20 at argos.co.uk",
    "order 1234 at asos.com never came",
    "meet me at 5 at bbc.co.uk",
    "it was 12,50 at lidl.de",  # mine
]


@pytest.mark.parametrize(("text", "expected"), AT_DOMAIN)
def test_a_number_before_at_a_domain_is_masked_whole(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("text", AMOUNT_AT_SHOP)
def test_an_amount_or_reference_before_at_a_shop_stays(text: str) -> None:
    assert mask(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jo7 at gmail.com", "write to [email]"),  # letters and digits: still an address
        ("it's jo dot bloggs at gmail dot com", "it's [email]"),
        ("sarah_k at outlook.com please", "[email] please"),
    ],
)
def test_a_spelled_out_address_with_letters_is_still_masked(text: str, expected: str) -> None:
    assert mask(text) == expected


class _FixedAnalyzer:
    """An analyzer that returns the same findings for any text."""

    def __init__(self, results: list[RecognizerResult]) -> None:
        self.results = results

    def analyze(self, text: str, language: str) -> list[RecognizerResult]:
        return [RecognizerResult(r.entity_type, r.start, r.end, r.score) for r in self.results]


def test_overlapping_findings_are_masked_as_their_union_under_the_stronger_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever the recognisers find, no digit of a finding stays readable where a finding of an earlier kind
    overlaps it: the union is masked, with the earlier kind's placeholder."""
    text = "paid with 4556 7375 8689 9855 at amazon.co.uk ok"
    card = RecognizerResult("CREDIT_CARD", 10, 29, 1.0)
    email = RecognizerResult("EMAIL_ADDRESS", 25, 45, 0.5)
    monkeypatch.setattr(engine, "analyzer", lambda options: _FixedAnalyzer([card, email]))
    clear_cache()
    try:
        assert [(m.kind, m.start, m.end) for m in find_pii(text)] == [("email", 10, 45)]
        assert mask(text) == "paid with [email] ok"
    finally:
        clear_cache()


def test_three_overlapping_findings_merge_into_one(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "1111 2222 3333 4444"
    found = [
        RecognizerResult("PHONE_NUMBER", 5, 9, 1.0),  # 2222
        RecognizerResult("UK_ACCOUNT_NUMBER", 0, 7, 1.0),  # 1111 and half of 2222
        RecognizerResult("UK_SORT_CODE", 7, 14, 1.0),  # half of 2222 and 3333
        RecognizerResult("STREET_ADDRESS", 15, 19, 1.0),  # 4444, apart
    ]
    monkeypatch.setattr(engine, "analyzer", lambda options: _FixedAnalyzer(found))
    assert [(m.kind, m.start, m.end) for m in find_pii(text)] == [("phone", 0, 14), ("address", 15, 19)]


# M5: _longest_number sliced every part against every later part and counted the digits of each slice.
@pytest.mark.parametrize("n", [200, 2000])
def test_finding_phone_numbers_in_a_run_looks_at_each_character_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    """Candidates of 7 to 15 digits only, and the digits of each part counted once: linear in the run, not
    cubic (counting the digits of every slice from every part was the cause)."""
    import harness.masking.recognizers as recognizers

    recognizer = RegionalPhoneRecognizer()
    tried: list[str] = []
    counted = [0]
    real_digits_of = recognizers.digits_of

    def digits_of(text: str) -> str:
        counted[0] += len(text)
        return real_digits_of(text)

    def found_whole(number: str) -> bool:
        tried.append(number)
        return False

    monkeypatch.setattr(recognizer, "found_whole", found_whole)
    monkeypatch.setattr(recognizers, "digits_of", digits_of)
    text = "07 " * n
    assert recognizer._in_runs(text, []) == []
    # Two digits a part: the candidates starting at the first part have 4 to 7 parts (8 to 14 digits).
    assert tried == [text[: 3 * parts - 1] for parts in (7, 6, 5, 4)]
    assert counted[0] <= len(text)


def test_a_long_digit_heavy_text_is_masked_and_leaks_nothing() -> None:
    """20,000 characters of phone numbers, cards and short numbers: every phone number and card is masked (the
    time for this input is a row of bench/masking_bench.py, not a unit test)."""
    chunk = "07 07 07 call 07911 123456 card 4556 7375 8689 9855 then 12 "
    text = chunk * (20_000 // len(chunk) + 1)
    masked = mask(text)
    assert masked is not None
    assert "07911" not in masked and "123456" not in masked and "4556" not in masked and "9855" not in masked
    assert masked.count("[phone number]") == text.count("07911 123456")
    assert masked.count("[card number]") == text.count("4556 7375 8689 9855")


# M4: digits and separators in other Unicode forms, sort codes and glued cards.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card ４５５６７３７５８６８９９８５５", "card [card number]"),  # full-width digits
        ("card ٤٥٥٦٧٣٧٥٨٦٨٩٩٨٥٥", "card [card number]"),  # Arabic-Indic digits
        ("card 4556\u20137375\u20138689\u20139855", "card [card number]"),  # en dashes
        ("card 4556\u20147375\u20148689\u20149855", "card [card number]"),  # em dashes
        ("card 4556\u20117375\u20118689\u20119855", "card [card number]"),  # non-breaking hyphens
        ("call 07911\u2009123456", "call [phone number]"),  # thin space
        ("sort code 20\u201345\u201367", "sort code [sort code]"),
        ("sort code 204567", "sort code [sort code]"),
        ("s/c 204567", "s/c [sort code]"),
        ("s/c: 204567", "s/c: [sort code]"),
        ("sort code: 204567 account 41238976", "sort code: [sort code] account [account number]"),
        ("sc 204567 account 41238976", "sc [sort code] account [account number]"),
        ("sort code 20/45/67", "sort code [sort code]"),
        ("sort code 12/03/24", "sort code [sort code]"),  # a date shape, but the cue says sort code
        ("visa4556737586899855", "visa[card number]"),
        ("card:4556737586899855", "card:[card number]"),
        ("card number is 4 5 5 6 7 3 7 5 8 6 8 9 9 8 5 5", "card number is [card number]"),
    ],
)
def test_other_forms_of_digits_separators_sort_codes_and_cards_are_masked(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "paid on 12/03/24 at the branch",  # a date with slashes and no cue
        "i have 204567 points",  # six digits, no cue
        "model x4556737586899856 arrived",  # glued to a word, fails Luhn
        "score 4 5 5 6 7 3 7 5 8 6 8 9 9 8 5 6",  # single digits failing Luhn
        "costs ４９.９９ today",  # a full-width amount
    ],
)
def test_lookalikes_of_the_new_forms_stay(text: str) -> None:
    assert mask(text) == text


# L4: over-masks.
@pytest.mark.parametrize(
    "text",
    [
        "reference 12-34-56 from the letter",
        "ref 20-45-67 on the form",
        "phone bill of 45.00 went out twice on 03 04 2024",
        "my phone contract renewed 2024 03 04",
    ],
)
def test_a_reference_or_a_date_after_a_cue_stays(text: str) -> None:
    assert mask(text) == text


def test_pieces_across_turns_are_joined_only_up_to_the_digits_of_a_card(monkeypatch: pytest.MonkeyPatch) -> None:
    """400 short turns each ending in a number: from each turn, one try per later turn within 19 digits, not one
    per later turn of the whole run (that was quadratic in the turns, cubic in their digits)."""
    from harness.masking import turns

    tried = [0]
    real_kind = turns._kind

    def kind(texts: list[str | None], pieces: list[turns.Piece]) -> str | None:
        tried[0] += 1
        return real_kind(texts, pieces)

    monkeypatch.setattr(turns, "_kind", kind)
    texts: list[str | None] = ["ok 1"] * 400  # no card starts with 1; no cue for an account or phone number
    assert turns.split_numbers(texts) == []
    assert tried[0] <= 19 * len(texts)
