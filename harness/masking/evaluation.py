"""Score a masking function on a labelled corpus (bench/data/masking_corpus.yml): what leaks, what is over-masked.

The corpus lists strings, and dialogs as lists of turns, each naming its personal data (`pii`: kind and exact
substring) and the harmless text that must stay (`keep`). Masking is judged from its output alone: the output
must be the input with some spans replaced by placeholders from `PLACEHOLDERS`, and `replaced_spans` recovers
those spans. An item of personal data is masked when every letter and digit of it lies in a replaced span (a
card number with four digits left readable has leaked); a harmless item is over-masked when any of it does.
`evaluate` gives per-item outcomes; `Evaluation` counts recall per kind, over-masking per harmless kind and
precision per placeholder (replaced spans that cover personal data).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import InputError

PII_KINDS = (
    "card",
    "iban",
    "email",
    "phone",
    "sort_code",
    "account",
    "ssn",
    "date_of_birth",
    "name",
    "address",
    "postcode",
)
NUMBER_KINDS = ("amount", "date", "time", "timestamp", "reference", "postcode", "last_four", "number")
"""Harmless numbers: the over-masking target (under 2%) is on these."""
WORD_KINDS = ("company", "merchant", "place", "phrase")
"""Harmless words a name or address finder must leave."""


class _StringCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    pii: list[tuple[str, str]] = []
    keep: list[tuple[str, str]] = []


class _DialogCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turns: list[str]
    pii: list[tuple[str, int, str]] = []
    keep: list[tuple[str, int, str]] = []


class _Corpus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    strings: list[_StringCase]
    dialogs: list[_DialogCase] = []


@dataclass(frozen=True, slots=True)
class Item:
    """One labelled substring of a sample: personal data to mask or harmless text to keep."""

    kind: str
    """A PII kind (a key of `PLACEHOLDERS`) or a harmless kind (`NUMBER_KINDS`, `WORD_KINDS`)."""
    personal: bool
    """True for personal data (`pii`), False for text that must stay (`keep`)."""
    turn: int
    """Index of the turn holding it (0 for a single string)."""
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Sample:
    """A string (one turn) or a dialog (consecutive customer turns) with its labelled items."""

    turns: tuple[str, ...]
    items: tuple[Item, ...]
    dialog: bool
    location: str
    """Where it is in the corpus file, for messages: `strings[12]`, `dialogs[3]`."""


def _place(text: str, wanted: str, taken: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The first occurrence of `wanted` in `text` that overlaps no span in `taken`."""
    for match in re.finditer(re.escape(wanted), text):
        if all(match.end() <= start or end <= match.start() for start, end in taken):
            return match.start(), match.end()
    return None


