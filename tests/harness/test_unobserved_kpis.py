"""KPIs on a bot that does not observe what they need: undefined with a warning naming the observation, never 0;
no outcome matrix without observed handoffs."""

from __future__ import annotations

import warnings

from records_factory import worked_example

from harness.scoring.metrics import ScoringOptions, build_core, compute_all
from harness.scoring.scorecard import build_scorecard


def test_a_kpi_whose_observation_the_bot_does_not_make_is_undefined_with_a_warning_not_zero() -> None:
    seen = frozenset({"messages", "intent", "fallback"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kpis = {k.name: k for k in compute_all(build_core(worked_example(), ScoringOptions(200), seen))}
    for name in ("escalation_accuracy.v1", "containment.v1", "self_service_completion.v1", "resolution_rate.v1"):
        assert kpis[name].value is None and "does not report handoff" in (kpis[name].warning or ""), name
    assert kpis["recognition_rate.v2"].value is not None and kpis["availability.v2"].value is not None
    assert any("does not report handoff" in str(w.message) for w in caught)


def test_without_observed_handoffs_the_scorecard_has_no_outcome_matrix() -> None:
    seen = build_scorecard(build_core(worked_example(), ScoringOptions(200)), {})
    blind = build_scorecard(build_core(worked_example(), ScoringOptions(200), frozenset({"intent"})), {})
    assert not seen.outcome_matrix.empty and seen.escalation_errors
    assert blind.outcome_matrix.empty and blind.escalation_errors == {}


def test_the_printed_scorecard_colours_its_warnings_on_a_console_that_prints_text_literally() -> None:
    from rich.console import Console

    from harness.cli.common import out
    from harness.scoring.scorecard import print_scorecard

    blind = build_scorecard(build_core(worked_example(), ScoringOptions(200), frozenset({"intent"})), {})
    console = Console(record=True, markup=out._markup, width=200, color_system=None)  # as `harness run` prints
    print_scorecard(blind, console)
    text = console.export_text()
    assert "warning: " in text and "[yellow]" not in text and "[/]" not in text
