"""Mask personal data in dialog text before it is stored for QA review, shown or exported.

Customers of a UK retail bank type card numbers, IBANs, account numbers, sort codes, phone numbers and e-mail
addresses into the chat. None of that is needed to judge the bot's decisions, and COPC asks contact centres to
protect customer data in everything their tooling stores, so every dialog passes through `mask_turns` (the
customer's turns), `mask` (other text) or `mask_value` (slots and structured bot messages) first. Each item
found is replaced by a readable placeholder from `PLACEHOLDERS`; everything else is kept byte for byte.

Microsoft Presidio finds them (`engine.py`): its own recognisers for card numbers (Luhn check), IBANs (ISO 13616
check digits), e-mail addresses and phone numbers (the `phonenumbers` library, over the regions in
`recognizers.PHONE_REGIONS`), and ours where it has none (`recognizers.py`: UK sort codes and account numbers,
street addresses with a house number, cards grouped with other separators, lowercase IBANs, spelled-out e-mail
addresses; `turns.py`: numbers sent in pieces across turns). Presidio's anonymizer puts the placeholders in.
Where findings overlap, the kind earlier in `options.ENTITY_KINDS` wins (an IBAN's digits are not also a card
number).

Left alone on purpose: money amounts, dates, times, timestamps, references, postcodes, towns and short numbers
such as the last four digits of a card, which QA needs to follow the conversation. People's names are masked
only with `MaskingOptions(names=True)` (spaCy's small English NER model): on bench/data/masking_corpus.yml and the
baseline run it masks too many words QA needs to be the default (bench/results/masking.md).
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from harness.review.masking.options import DEFAULT_OPTIONS, ENTITY_KINDS, PLACEHOLDER, PLACEHOLDERS, MaskingOptions

if TYPE_CHECKING:
    from presidio_analyzer import RecognizerResult

__all__ = [
    "PLACEHOLDERS",
    "MaskingOptions",
    "PiiMatch",
    "clear_cache",
    "find_pii",
    "mask",
    "mask_turns",
    "mask_value",
    "warm_up",
]


_PRECEDENCE: Final = {entity: rank for rank, entity in enumerate(ENTITY_KINDS)}
# Every pattern kind needs a digit (a house number for addresses), an @ or a spelled-out "at": text without
# any is returned as it is.
_MAYBE_PATTERN_PII: Final = re.compile(r"\d|@|(?<![^\W\d_])at(?![^\W\d_])", re.IGNORECASE)
_MAX_ROUNDS: Final = 4


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """One piece of personal data: its kind (a key of `PLACEHOLDERS`) and its span in the text."""

    kind: str
    start: int
    end: int


@contextmanager
def _hidden(*names: str) -> Iterator[None]:
    """Modules not imported yet look absent inside the block, and are importable again after it."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # a None entry makes `import name` raise ImportError
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name) is None:
                del sys.modules[name]


@dataclass(frozen=True, slots=True)
class _Presidio:
    """What masking needs from Presidio, imported on first use."""

    engine: ModuleType
    """harness.review.masking.engine: the analyzer, built once per options."""
    turns: ModuleType
    """harness.review.masking.turns: numbers sent in pieces (uses our Presidio recognisers)."""
    anonymizer: Any
    operators: dict[str, Any]
    """Presidio entity -> the operator replacing it with its placeholder."""


_LOADING = threading.Lock()  # two first calls at once: one imports, the other waits for it


@lru_cache(maxsize=1)
def _presidio() -> _Presidio:
    """Presidio, imported on first use: importing this module stays quick for the review app and the CLI.

    Presidio imports Hugging Face `transformers`, and spaCy's `thinc` imports `torch`, whenever they are
    installed (the harness has them for MiniLM embeddings), for NLP engines masking never uses: about 9 s of a
    12 s import on 2 cores. Both are hidden while Presidio is imported, unless something imported them
    already, and stay importable for the rest of the process."""
    with _LOADING, _hidden("transformers", "torch"):
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig

        from harness.review.masking import engine, turns

    operators = {
        entity: OperatorConfig("replace", {"new_value": PLACEHOLDERS[kind]}) for entity, kind in ENTITY_KINDS.items()
    }
    return _Presidio(engine, turns, AnonymizerEngine(), operators)


