"""Reviewer calibration: how consistently QA analysts score the same dialogs.

COPC asks contact centres to calibrate their quality reviewers quantitatively rather than by impression: a lead
assigns the same dialogs to several analysts and measures how far their scorecards agree. This module turns those
overlapping reviews into numbers, per scorecard item (each categorical attribute and each critical-error class,
e.g. ``understood``, ``tone``, ``critical:customer``):

* **Percent agreement** -- for one dialog, the share of rater pairs that gave the same answer; for an item, the mean
  over the dialogs that at least two analysts rated. Easy to explain to analysts, but inflated when one answer
  dominates (almost every dialog is "no critical error").
* **Fleiss' kappa** (``statsmodels``, method "fleiss") -- agreement among any number of raters corrected for the
  agreement expected from the pooled answer distribution. It needs the same number of raters on every dialog, so it
  is computed over the dialogs rated by the most common number of raters (at least 2; on a tie the larger number),
  the other dialogs are left out of it. With exactly two raters per dialog it equals Scott's pi. It is undefined
  (None) with fewer than two such dialogs or when every answer falls in one category (expected agreement 1).
* **Cohen's kappa** (``scikit-learn``) for every pair of analysts with at least two dialogs in common -- shows *who*
  disagrees with whom. Undefined (None) when both analysts used one and the same category throughout.
* **Deviation from the reference** -- when the lead marks one review of a dialog as the reference, each other review
  of that dialog is compared with it item by item: how many items both answered and how many differ, per analyst.

Conventions: "n/a" is a category like any other; an item missing from an answer mapping means the analyst did not
rate it on that dialog. The reference review counts as a rater in all agreement statistics (it is a review too).
An analyst may review a dialog once, and a dialog may have at most one reference review (ValueError otherwise).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as _statsmodels_fleiss_kappa

Dialog = str | int


@dataclass(frozen=True)
class Rating:
    """One analyst's verdict on one dialog: item name -> category."""

    dialog: Dialog
    analyst: str
    answers: Mapping[str, str]
    reference: bool = False


@dataclass(frozen=True)
class PairKappa:
    """Agreement of two analysts (``first`` < ``second``) on one item over the dialogs both rated."""

    first: str
    second: str
    dialogs: int
    percent_agreement: float
    cohen_kappa: float | None


@dataclass(frozen=True)
class ItemAgreement:
    """Agreement on one scorecard item."""

    item: str
    dialogs: int
    """Dialogs on which at least two analysts (reference included) rated this item."""
    raters: int
    """Distinct analysts who rated this item on any dialog."""
    percent_agreement: float | None
    """Mean over those dialogs of the share of agreeing rater pairs; None without such dialogs."""
    fleiss_kappa: float | None
    """Over the dialogs with the most common number of raters (>= 2, tie -> larger); None when undefined."""
    pairs: list[PairKappa] = field(default_factory=list)
    """Cohen's kappa for every analyst pair with at least two dialogs in common on this item."""


@dataclass(frozen=True)
class Deviation:
    """How often one analyst's answers differ from the reference review of the same dialog."""

    analyst: str
    compared: int
    disagreements: int
    rate: float
    by_item: dict[str, tuple[int, int]]
    """item -> (disagreements, compared)."""


