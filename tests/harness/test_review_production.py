"""QA review of production dialogs: a window of a hand-built production store becomes a run folder, is flagged with
the label-free rules and sampled per conversation, overlapping windows review a conversation once, the reviewed
KPIs are estimated for the window's population (Wilson with finite-population correction), and exports name the
window. Expected figures are worked out here from the store's table (test_review_production_world.py)."""

from __future__ import annotations

import csv
import hashlib
import json
import re

import pandas as pd
import pytest
from review_world import FRAUD_MASKED, PASSWORD, review_project
from sqlalchemy import select
from sqlalchemy.orm import Session
from statsmodels.stats.proportion import proportion_confint
from test_review_production_world import (
    ALL,
    CLEAN,
    DAY_OF,
    DAYS,
    EMAIL,
    FLAGGED,
    in_sample,
    production_store,
    review_config,
)
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import InputError
from harness.records import COLUMNS
from harness.records.production import Window, parse_window
from harness.review import exports
from harness.review.dialogs import load_run, scored_run
from harness.review.flagging import select as select_dialogs
from harness.review.production import materialise, wilson_fpc, window_kpis
from harness.review.store import Dialog, Review, Role, Run, add_user, find_user

LABEL_RULES = {"outcome_mismatch", "wrong_queue", "missed_escalation", "unnecessary_escalation", "critical_tag"}


def folder_name(first: str, last: str, ids: list[str]) -> str:
    return f"production-{first}..{last}-" + hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:8]