def warm_up(options: MaskingOptions = DEFAULT_OPTIONS) -> None:
    """Import Presidio and build the analyzer for `options` now rather than on the first text masked."""
    _presidio().engine.analyzer(options)


def _findings(text: str, options: MaskingOptions) -> list[RecognizerResult]:
    """Presidio's findings in `text`, overlaps resolved: by precedence of kind, then the longer, then the
    earlier; in order of position. Placeholders already in the text are never part of a finding."""
    if not options.names and not _MAYBE_PATTERN_PII.search(text):
        return []
    found = _presidio().engine.analyzer(options).analyze(text=text, language="en")
    results = [result for result in found if result.entity_type in _PRECEDENCE]
    results.sort(key=lambda r: (_PRECEDENCE[r.entity_type], r.start - r.end, r.start))
    taken = [(match.start(), match.end()) for match in PLACEHOLDER.finditer(text)]
    chosen: list[RecognizerResult] = []
    for result in results:
        if all(result.end <= start or end <= result.start for start, end in taken):
            chosen.append(result)
            taken.append((result.start, result.end))
    return sorted(chosen, key=lambda r: r.start)


def find_pii(text: str, options: MaskingOptions = DEFAULT_OPTIONS) -> list[PiiMatch]:
    """The personal data in `text` (one pass), non-overlapping and in order of position."""
    return [PiiMatch(ENTITY_KINDS[r.entity_type], r.start, r.end) for r in _findings(text, options)]


def _mask_once(text: str, options: MaskingOptions) -> str:
    findings = _findings(text, options)
    if not findings:
        return text
    presidio = _presidio()
    masked = presidio.anonymizer.anonymize(text, findings, presidio.operators, merge_entities_with_spaces=False)
    return str(masked.text)


@lru_cache(maxsize=16384)
def _mask(text: str, options: MaskingOptions) -> str:
    """Passes repeat until one changes nothing (at most four): a finding dropped for overlapping a neighbour of
    higher precedence is looked at again once the neighbour is a placeholder. So `mask(mask(x)) == mask(x)`.
    Cached: bot messages and short customer replies repeat across dialogs."""
    for _ in range(_MAX_ROUNDS):
        masked = _mask_once(text, options)
        if masked == text:
            break
        text = masked
    return text


def clear_cache() -> None:
    """Forget masked strings (for timing cold runs); the analyzer stays built."""
    _mask.cache_clear()


def mask(text: str | None, options: MaskingOptions = DEFAULT_OPTIONS) -> str | None:
    """`text` with each piece of personal data replaced by its placeholder; None and "" stay as they are."""
    if not text:
        return text
    return _mask(text, options)


def mask_turns(texts: Sequence[str | None], options: MaskingOptions = DEFAULT_OPTIONS) -> list[str | None]:
    """The customer's turns of one dialog, in order, each masked; a card, account or phone number sent in pieces
    over consecutive turns (`4198`, `3444`, `1747`, `6617`) has every piece masked. Same length as `texts`."""
    pieces = _presidio().turns.split_numbers(texts)
    masked = list(texts)
    for piece in sorted(pieces, key=lambda p: p.start, reverse=True):
        text = masked[piece.turn] or ""
        masked[piece.turn] = text[: piece.start] + PLACEHOLDERS[piece.kind] + text[piece.end :]
    return [mask(text, options) for text in masked]


T = TypeVar("T")


def mask_value(value: T, options: MaskingOptions = DEFAULT_OPTIONS) -> T:
    """Mask every string inside `value`, looking into dicts (values only), lists and tuples. An integer that is
    personal data written as a number (a slot holding an account number) becomes its placeholder; other numbers,
    booleans, None and keys are returned unchanged."""
    if isinstance(value, str):
        return cast(T, mask(value, options))
    if isinstance(value, int) and not isinstance(value, bool):
        masked = mask(str(value), options)
        return cast(T, masked if masked != str(value) else value)
    if isinstance(value, dict):
        return cast(T, {key: mask_value(item, options) for key, item in value.items()})
    if isinstance(value, list):
        return cast(T, [mask_value(item, options) for item in value])
    if isinstance(value, tuple):
        return cast(T, tuple(mask_value(item, options) for item in value))
    return value
