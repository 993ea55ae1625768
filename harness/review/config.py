"""The review configuration (`experiments/review.yml`): which dialogs are flagged, how many are sampled, and the
scorecard analysts fill in. Validated strictly: a typo in a rule or an attribute is an error with its location.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.project.problems import load_yaml_model
from harness.project.project import load_project

NOT_APPLICABLE = "n/a"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(Strict):
    enabled: bool = True
    priority: int = Field(default=1, ge=0, le=100)
    """Added to a dialog's priority when the rule fires; the review queue is ordered by the sum."""


class LowConfidence(Rule):
    below: float = Field(default=0.3, gt=0, le=1)


class LongDialog(Rule):
    max_bot_messages: int = Field(default=8, ge=1)


class Repetition(Rule):
    similarity: float = Field(default=0.85, gt=0, le=1)
    """Two customer turns at least this similar (character-level ratio of their normalised texts) are a repeat."""
    meaning: float | None = Field(default=0.5, gt=0, le=1)
    """Two customer turns whose MiniLM sentence embeddings have at least this cosine similarity are a
    rephrasing; null switches the meaning check off (no model is loaded)."""


class FlagRules(Strict):
    """The named flagging rules; each says why it fired. Rules that need labels skip unlabelled dialogs."""

    low_confidence: LowConfidence = LowConfidence(priority=2)
    fallback: Rule = Rule(priority=2)
    outcome_mismatch: Rule = Rule(priority=3)
    wrong_queue: Rule = Rule(priority=4)
    missed_escalation: Rule = Rule(priority=4)
    unnecessary_escalation: Rule = Rule(priority=2)
    long_dialog: LongDialog = LongDialog(priority=1)
    repetition: Repetition = Repetition(priority=2)
    critical_tag: Rule = Rule(priority=5)


class Sample(Strict):
    """An unbiased random sample, drawn independently of the flags so sampled quality figures are not skewed."""

    rate: float = Field(default=0.1, ge=0, le=1)
    seed: int = 1


class Attribute(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    question: str = Field(min_length=1)
    options: list[str] = Field(default=["yes", "no"], min_length=2)
    """Ratings an analyst can give; `n/a` is always offered as well."""
    passing: list[str] = ["yes"]
    """The options that count as a pass in the reviewed KPIs."""

    @model_validator(mode="after")
    def _passing_are_options(self) -> Attribute:
        unknown = [p for p in self.passing if p not in self.options]
        if unknown:
            raise ValueError(f"passing options {unknown} are not among the options {self.options}")
        return self

    @property
    def choices(self) -> list[str]:
        return [*self.options, NOT_APPLICABLE]


class CriticalClass(StrEnum):
    customer = "customer"
    business = "business"
    compliance = "compliance"


class CriticalError(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    critical_class: CriticalClass = Field(alias="class")
    description: str = Field(min_length=1)


class Scorecard(Strict):
    attributes: list[Attribute] = Field(min_length=1)
    critical_errors: list[CriticalError] = Field(min_length=1)
    resolution_attribute: str = "resolved"
    """The attribute whose passing rating means the analyst judged the customer's problem resolved."""

    @model_validator(mode="after")
    def _names_unique_and_known(self) -> Scorecard:
        for kind, names in (
            ("attribute", [a.name for a in self.attributes]),
            ("critical error", [c.name for c in self.critical_errors]),
        ):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"{kind} names must be unique: {', '.join(repeated)}")
        if self.resolution_attribute not in {a.name for a in self.attributes}:
            raise ValueError(f"resolution_attribute {self.resolution_attribute!r} is not one of the attributes")
        return self

    def attribute(self, name: str) -> Attribute:
        return next(a for a in self.attributes if a.name == name)

    def classes_of(self, errors: list[str]) -> set[CriticalClass]:
        by_name = {c.name: c.critical_class for c in self.critical_errors}
        return {by_name[e] for e in errors if e in by_name}


class ReviewConfig(Strict):
    version: int = Field(1, ge=1, le=1)
    flags: FlagRules = FlagRules()
    sample: Sample = Sample()
    scorecard: Scorecard


def load_review_config(path: Path | None = None) -> ReviewConfig:
    """The review configuration in `path` (default: the project's, harness.yml `review`); InputError listing every
    problem with its location."""
    return load_yaml_model(path if path is not None else load_project().review, ReviewConfig, "review configuration")