def test_a_window_becomes_a_run_folder_named_by_its_days_and_conversations(tmp_path) -> None:
    store = production_store(tmp_path)
    folder = materialise(store, parse_window("2026-11-02..2026-11-03"), tmp_path / "runs")
    ids = [cid for cid in ALL if DAY_OF[cid] in DAYS[:2]]
    name = folder_name("2026-11-02", "2026-11-03", ids)
    assert folder.path == tmp_path / "runs" / name
    assert json.loads(folder.run_file.read_text()) == {
        "run_id": name,
        "stamp": {
            "source": "production",
            "store": str(store.path),
            "window": "2026-11-02..2026-11-03",
            "conversations": len(ids),
            "first_day": "2026-11-02",
            "last_day": "2026-11-03",
        },
    }
    turns = pd.read_parquet(folder.turns)
    assert list(turns.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert {"sent_at", "conversation_start", "customer", "ended_by"} <= set(turns.columns)
    assert set(turns["run_id"]) == {name} and sorted(set(turns["conversation_id"])) == ids
    assert turns["expected_outcome"].isna().all() and turns["expected_intent"].isna().all()

    written = folder.turns.stat().st_mtime_ns
    assert materialise(store, parse_window("2026-11-02..2026-11-03"), tmp_path / "runs") == folder
    assert folder.turns.stat().st_mtime_ns == written  # the same window is the same folder, not rewritten
    # An open-ended window is named by the days it holds.
    whole = materialise(store, Window(), tmp_path / "runs")
    assert whole.path.name == folder_name("2026-11-02", "2026-11-04", ALL)
    with pytest.raises(InputError, match="no production conversations"):
        materialise(store, parse_window("2026-12-01..2026-12-31"), tmp_path / "runs")


def test_only_label_free_rules_flag_production_dialogs(tmp_path) -> None:
    config, _ = review_config(tmp_path)
    assert all(getattr(config.flags, rule).enabled for rule in LABEL_RULES)
    folder = materialise(production_store(tmp_path), Window(), tmp_path / "runs")
    database = f"sqlite:///{tmp_path / 'review.db'}"
    from harness.review.database import connect

    with Session(connect(database)) as session:
        run = load_run(session, folder.path, config, actor="test")
        dialogs = {d.conversation_id: d for d in run.dialogs}
        chosen = {cid for cid in ALL if cid in FLAGGED or in_sample(cid)}
        assert set(dialogs) == chosen
        assert {cid: d.flag_rules for cid, d in dialogs.items() if d.flag_rules} == FLAGGED
        assert {cid: d.sampled for cid, d in dialogs.items()} == {cid: in_sample(cid) for cid in chosen}
        assert all(d.expected_label is None and d.auto_resolved is None for d in dialogs.values())
        assert run.selection["production"]["conversations"] == len(ALL) == run.conversations

    # The same records with labels: the handed-off conversation labelled self-served is flagged by a label rule,
    # so the rules are live and stay silent above only because production carries no label.
    labelled = scored_run(folder.path).records
    assert labelled is not None
    labelled = labelled.assign(expected_outcome="self_served", resolvable=True)
    from harness.scoring.scored_run import ScoredRun

    core = ScoredRun.from_records(labelled).core
    assert core is not None
    flags = {s.conversation_id: {f.rule for f in s.flags} for s in select_dialogs(core, config.flags, config.sample)}
    assert "unnecessary_escalation" in flags["web:handoff"]


def test_texts_stay_masked_and_turns_say_when_they_happened(tmp_path) -> None:
    config, _ = review_config(tmp_path)
    folder = materialise(production_store(tmp_path), Window(), tmp_path / "runs")
    from harness.review.database import connect

    with Session(connect(f"sqlite:///{tmp_path / 'review.db'}")) as session:
        dialogs = {d.conversation_id: d for d in load_run(session, folder.path, config, actor="test").dialogs}
    assert dialogs["web:fraud"].turns[0]["text"] == FRAUD_MASKED  # masked at import; masking again changes nothing
    long_text = dialogs["web:long"].turns[0]["text"]
    assert EMAIL not in long_text and long_text.startswith("change my email to [")
    assert dialogs["web:repeat"].turns[1]["sent_at"] == "2026-11-04T09:" + f"{ALL.index('web:repeat'):02d}:40+00:00"


def test_overlapping_windows_review_a_conversation_once(tmp_path) -> None:
    config, _ = review_config(tmp_path)
    store = production_store(tmp_path)
    first = materialise(store, parse_window("2026-11-02..2026-11-03"), tmp_path / "runs")
    second = materialise(store, parse_window("2026-11-03..2026-11-04"), tmp_path / "runs")
    from harness.review.database import connect

    database = f"sqlite:///{tmp_path / 'review.db'}"
    with Session(connect(database)) as session:
        load_run(session, first.path, config, actor="test")
        other, _ = review_config(tmp_path, rate=0.3)
        with pytest.raises(InputError, match="sampled differently"):
            load_run(session, second.path, other, actor="test")
        session.rollback()
        run = load_run(session, second.path, config, actor="test")
        chosen = {cid for cid in ALL if cid in FLAGGED or in_sample(cid)}
        shared = {cid for cid in chosen if DAY_OF[cid] == DAYS[1]}
        assert {d.conversation_id for d in run.dialogs} == {cid for cid in chosen if DAY_OF[cid] == DAYS[2]}
        assert run.selection["production"]["held_elsewhere"] == len(shared) > 0
        stored = [d.conversation_id for d in session.scalars(select(Dialog))]
        assert sorted(stored) == sorted(chosen)  # each selected conversation once, in one window or the other


def test_wilson_with_finite_population_correction_by_hand() -> None:
    # 3 of 4 sampled out of 10: n_eff = 4 * 9 / 6 = 6, so Wilson on 4.5 of 6.
    low, high = proportion_confint(4.5, 6, method="wilson")
    assert wilson_fpc(3, 4, 10) == pytest.approx((low, high))
    assert wilson_fpc(3, 4, 4) == (0.75, 0.75)  # a census
    assert wilson_fpc(3, 4, 10**9) == pytest.approx(proportion_confint(3, 4, method="wilson"), abs=1e-6)
    assert wilson_fpc(0, 0, 10) is None


def reviewed_world(tmp_path):  # type: ignore[no-untyped-def]
    """The whole store loaded (N = 20, rate 0.5); lea reviews every sampled dialog: the outcome right except for
    the first sampled one, a business-critical error on the second; and one flagged dialog outside the sample."""
    from harness.review.database import connect

    config, _ = review_config(tmp_path)
    folder = materialise(production_store(tmp_path), Window(), tmp_path / "runs")
    database = f"sqlite:///{tmp_path / 'review.db'}"
    sampled = sorted(cid for cid in ALL if in_sample(cid))
    with Session(connect(database)) as session:
        run = load_run(session, folder.path, config, actor="test")
        add_user(session, "lea", PASSWORD, Role.lead, actor="test")
        lea = find_user(session, "lea")
        dialogs = {d.conversation_id: d for d in run.dialogs}
        outside = next(cid for cid in FLAGGED if not in_sample(cid))
        for cid in [*sampled, outside]:
            dialog = dialogs[cid]
            wrong = cid == sampled[0]
            session.add(
                Review(
                    dialog_id=dialog.id,
                    analyst_id=lea.id,
                    ratings={a: "yes" for a in ("understood", "correct_answer", "correct_routing", "resolved")}
                    | {"tone": "good"},
                    critical_errors=["wrong_queue"] if cid == sampled[1] or cid == outside else [],
                    corrected_intents={},
                    correct_outcome="escalated:complaints" if wrong or cid == outside else dialog.actual_outcome,
                )
            )
        session.commit()
        run_id = run.run_id
    return config, database, run_id, sampled


def test_reviewed_kpis_of_a_window_are_estimated_for_its_population(tmp_path) -> None:
    from harness.review.database import connect

    config, database, run_id, sampled = reviewed_world(tmp_path)
    N, n = len(ALL), len(sampled)
    assert 0 < n < N
    n_eff = n * (N - 1) / (N - n)
    with Session(connect(database)) as session:
        window = window_kpis(session, config.scorecard, run_id)
    assert window is not None
    assert (window.conversations, window.sampled, window.reviewed) == (N, n, n)
    assert window.label == f"production 2026-11-02..2026-11-04 of {tmp_path / 'production'} (N = {N})"
    kpis = {k.name: k for k in window.kpis}
    outcome = kpis["reviewed_outcome_accuracy"]
    assert (outcome.hits, outcome.n, outcome.value) == (n - 1, n, (n - 1) / n)
    assert outcome.interval == pytest.approx(proportion_confint((n - 1) / n * n_eff, n_eff, method="wilson"))
    business = kpis["critical_accuracy.business"]
    assert (business.hits, business.n) == (n - 1, n)  # the flagged dialog outside the sample does not count
    # Resolution is a domain: the dialogs the bot kept and rated (every sampled one here, none handed off unless
    # web:handoff is sampled).
    kept = [cid for cid in sampled if cid != "web:handoff"]
    resolution = kpis["reviewed_resolution"]
    assert (resolution.hits, resolution.n) == (len(kept), n)
    # Escalation accuracy is a domain too: the handed-off dialogs. The seed draws web:handoff into the sample, and
    # its estimated domain, N * 1 / n conversations, gives n_eff = 1 * (N_d - 1) / (N_d - 1) = 1.
    assert [cid for cid in sampled if cid == "web:handoff"] == ["web:handoff"] != sampled[:1]
    escalation = kpis["reviewed_escalation_accuracy"]
    assert (escalation.hits, escalation.n, escalation.domain) == (1, 1, pytest.approx(N / n))
    assert escalation.interval == pytest.approx(proportion_confint(1, 1, method="wilson"))
    # Leaving out a dialog (an open calibration) takes it out of the sample and of the reviewed.
    with Session(connect(database)) as session:
        first = session.scalar(select(Dialog).where(Dialog.conversation_id == sampled[0]))
        assert first is not None
        fewer = window_kpis(session, config.scorecard, run_id, leave_out={first.id})
    assert fewer is not None and (fewer.sampled, fewer.reviewed) == (n - 1, n - 1)
    assert {k.name: k for k in fewer.kpis}["reviewed_outcome_accuracy"].hits == n - 1


def test_the_command_line_loads_a_window_once_and_reports_its_population_kpis(tmp_path) -> None:
    runner = CliRunner()
    _, config_file = review_config(tmp_path)
    store = production_store(tmp_path)
    database = f"sqlite:///{tmp_path / 'review.db'}"
    common = ["--store", str(store.path), "--runs", str(tmp_path / "runs"), "--db", database]
    args = ["review", "load", "--production", "--window", "2026-11-02..2026-11-04", *common]
    first = runner.invoke(app, [*args, "--config", str(config_file)])
    assert first.exit_code == 0, first.output
    name = folder_name("2026-11-02", "2026-11-04", ALL)
    chosen = {cid for cid in ALL if cid in FLAGGED or in_sample(cid)}
    assert f"loaded run {name}: {len(chosen)} of {len(ALL)} dialogs to review" in first.output
    again = runner.invoke(app, [*args, "--config", str(config_file)])
    assert again.exit_code == 0 and "loaded already" in again.output
    stray = runner.invoke(app, ["review", "load", "--window", "7d", "--db", database])
    assert stray.exit_code == 2 and "only with --production" in stray.output
    empty = runner.invoke(app, ["review", "load", "--production", "--window", "2027-01-01", *common])
    assert empty.exit_code == 2 and "no production conversations" in empty.output

    report = runner.invoke(app, ["review", "report", "--run", name, "--db", database, "--config", str(config_file)])
    assert report.exit_code == 0, report.output
    assert f"production 2026-11-02..2026-11-04 of {store.path} (N = {len(ALL)})" in report.output
    assert "finite-population correction" in report.output
    assert f"0 of the {sum(in_sample(cid) for cid in ALL)} sampled dialog(s) reviewed" in report.output


def test_exports_name_the_production_window(tmp_path) -> None:
    from harness.review.database import connect

    paths = review_project(tmp_path)
    config, _ = review_config(tmp_path)
    store = production_store(tmp_path)
    folder = materialise(store, Window(), tmp_path / "runs")
    with Session(connect(f"sqlite:///{tmp_path / 'review.db'}")) as session:
        run = load_run(session, folder.path, config, actor="test")
        add_user(session, "ann", PASSWORD, Role.analyst, actor="test")
        fraud = next(d for d in run.dialogs if d.conversation_id == "web:fraud")
        session.add(
            Review(
                dialog_id=fraud.id,
                analyst_id=find_user(session, "ann").id,
                ratings={a: "no" for a in ("understood", "correct_answer", "correct_routing", "resolved")}
                | {"tone": "good"},
                critical_errors=["fraud_not_escalated"],
                corrected_intents={"0": "report_fraud"},
                correct_outcome="escalated:fraud",
            )
        )
        session.commit()
        corrections = exports.export_corrections(session, paths, actor="test")
        regressions = exports.export_regressions(session, paths, config.scorecard, actor="test")
        session.commit()
        assert session.scalar(select(Run.run_id)) == folder.path.name
    window = f"production 2026-11-02..2026-11-04 of {store.path}"
    assert len(corrections.added) == 1 and f"{window}/web:fraud" in corrections.added[0]
    with (paths.intents / "provenance.csv").open(encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["run"], row["conversation"], row["text"]) == (window, "web:fraud", FRAUD_MASKED)
    # Production ids hold ':', which an eval-set id may not: the regression copy's id replaces it.
    assert len(regressions.added) == 1 and regressions.added[0].startswith("qa-web-fraud-r1: ")
    assert f"of {window}/web:fraud" in (paths.eval_sets / "qa_regressions.yml").read_text()
    assert CLEAN  # the clean conversations are part of the population, not of the exports


def test_a_production_dialogs_regression_copy_is_a_valid_eval_set_id_the_leakage_check_recognises() -> None:
    from harness.trainer.provenance import Provenance, regression_id, reviewed_from

    conversation = "web:1042:9f3a61c2"  # production ids hold ':' (<source>:<first event>:<sender hash>)
    exported = regression_id(conversation, 7)
    assert exported == "qa-web-1042-9f3a61c2-r7" and re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9_.-]*", exported
    )  # EvalConversation.id
    assert regression_id(exported.removeprefix("qa-").removesuffix("-r7"), 7) == exported  # idempotent
    row = Provenance("I lost my card", "card_lost", "production-x", conversation, 0, "ana", 7, "2026-12-01")
    assert exported in reviewed_from([row])["i lost my card"]
