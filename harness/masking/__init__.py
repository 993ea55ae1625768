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
Where findings overlap, their union is masked with the placeholder of the kind earlier in `options.ENTITY_KINDS`
(an IBAN's digits are not also a card number), so no character of any finding stays readable. Text is read in
an ASCII form of the same length (`normalised`: full-width or Arabic-Indic digits, en dashes, thin spaces), and
long text in overlapping windows (`WINDOW`), so the time stays linear in its length.

Also masked: UK postcodes, US social security numbers and dates of birth introduced as such (`dob 01/02/1980`).
Left alone on purpose: money amounts, other dates, times, timestamps, references, other countries' postcodes, towns
and short numbers such as the last four digits of a card, which QA needs to follow the conversation.
People's names are masked only with `MaskingOptions(names=True)` (spaCy's small English NER model): on
bench/data/masking_corpus.yml and the baseline run it masks too many words QA needs to be the default
(bench/results/masking.md); `gaps` says so where texts are stored or loaded.
"""

from __future__ import annotations

import re
import sys
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from harness.masking.options import DEFAULT_OPTIONS, ENTITY_KINDS, PLACEHOLDER, PLACEHOLDERS, MaskingOptions

if TYPE_CHECKING:
    from presidio_analyzer import RecognizerResult

__all__ = [
    "PLACEHOLDERS",
    "MaskingOptions",
    "PiiMatch",
    "clear_cache",
    "find_pii",
    "gaps",
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
    """harness.masking.engine: the analyzer, built once per options."""
    turns: ModuleType
    """harness.masking.turns: numbers sent in pieces (uses our Presidio recognisers)."""
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

        from harness.masking import engine, turns

    operators = {
        entity: OperatorConfig("replace", {"new_value": PLACEHOLDERS[kind]}) for entity, kind in ENTITY_KINDS.items()
    }
    return _Presidio(engine, turns, AnonymizerEngine(), operators)


def gaps(options: MaskingOptions = DEFAULT_OPTIONS) -> list[str]:
    """What `options` leave unmasked that is personal data, each as one line to show where texts are stored or
    loaded (import, review load), with how to mask it; [] when nothing is left. Needs no Presidio."""
    if options.names:
        return []
    return [
        "people's names are NOT masked (masking names is off): enable it with `masking: {names: true}` in "
        "experiments/production.yml (MaskingOptions(names=True) in code), which needs the optional extra: "
        "pip install 'bot-quality-harness[names]'"
    ]


def warm_up(options: MaskingOptions = DEFAULT_OPTIONS) -> None:
    """Import Presidio and build the analyzer for `options` now rather than on the first text masked."""
    _presidio().engine.analyzer(options)


_DASHES: Final = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_SPACES: Final = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_ASCII_FORMS: Final = {ord(char): "-" for char in _DASHES} | {ord(char): " " for char in _SPACES}


@lru_cache(maxsize=1024)
def _ascii_form(char: str) -> str:
    decimal = unicodedata.decimal(char, None)
    return str(decimal) if decimal is not None else char.translate(_ASCII_FORMS)


def normalised(text: str) -> str:
    """`text` with every Unicode decimal digit as its ASCII digit (full-width `４`, Arabic-Indic `٤`), every dash
    (en and em dashes, the non-breaking hyphen, the minus sign) as `-` and every space (no-break, thin,
    ideographic) as ` `: one character for one, so spans found in it are spans of `text`."""
    if text.isascii():
        return text
    return "".join(_ascii_form(char) if not char.isascii() else char for char in text)


WINDOW: Final = 2000
"""Text longer than this is analysed in windows of this many characters, each overlapping the one before by
`OVERLAP`; the findings of all windows are merged. This keeps the time linear in the length of the text whatever
its content (a customer can paste anything into the chat)."""
OVERLAP: Final = 400
"""Characters shared by consecutive windows: more than any card, IBAN, phone number or spelled-out address with
the 40 characters of context before it, so each is whole, with its cue, inside one window. A window's edge can
cut a number into a shorter one that is also found; merging masks the union, so that only masks more."""


def _analysed(text: str, options: MaskingOptions) -> list[RecognizerResult]:
    """Presidio's findings in `text`, window by window; a window in which no recogniser can find anything
    (`engine.may_find`, an exact test) is not analysed."""
    engine = _presidio().engine
    analyzer, may_find = engine.analyzer(options), engine.may_find(options)
    if len(text) <= WINDOW:
        return list(analyzer.analyze(text=text, language="en")) if may_find(text) else []
    found = []
    for offset in range(0, len(text) - OVERLAP, WINDOW - OVERLAP):
        window = text[offset : offset + WINDOW]
        if not may_find(window):
            continue
        for result in analyzer.analyze(text=window, language="en"):
            result.start += offset
            result.end += offset
            found.append(result)
    return found


def _findings(text: str, options: MaskingOptions) -> list[RecognizerResult]:
    """Presidio's findings in `text` (read in its ASCII form, `normalised`), overlaps resolved: a finding that
    overlaps one of an earlier kind (or a longer or earlier one of its kind) widens it to their union, which
    keeps the earlier kind, so that no character of any finding stays readable; in order of position.
    Placeholders already in the text are never part of a finding."""
    text = normalised(text)
    if not options.names and not _MAYBE_PATTERN_PII.search(text):
        return []
    results = [result for result in _analysed(text, options) if result.entity_type in _PRECEDENCE]
    results.sort(key=lambda r: (_PRECEDENCE[r.entity_type], r.start - r.end, r.start))
    placeholders = [(match.start(), match.end()) for match in PLACEHOLDER.finditer(text)]
    chosen: list[RecognizerResult] = []
    for result in results:
        if any(result.start < end and start < result.end for start, end in placeholders):
            continue
        overlapping = [kept for kept in chosen if result.start < kept.end and kept.start < result.end]
        if not overlapping:
            chosen.append(result)
            continue
        # Chosen findings never overlap each other, so the union overlaps no other; the first is the earliest kind.
        first = overlapping[0]
        first.start = min(result.start, *(kept.start for kept in overlapping))
        first.end = max(result.end, *(kept.end for kept in overlapping))
        chosen = [kept for kept in chosen if kept is first or all(kept is not other for other in overlapping)]
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
    pieces = _presidio().turns.split_numbers([normalised(text) if text else text for text in texts])
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