@dataclass(frozen=True)
class CalibrationReport:
    items: list[ItemAgreement]
    """Lowest percent agreement first, then lowest Fleiss' kappa (undefined after defined), then name; no data last."""
    deviations: list[Deviation]
    """Per analyst (by name) against reference reviews; empty when no reference review exists."""
    dialogs: int
    """Dialogs reviewed by at least two analysts."""

    def most_disagreed(self, n: int = 3) -> list[ItemAgreement]:
        """The ``n`` items with the lowest agreement, among items with data."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return [item for item in self.items if item.percent_agreement is not None][:n]


# --- kappa statistics -------------------------------------------------------------------------------------------


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' answers on the same subjects; None when undefined.

    Undefined means no subjects, or expected agreement 1: both raters used one and the same category throughout.
    """
    if len(first) != len(second):
        raise ValueError(f"cohen_kappa needs answers on the same subjects, got {len(first)} and {len(second)}")
    if not first or len(set(first) | set(second)) == 1:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kappa = float(cohen_kappa_score(list(first), list(second)))
    return None if math.isnan(kappa) else kappa


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of a subjects x categories table of counts; None when undefined.

    Every subject must have the same number (>= 2) of ratings. Undefined means no subjects, or all ratings in one
    category (expected agreement 1).
    """
    counts = np.asarray(table, dtype=float)
    if counts.size == 0:
        return None
    if counts.ndim != 2:
        raise ValueError("fleiss_kappa needs a rectangular subjects x categories table")
    if (counts < 0).any():
        raise ValueError("fleiss_kappa needs non-negative counts")
    per_subject = counts.sum(axis=1)
    if (per_subject != per_subject[0]).any() or per_subject[0] < 2:
        raise ValueError(f"fleiss_kappa needs the same number (>= 2) of ratings per subject: {per_subject.tolist()}")
    if np.count_nonzero(counts.sum(axis=0)) == 1:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kappa = float(_statsmodels_fleiss_kappa(counts, method="fleiss"))
    return None if math.isnan(kappa) else kappa


# --- building the report ----------------------------------------------------------------------------------------


def _index(ratings: Iterable[Rating]) -> dict[Dialog, dict[str, Rating]]:
    """dialog -> analyst -> rating, in first-seen order; rejects double reviews and double references."""
    by_dialog: dict[Dialog, dict[str, Rating]] = {}
    for rating in ratings:
        reviews = by_dialog.setdefault(rating.dialog, {})
        if rating.analyst in reviews:
            raise ValueError(f"analyst {rating.analyst!r} rated dialog {rating.dialog!r} more than once")
        if rating.reference and any(other.reference for other in reviews.values()):
            raise ValueError(f"dialog {rating.dialog!r} has more than one reference review")
        reviews[rating.analyst] = rating
    return by_dialog


def _item_answers(by_dialog: Mapping[Dialog, Mapping[str, Rating]], item: str) -> list[dict[str, str]]:
    """Per dialog, analyst -> answer for this item (dialogs where nobody answered it are left out)."""
    per_dialog = [
        {analyst: rating.answers[item] for analyst, rating in reviews.items() if item in rating.answers}
        for reviews in by_dialog.values()
    ]
    return [answers for answers in per_dialog if answers]


def _pair_share(answers: Iterable[str]) -> float:
    """Share of agreeing pairs among one dialog's answers (needs at least two)."""
    counts = Counter(answers)
    total = sum(counts.values())
    agreeing = sum(n * (n - 1) // 2 for n in counts.values())
    return agreeing / (total * (total - 1) // 2)


def _fleiss_subset(shared: Sequence[Mapping[str, str]]) -> float | None:
    """Fleiss' kappa over the dialogs with the most common number of raters (tie -> larger); None if < 2 dialogs."""
    if not shared:
        return None
    sizes = Counter(len(answers) for answers in shared)
    size = max(sizes, key=lambda k: (sizes[k], k))
    subset = [Counter(answers.values()) for answers in shared if len(answers) == size]
    if len(subset) < 2:
        return None
    categories = sorted(set().union(*subset))
    return fleiss_kappa([[counts[c] for c in categories] for counts in subset])


def _pairs(shared: Sequence[Mapping[str, str]]) -> list[PairKappa]:
    """Cohen's kappa for every analyst pair with at least two dialogs in common."""
    common: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for answers in shared:
        for first, second in combinations(sorted(answers), 2):
            a, b = common[(first, second)]
            a.append(answers[first])
            b.append(answers[second])
    pairs = []
    for (first, second), (a, b) in sorted(common.items()):
        if len(a) < 2:
            continue
        agreement = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
        pairs.append(PairKappa(first, second, len(a), agreement, cohen_kappa(a, b)))
    return pairs


def _item_agreement(by_dialog: Mapping[Dialog, Mapping[str, Rating]], item: str) -> ItemAgreement:
    answered = _item_answers(by_dialog, item)
    shared = [answers for answers in answered if len(answers) >= 2]
    raters = len({analyst for answers in answered for analyst in answers})
    percent = sum(_pair_share(a.values()) for a in shared) / len(shared) if shared else None
    return ItemAgreement(item, len(shared), raters, percent, _fleiss_subset(shared), _pairs(shared))


def _disagreement_order(item: ItemAgreement) -> tuple[bool, float, bool, float, str]:
    kappa = item.fleiss_kappa
    percent = item.percent_agreement
    return (percent is None, percent or 0.0, kappa is None, kappa or 0.0, item.item)


def _deviations(by_dialog: Mapping[Dialog, Mapping[str, Rating]], items: Sequence[str]) -> list[Deviation]:
    """Per analyst, item-by-item comparison of each non-reference review with the dialog's reference review."""
    tallies: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for reviews in by_dialog.values():
        reference = next((rating for rating in reviews.values() if rating.reference), None)
        if reference is None:
            continue
        for rating in reviews.values():
            if rating.reference:
                continue
            for item in items:
                if item in rating.answers and item in reference.answers:
                    tally = tallies[rating.analyst].setdefault(item, [0, 0])
                    tally[0] += rating.answers[item] != reference.answers[item]
                    tally[1] += 1
    deviations = []
    for analyst in sorted(tallies):
        by_item = {item: (d, c) for item, (d, c) in sorted(tallies[analyst].items())}
        disagreements = sum(d for d, _ in by_item.values())
        compared = sum(c for _, c in by_item.values())
        deviations.append(Deviation(analyst, compared, disagreements, disagreements / compared, by_item))
    return deviations


def calibration_report(ratings: Iterable[Rating], items: Sequence[str] | None = None) -> CalibrationReport:
    """Agreement per item and deviation from reference reviews.

    ``items`` restricts (and names) the items reported; by default every item that appears in any answer mapping.
    Items nobody (or only one analyst per dialog) rated are still listed, with no data, at the end.
    """
    by_dialog = _index(ratings)
    if items is None:
        items = sorted({item for reviews in by_dialog.values() for r in reviews.values() for item in r.answers})
    agreements = sorted((_item_agreement(by_dialog, item) for item in dict.fromkeys(items)), key=_disagreement_order)
    shared_dialogs = sum(1 for reviews in by_dialog.values() if len(reviews) >= 2)
    return CalibrationReport(agreements, _deviations(by_dialog, list(dict.fromkeys(items))), shared_dialogs)


# --- consistency: an analyst against their own blind re-review ------------------------------------------------


@dataclass(frozen=True)
class ItemConsistency:
    item: str
    dialogs: int
    agreements: int
    cohen_kappa: float | None
    """First review against re-review over the analyst's re-reviewed dialogs; None when undefined."""

    @property
    def percent_agreement(self) -> float | None:
        return self.agreements / self.dialogs if self.dialogs else None


@dataclass(frozen=True)
class Consistency:
    """How well an analyst agrees with themselves when reviewing the same dialogs again, blind."""

    analyst: str
    dialogs: int
    items: list[ItemConsistency]

    @property
    def percent_agreement(self) -> float | None:
        """Agreeing answers over all answers compared, every item pooled."""
        compared = sum(i.dialogs for i in self.items)
        return sum(i.agreements for i in self.items) / compared if compared else None


def consistency(
    first: Iterable[Rating], second: Iterable[Rating], items: Sequence[str] | None = None
) -> list[Consistency]:
    """Per analyst (by name), their first reviews against their re-reviews of the same dialogs."""
    firsts = {(r.analyst, r.dialog): r for r in first}
    pairs: dict[str, list[tuple[Rating, Rating]]] = {}
    for again in second:
        original = firsts.get((again.analyst, again.dialog))
        if original is None:
            raise ValueError(f"analyst {again.analyst!r} re-reviewed dialog {again.dialog!r} without a first review")
        pairs.setdefault(again.analyst, []).append((original, again))
    out = []
    for analyst in sorted(pairs):
        matched = pairs[analyst]
        names = items or sorted({i for a, b in matched for i in a.answers if i in b.answers})
        per_item = []
        for item in names:
            both = [(a.answers[item], b.answers[item]) for a, b in matched if item in a.answers and item in b.answers]
            kappa = cohen_kappa([x for x, _ in both], [y for _, y in both]) if both else None
            per_item.append(ItemConsistency(item, len(both), sum(x == y for x, y in both), kappa))
        out.append(Consistency(analyst, len(matched), per_item))
    return out
