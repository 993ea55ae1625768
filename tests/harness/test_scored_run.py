"""ScoredRun: one scored run for every reader. Scored once (the review load builds one scoring core), loaded as
the gate loads it (a baseline may be scorecard.json alone), stamped as before, and a KPI the bot cannot measure
undefined in the scorecard and in the gate's view of the run alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from records_factory import fraud_conversation, turn
from review_world import review_run
from sqlalchemy import select
from sqlalchemy.orm import Session

import harness.scoring.metrics
import harness.scoring.metrics.core
import harness.scoring.scored_run
from harness.errors import InputError
from harness.gate.baseline import baseline_for
from harness.gate.decision import decide
from harness.gate.spec import GateSpec
from harness.pipeline import write_outputs
from harness.records import ALL_OBSERVATIONS, Observation, read, to_frame
from harness.records.run_folder import RunFolder
from harness.review.config import load_review_config
from harness.review.database import connect
from harness.review.dialogs import load_run
from harness.review.store import Dialog
from harness.scoring.metrics import REGISTRY, ScoringOptions
from harness.scoring.scored_run import ScoredRun

OPTIONS = ScoringOptions(bootstrap_replicates=50, seed=1)
REVIEW = load_review_config()
# The review without the sentence-embedding model (the repetition rule's meaning check).
REVIEW_NO_MODEL = REVIEW.model_copy(
    update={
        "flags": REVIEW.flags.model_copy(
            update={"repetition": REVIEW.flags.repetition.model_copy(update={"meaning": None})}
        )
    }
)
# The KPIs a table leaves undefined (no out-of-scope turn here) warn; what they say is asserted where it matters.
pytestmark = pytest.mark.filterwarnings("ignore::harness.scoring.metrics.UndefinedMetricWarning")
ESCALATION_KPIS = sorted(name for name, spec in REGISTRY.items() if "handoff" in spec.needs)


def meta(observes: list[str] | None) -> dict:
    """run.json of a run whose bot (kind http_json.v1) observed `observes` (None: a run from before bot kinds)."""
    bot = {"url": "http://127.0.0.1:1/", "kind": "http_json.v1", "observes": observes}
    return {
        "run_id": "20261130-000000-abcdef",
        "eval_set_hash": "h" * 64,
        "eval_set_version": 1,
        "harness_version": "test",
        "git_sha": "0" * 40,
        "config": {
            "version": 1,
            "bot": {"kind": "http_json", "url": bot["url"]},
            "scoring": {"bootstrap_replicates": 50, "seed": 1, "confidence": 0.95},
        },
        "bot": bot if observes is not None else {"url": bot["url"]},
    }


def records():  # type: ignore[no-untyped-def]
    """Ten fees conversations (one of them with a reply check the table judged wrong) and a fraud report handed
    to the fraud queue: escalation accuracy 1/1 when the bot's handoffs are observed."""
    rows = [turn(f"c{i}", 0, "fees", "fees") for i in range(10)]
    # The stored verdict says failed; the check (action x ran) holds on the recorded actions.
    rows[0] = {**turn("c0", 0, "fees", "fees", checks=True, check_passed=False), "actions": '["x"]'}
    rows.append(fraud_conversation(handed_to_fraud=True))
    return to_frame(rows)


# --- scored once ----------------------------------------------------------------------------------------------------