def load_corpus(path: Path) -> list[Sample]:
    """The corpus at `path`, validated: InputError listing every unknown kind, bad turn index and substring not
    found in its text."""
    try:
        corpus = _Corpus.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as error:
        messages = [f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        raise InputError("invalid masking corpus", messages) from error
    cases: list[tuple[str, list[str], list[tuple[str, int, str]], list[tuple[str, int, str]], bool]] = [
        (f"strings[{i}]", [c.text], [(k, 0, t) for k, t in c.pii], [(k, 0, t) for k, t in c.keep], False)
        for i, c in enumerate(corpus.strings)
    ]
    cases += [(f"dialogs[{i}]", c.turns, c.pii, c.keep, True) for i, c in enumerate(corpus.dialogs)]
    problems: list[str] = []
    samples = []
    for location, turns, pii, keep, dialog in cases:
        taken: dict[int, list[tuple[int, int]]] = {}
        items = []
        for personal, labelled, kinds in ((True, pii, PII_KINDS), (False, keep, NUMBER_KINDS + WORD_KINDS)):
            for kind, turn, wanted in labelled:
                where = f"{path}: {location}: {'pii' if personal else 'keep'} {kind} {wanted!r}"
                if kind not in kinds:
                    problems.append(f"{where}: unknown kind (one of {', '.join(kinds)})")
                    continue
                if not 0 <= turn < len(turns):
                    problems.append(f"{where}: no turn {turn}")
                    continue
                span = _place(turns[turn], wanted, taken.setdefault(turn, []))
                if span is None:
                    problems.append(f"{where}: not found in its text (or only overlapping another item)")
                    continue
                taken[turn].append(span)
                items.append(Item(kind, personal, turn, *span))
        samples.append(Sample(tuple(turns), tuple(items), dialog, location))
    if problems:
        raise InputError("invalid masking corpus", problems)
    return samples


def replaced_spans(original: str, masked: str, placeholders: dict[str, str]) -> list[tuple[int, int, str]]:
    """The spans of `original` that `masked` replaced, each with its placeholder's kind, in order. ValueError
    if `masked` is not `original` with spans replaced by placeholders."""
    kinds = {text: kind for kind, text in placeholders.items()}
    parts = re.split("(" + "|".join(map(re.escape, kinds)) + ")", masked)
    literals, used = parts[0::2], parts[1::2]
    pattern = re.escape(literals[0]) + "".join(f"(.+?){re.escape(literal)}" for literal in literals[1:])
    match = re.fullmatch(pattern, original, re.DOTALL)
    if match is None:
        raise ValueError(f"{masked!r} is not {original!r} with spans replaced by placeholders")
    return [(match.start(g), match.end(g), kinds[used[g - 1]]) for g in range(1, len(used) + 1)]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What masking did to one labelled item."""

    sample: Sample
    item: Item
    changed: bool
    """Some of the item lies in a replaced span."""
    masked: bool
    """Every letter and digit of the item lies in a replaced span."""
    output: str
    """The masked text of the item's turn."""

    @property
    def text(self) -> str:
        return self.sample.turns[self.item.turn][self.item.start : self.item.end]


@dataclass(frozen=True, slots=True)
class Span:
    """A span that masking replaced."""

    kind: str
    """The kind of its placeholder."""
    text: str
    """The original text replaced."""
    personal: bool
    """It overlaps labelled personal data."""
    output: str
    """The masked text of its turn."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Per-item outcomes of one masking function on a corpus, and the replaced spans it produced."""

    outcomes: tuple[Outcome, ...]
    spans: tuple[Span, ...]

    def recall(self, kind: str, *, dialogs: bool | None = None) -> tuple[int, int]:
        """(items fully masked, items) of personal data of `kind`; `dialogs` True/False: dialogs/strings only."""
        chosen = [o for o in self.outcomes if o.item.personal and o.item.kind == kind]
        chosen = [o for o in chosen if dialogs is None or o.sample.dialog == dialogs]
        return sum(o.masked for o in chosen), len(chosen)

    def over_masked(self, kinds: Iterable[str]) -> tuple[int, int]:
        """(items changed, items) of harmless text of `kinds`."""
        wanted = set(kinds)
        chosen = [o for o in self.outcomes if not o.item.personal and o.item.kind in wanted]
        return sum(o.changed for o in chosen), len(chosen)

    def precision(self, kind: str) -> tuple[int, int]:
        """(replaced spans overlapping personal data, replaced spans) with the placeholder of `kind`."""
        chosen = [span.personal for span in self.spans if span.kind == kind]
        return sum(chosen), len(chosen)

    def false_spans(self) -> list[Span]:
        """Replaced spans that overlap no labelled personal data."""
        return [span for span in self.spans if not span.personal]

    def leaks(self, kinds: Iterable[str] = PII_KINDS) -> list[Outcome]:
        wanted = set(kinds)
        return [o for o in self.outcomes if o.item.personal and o.item.kind in wanted and not o.masked]

    def over_masks(self, kinds: Iterable[str] = NUMBER_KINDS + WORD_KINDS) -> list[Outcome]:
        wanted = set(kinds)
        return [o for o in self.outcomes if not o.item.personal and o.item.kind in wanted and o.changed]


def _inside(position: int, spans: Sequence[tuple[int, int, str]]) -> bool:
    return any(start <= position < end for start, end, _ in spans)


def evaluate(
    samples: Sequence[Sample],
    mask_turns: Callable[[list[str]], Sequence[Any]],
    placeholders: dict[str, str],
) -> Evaluation:
    """Mask every sample with `mask_turns` (a string is a dialog of one turn) and judge each item."""
    outcomes: list[Outcome] = []
    spans: list[Span] = []
    for sample in samples:
        outputs = [str(output) for output in mask_turns(list(sample.turns))]
        for turn, (original, output) in enumerate(zip(sample.turns, outputs, strict=True)):
            replaced = replaced_spans(original, output, placeholders)
            items = [item for item in sample.items if item.turn == turn]
            for start, end, kind in replaced:
                personal = any(i.personal and i.start < end and start < i.end for i in items)
                spans.append(Span(kind, original[start:end], personal, output))
            for item in items:
                positions = range(item.start, item.end)
                inside = [_inside(p, replaced) for p in positions]
                significant = [hit for p, hit in zip(positions, inside, strict=True) if original[p].isalnum()]
                outcomes.append(Outcome(sample, item, any(inside), all(significant), output))
    return Evaluation(tuple(outcomes), tuple(spans))
