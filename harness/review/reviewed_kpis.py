"""KPIs as judged by QA analysts, beside the automatic ones computed on the same dialogs.

One verdict per reviewed dialog (`verdict_for`): the lead's reference review if there is one, else the first
review by a lead, else the first review. Two populations are reported:
- `sample`: dialogs of the unbiased random sample. These estimate the bot's quality; the headline figures.
- `reviewed`: every reviewed dialog, flagged ones included. Flags pick the worst dialogs on purpose, so these
  figures describe the review queue, not the bot.
Every rate has its support n and a 95% Wilson interval (dialogs are independent draws in the sample).

Definitions (reviewed counterpart of kpis.md v1):
- `reviewed_escalation_accuracy`: handed-off dialogs the analyst judged sent to the right queue / handed-off dialogs.
- `reviewed_outcome_accuracy`: dialogs that ended where the analyst says they should (self-service or the right
  queue) / reviewed dialogs.
- `reviewed_resolution`: dialogs the bot kept and the analyst rated resolved / dialogs whose resolution was rated
  (n/a excluded).
- `critical_accuracy.<class>`: dialogs without a critical error of that class / reviewed dialogs;
  `critical_accuracy.all`: dialogs without any critical error (one critical error fails the dialog).
- `attribute.<name>`: dialogs rated with a passing option / dialogs rated (n/a excluded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.review.config import NOT_APPLICABLE, Attribute, CriticalClass, Scorecard
from harness.scoring.metrics.intervals import Proportion

POPULATIONS = ("sample", "reviewed")


@dataclass(frozen=True)
class Verdict:
    """The facts of one reviewed dialog: what the bot did, its label (if any) and the analyst's judgement."""

    sampled: bool
    actual_outcome: str
    expected_label: str | None
    auto_resolved: bool | None
    ratings: Mapping[str, str]
    critical_classes: frozenset[str]
    correct_outcome: str

    @property
    def handed_off(self) -> bool:
        return self.actual_outcome.startswith("escalated:")


@dataclass(frozen=True)
class ReviewedKpi:
    name: str
    population: str
    reviewed: Proportion
    automatic: Proportion | None
    """The automatic KPI on the same dialogs (labelled ones only); None when there is no automatic counterpart."""


def _rate(verdicts: Iterable[Verdict], among: Callable[[Verdict], bool], hit: Callable[[Verdict], bool]) -> Proportion:
    pool = [v for v in verdicts if among(v)]
    return Proportion(sum(1 for v in pool if hit(v)), len(pool))


def _always(_verdict: Verdict) -> bool:
    return True


def _free_of(critical_class: str) -> Callable[[Verdict], bool]:
    return lambda v: critical_class not in v.critical_classes


def _rated(attribute: str) -> Callable[[Verdict], bool]:
    return lambda v: v.ratings.get(attribute, NOT_APPLICABLE) != NOT_APPLICABLE


def _passes(attribute: Attribute) -> Callable[[Verdict], bool]:
    return lambda v: v.ratings[attribute.name] in attribute.passing


def reviewed_kpis(verdicts: Sequence[Verdict], scorecard: Scorecard) -> list[ReviewedKpi]:
    """Every reviewed KPI for both populations (sample first)."""
    resolution = scorecard.attribute(scorecard.resolution_attribute)
    out: list[ReviewedKpi] = []
    for population in POPULATIONS:
        pool = [v for v in verdicts if v.sampled] if population == "sample" else list(verdicts)
        labelled = [v for v in pool if v.expected_label is not None]

        def add(
            name: str, reviewed: Proportion, automatic: Proportion | None = None, population: str = population
        ) -> None:
            out.append(ReviewedKpi(name, population, reviewed, automatic))

        add(
            "reviewed_escalation_accuracy",
            _rate(pool, lambda v: v.handed_off, lambda v: v.correct_outcome == v.actual_outcome),
            _rate(labelled, lambda v: v.handed_off, lambda v: v.expected_label == v.actual_outcome),
        )
        add(
            "reviewed_outcome_accuracy",
            _rate(pool, _always, lambda v: v.correct_outcome == v.actual_outcome),
            _rate(labelled, _always, lambda v: v.expected_label == v.actual_outcome),
        )
        rated = [v for v in pool if _rated(resolution.name)(v)]
        add(
            "reviewed_resolution",
            _rate(rated, _always, lambda v: not v.handed_off and v.ratings[resolution.name] in resolution.passing),
            _rate(rated, lambda v: v.auto_resolved is not None, lambda v: bool(v.auto_resolved)),
        )
        for critical_class in CriticalClass:
            add(f"critical_accuracy.{critical_class.value}", _rate(pool, _always, _free_of(critical_class.value)))
        add("critical_accuracy.all", _rate(pool, _always, lambda v: not v.critical_classes))
        for attribute in scorecard.attributes:
            add(f"attribute.{attribute.name}", _rate(pool, _rated(attribute.name), _passes(attribute)))
    return out


def verdict_for(reviews: Sequence[tuple[int, bool, bool]]) -> int | None:
    """Which review decides a dialog, from (review id, is reference, by a lead) in creation order."""
    for chosen in (lambda r: r[1], lambda r: r[2], lambda r: True):
        for review in reviews:
            if chosen(review):
                return review[0]
    return None
