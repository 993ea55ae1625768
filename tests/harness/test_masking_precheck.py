"""The exact pre-check that lets masking skip Presidio (`harness.masking.engine.may_find`): the same output with and
without it on the masking corpora and on production-like bot texts, and no analysis where nothing can be found."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import harness.masking as masking
from harness.masking import DEFAULT_OPTIONS, mask, mask_turns, warm_up
from harness.masking import engine as masking_engine
from harness.masking.evaluation import load_corpus

BENCH_DATA = Path(__file__).resolve().parents[2] / "bench" / "data"
CORPORA = [BENCH_DATA / "masking_corpus.yml", BENCH_DATA / "masking_corpus_heldout.yml"]

# Bot texts as a bank bot sends them (references and ticket ids with digits, short numbers), and edge cases:
# digits that are not personal data, an address needing one digit, a spelled-out e-mail, a long text (windows).
EXTRA = [
    "Your card ending 2964 is active now. You can use it straight away.",
    "Done: your Visa debit card ending 4821 is now blocked (reference BLK-35738B39).",
    "T-68D03D3C250F",
    "A colleague from our Billing team will reply here. Your ticket is T-4B579EA77DE2.",
    "4953",
    "I moved to 14 Elm Street last week",
    "write to jo dot bloggs at gmail dot com please",
    "meet me at the branch at 5",
    "gb82west12345698765432",
    "call me on 07911 123456",
    "ref 48213377 and 2 other things " * 100 + " my number is 07911 123456 and " + "nothing here " * 200,
    "x" * 2500 + " 4111 1111 1111 1111 " + "y" * 2500,
]


def corpus() -> Iterator[list[str]]:
    for path in CORPORA:
        for sample in load_corpus(path):
            yield list(sample.turns)
    for text in EXTRA:
        yield [text]


def _masked_all() -> list[object]:
    masking.clear_cache()
    out: list[object] = []
    for turns in corpus():
        out.append(mask_turns(turns))
        out.extend(mask(text) for text in turns)
    return out


def test_the_precheck_changes_no_output() -> None:
    warm_up()
    with_check = _masked_all()
    masking_engine.may_find.cache_clear()
    original = masking_engine._may_find_check
    masking_engine._may_find_check = lambda options: lambda text: True  # type: ignore[assignment]
    try:
        without = _masked_all()
    finally:
        masking_engine._may_find_check = original  # type: ignore[assignment]
        masking_engine.may_find.cache_clear()
        masking.clear_cache()
    assert len(with_check) > 1000
    assert with_check == without


def _calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    warm_up()
    analyzer = masking_engine.analyzer(DEFAULT_OPTIONS)
    seen: list[str] = []
    real: Callable[..., object] = analyzer.analyze

    def counted(*args: object, **kwargs: object) -> object:
        seen.append(str(kwargs.get("text")))
        return real(*args, **kwargs)

    monkeypatch.setattr(analyzer, "analyze", counted)
    masking.clear_cache()
    return seen


def test_text_that_no_recogniser_can_match_is_not_analysed(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _calls(monkeypatch)
    # 4 digits: no card (13+), phone (7+), account or sort code (6+); no street, IBAN shape, @ or spelled address.
    assert mask("Your card ending 2964 is active now.") == "Your card ending 2964 is active now."
    assert mask("4953") == "4953"
    assert seen == []
    # One digit and a street: analysed (and masked).
    assert mask("I moved to 14 Elm Street") == "I moved to [address]"
    assert seen == ["I moved to 14 Elm Street"]


def test_with_names_every_text_is_analysed() -> None:
    from harness.masking import MaskingOptions

    # spaCy's names are bounded by no pattern: the check must let everything through (built without loading spaCy).
    original = masking_engine.analyzer
    try:
        masking_engine.analyzer = lambda options=DEFAULT_OPTIONS: _WithNames()  # type: ignore[assignment,misc]
        check = masking_engine._may_find_check(MaskingOptions(names=True))
    finally:
        masking_engine.analyzer = original  # type: ignore[assignment]
    assert check("hello there") is True


class _WithNames:
    class registry:  # noqa: N801 - mimics AnalyzerEngine.registry
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer

        recognizers = [SpacyRecognizer(supported_entities=["PERSON"])]