@pytest.fixture
def count_cores(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every scoring-core build, wherever a module holds `build_core`."""
    calls: list[int] = []
    original = harness.scoring.metrics.core.build_core

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(*args, **kwargs)

    for module in (harness.scoring.metrics.core, harness.scoring.metrics, harness.scoring.scored_run):
        monkeypatch.setattr(module, "build_core", counting)
    return calls


@pytest.mark.parametrize("finished", [False, True], ids=["turns.parquet alone", "finished run folder"])
def test_a_review_load_builds_the_scoring_core_once(tmp_path: Path, count_cores: list[int], finished: bool) -> None:
    run_dir = review_run(tmp_path)
    if finished:
        ScoredRun.from_records(read(run_dir / "turns.parquet"), OPTIONS).scorecard.write(run_dir / "scorecard.json")
        count_cores.clear()
    with Session(connect(f"sqlite:///{tmp_path / 'review.db'}")) as session:
        conversations = load_run(session, run_dir, REVIEW_NO_MODEL, actor="test").conversations
        flagged = {d.conversation_id for d in session.scalars(select(Dialog)) if d.flags}
    assert len(count_cores) == 1
    assert conversations == 4 and {"demo-fraud", "demo-contact"} <= flagged


def test_a_run_is_scored_once_and_its_kpis_are_computed_when_read(count_cores: list[int]) -> None:
    run = ScoredRun.from_records(records(), OPTIONS)
    assert len(count_cores) == 1
    assert list(run.kpis) == list(REGISTRY)  # every registered version, superseded ones too
    first = run.kpis["recognition_rate.v2"]
    assert run.kpis["recognition_rate.v2"] is first and run.value("recognition_rate.v2") == (first.value, first.n)
    assert run.value("no_such_kpi.v1") == (None, 0)
    current = [name for name, spec in REGISTRY.items() if spec.superseded_by is None]
    assert [k.name for k in run.scorecard.kpis] == current and len(current) < len(REGISTRY)
    assert len(count_cores) == 1


# --- score: checks judged from the table, the run stamped as before -------------------------------------------------


def test_score_judges_checks_from_the_table_and_stamps_the_run() -> None:
    run = ScoredRun.score(records(), meta(sorted(ALL_OBSERVATIONS)), OPTIONS)
    assert run.records is not None and bool(run.records.loc[0, "check_passed"]) is True
    assert list(run.stamp) == [
        "run_id",
        "eval_set_hash",
        "eval_set_version",
        "harness_version",
        "git_sha",
        "bot_model",
        "bot_kind",
        "bot_observes",
        "definitions",
        "config",
    ]
    assert run.stamp["bot_kind"] == "http_json.v1" and run.stamp["bot_observes"] == sorted(ALL_OBSERVATIONS)
    assert list(run.scorecard.to_dict()) == [
        "scorecard_version",
        "definitions",
        *[k for k in run.stamp if k != "definitions"],
        "kpis",
        "outcome_matrix",
        "escalation_errors",
    ]


def test_a_run_from_before_bot_kinds_is_the_reference_bot_observing_everything() -> None:
    run = ScoredRun.score(records(), meta(None), OPTIONS)
    assert run.stamp["bot_kind"] == "reference.v1" and run.stamp["bot_observes"] is None
    assert run.scorecard.kpi("escalation_accuracy.v1").value == 1.0


def test_rescore_reads_run_json_and_the_turn_table(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "r")
    folder.write_meta(meta(sorted(ALL_OBSERVATIONS)))
    table = records()
    table.to_parquet(folder.turns, index=False)
    run = ScoredRun.rescore(folder)
    assert run.source == str(folder.path) and run.stamp["run_id"] == "20261130-000000-abcdef"
    assert run.records is not None and bool(run.records.loc[0, "check_passed"]) is True
    assert run.core is not None and run.core.options == OPTIONS


# --- a bot that does not observe handoffs ---------------------------------------------------------------------------


def test_unobserved_handoffs_leave_escalation_kpis_undefined_in_the_scorecard_and_the_gate(tmp_path: Path) -> None:
    blind = sorted(ALL_OBSERVATIONS - {Observation.handoff, Observation.handoff_rule, Observation.ticket})
    seeing = ScoredRun.score(records(), meta(sorted(ALL_OBSERVATIONS)), OPTIONS)
    run = ScoredRun.score(records(), meta(blind), OPTIONS)
    assert ESCALATION_KPIS and "escalation_accuracy.v1" in ESCALATION_KPIS
    assert seeing.scorecard.kpi("escalation_accuracy.v1").value == 1.0  # the same records, handoffs seen
    for name in ESCALATION_KPIS:
        if REGISTRY[name].superseded_by is None:
            kpi = run.scorecard.kpi(name)
            assert kpi.value is None and "does not report handoff" in (kpi.warning or ""), name
    folder = RunFolder.create(tmp_path, "r")
    write_outputs(folder, run)
    card = json.loads(folder.scorecard.read_text(encoding="utf-8"))
    assert card["bot_observes"] == blind and card["kpis"]["escalation_accuracy.v1"]["value"] is None
    gated = ScoredRun.load(folder)
    for name in ESCALATION_KPIS:
        assert gated.value(name) == (None, 0), name
    spec = GateSpec.model_validate({"version": 1, "kpis": {"escalation_accuracy.v1": {"threshold": 0.5}}})
    (check,) = decide(spec, gated, None).checks
    assert not check.passed and "undefined" in check.message and "does not report handoff" in check.message


# --- load: a run folder, and a baseline given as scorecard.json alone -----------------------------------------------


def finished_run(folder: RunFolder) -> ScoredRun:
    run = ScoredRun.score(records(), meta(sorted(ALL_OBSERVATIONS)), OPTIONS)
    write_outputs(folder, run)
    return run


def test_load_scores_a_run_folder_as_its_scorecard_stamped_it(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "r")
    run = finished_run(folder)
    assert [p.name for p in folder.outputs if p.is_file()] == ["turns.parquet", "scorecard.json", "report.html"]
    loaded = ScoredRun.load(folder.path)
    assert loaded.core is not None and loaded.core.options == OPTIONS and loaded.source == str(folder.path)
    assert loaded.stamp["run_id"] == run.stamp["run_id"]
    assert loaded.scorecard.to_dict() == run.scorecard.to_dict()


def test_a_scorecard_only_baseline_loads_without_turn_records(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "baseline")
    run = finished_run(folder)
    folder.turns.unlink()
    with pytest.raises(InputError) as refused:
        ScoredRun.load(folder)
    assert "turns.parquet: missing" in str(refused.value.problems)
    baseline = ScoredRun.load(folder, need_turns=False)
    assert baseline.records is None and baseline.core is None and baseline.source == str(folder.path)
    written = json.loads(folder.scorecard.read_text(encoding="utf-8"))
    assert json.loads(json.dumps(baseline.scorecard.to_dict(), default=str)) == written
    assert baseline.value("recognition_rate.v2") == run.value("recognition_rate.v2")
    assert "recognition_rate.v1" not in baseline.kpis  # superseded: not on the scorecard it was given as
    # The gate compares with it by point values (no turn records for a paired test).
    spec = GateSpec.model_validate({"version": 1, "kpis": {"recognition_rate.v2": {"max_regression": 0.0, "min_n": 5}}})
    chosen = baseline_for(spec, run, override=folder.path)
    assert chosen is not None and chosen.core is None
    (check,) = decide(spec, run, chosen).checks
    assert check.passed and "within the allowed" in check.message
