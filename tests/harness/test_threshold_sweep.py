"""The fallback-threshold sweep on a hand-made record table."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from records_factory import turn
from review_world import review_run
from typer.testing import CliRunner

from harness.cli import app
from harness.pipeline import write_outputs
from harness.records import ALL_OBSERVATIONS, read, to_frame
from harness.records.run_folder import RunFolder
from harness.scoring.metrics import ScoringOptions
from harness.scoring.scored_run import ScoredRun
from harness.trainer.threshold_sweep import configured_threshold, sweep

HELPDESK = Path(__file__).resolve().parents[1] / "fixtures" / "stock_rasa" / "helpdesk"
runner = CliRunner()
RUN_META = {
    "run_id": "20261122-000000-abcdef",
    "eval_set_hash": "h" * 64,
    "eval_set_version": 1,
    "harness_version": "test",
    "git_sha": "0" * 40,
    "config": {"version": 1, "bot": {"kind": "rasa", "url": "http://127.0.0.1:1"}},
    "bot": {"url": "http://127.0.0.1:1", "kind": "rasa.v1", "observes": sorted(ALL_OBSERVATIONS)},
}


def records():  # type: ignore[no-untyped-def]
    rows = [
        turn("a", 0, "fees", "fees"),  # in scope, right, confidence 0.9 (the factory's)
        turn("b", 0, "fees", "top_up"),  # in scope, wrong
        turn("c", 0, "out_of_scope", "top_up"),  # out of scope, would be accepted at 0.9
        turn("d", 0, "out_of_scope", "out_of_scope"),  # out of scope, recognised as such: never accepted
    ]
    rows[2]["confidence"] = 0.55
    return to_frame(rows)


def test_recognition_and_false_acceptance_per_threshold() -> None:
    table = sweep(records(), thresholds=(0.5, 0.6, 0.95)).table.set_index("threshold")
    assert table.loc[0.5, "recognition"] == pytest.approx(0.5)  # a of a, b
    assert table.loc[0.5, "false_acceptance"] == pytest.approx(0.5)  # c of c, d
    assert table.loc[0.6, "false_acceptance"] == 0 and table.loc[0.6, "recognition"] == pytest.approx(0.5)
    assert table.loc[0.95, "recognition"] == 0


def test_the_recommendation_is_the_best_recognition_within_the_false_acceptance_target() -> None:
    result = sweep(records(), thresholds=(0.5, 0.6, 0.95), max_false_acceptance=0.1)
    assert result.recommended == 0.6 and "within 10%" in result.reason
    assert sweep(records(), thresholds=(0.5,), max_false_acceptance=0.1).recommended is None


# --- the configured threshold beside the sweep: the project's own bot's -------------------------------------------


def test_the_configured_threshold_is_the_fallback_classifiers_or_rasas_default() -> None:
    pipeline = [{"name": "WhitespaceTokenizer"}, {"name": "FallbackClassifier", "threshold": 0.45}]
    assert configured_threshold({"pipeline": pipeline}) == 0.45
    assert configured_threshold({"pipeline": [{"name": "FallbackClassifier"}]}) == 0.3  # Rasa 3.x's default
    assert configured_threshold({"pipeline": [{"name": "DIETClassifier"}]}) is None
    # `rasa init` leaves `pipeline:` empty: Rasa's default pipeline, whose FallbackClassifier is at 0.3
    for defaulted in (None, {"recipe": "default.v1", "pipeline": None}, {"language": "en"}):
        assert configured_threshold(defaulted) == 0.3
    for broken, message in (
        (["pipeline"], "expected a mapping"),
        ({"pipeline": "WhitespaceTokenizer"}, "must be a list"),
        ({"pipeline": [{"name": "FallbackClassifier", "threshold": float("nan")}]}, "number in [0, 1]"),
        ({"pipeline": [{"name": "FallbackClassifier", "threshold": "high"}]}, "number in [0, 1]"),
        ({"pipeline": [{"name": "FallbackClassifier", "threshold": 1.5}]}, "number in [0, 1]"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            configured_threshold(broken)


def test_sweep_threshold_in_a_rasa_project_reads_that_bots_config(tmp_path: Path) -> None:
    repo = tmp_path / "helpdesk-bot"
    shutil.copytree(HELPDESK, repo, ignore=shutil.ignore_patterns("handoff.yml"))
    assert runner.invoke(app, ["init", str(repo)]).exit_code == 0
    config = yaml.safe_load((repo / "config.yml").read_text())
    config["pipeline"] = [c for c in config["pipeline"] if c.get("name") != "FallbackClassifier"]
    config["pipeline"].append({"name": "FallbackClassifier", "threshold": 0.45})
    (repo / "config.yml").write_text(yaml.safe_dump(config))
    folder = RunFolder.create(tmp_path / "runs", "r")
    records = read(review_run(tmp_path) / "turns.parquet")
    write_outputs(folder, ScoredRun.score(records, RUN_META, ScoringOptions(bootstrap_replicates=50, seed=1)))
    run = folder.path

    result = runner.invoke(app, ["--project", str(repo), "sweep-threshold", str(run)])
    assert result.exit_code == 0, result.output
    assert f"configured threshold ({repo / 'config.yml'}): 0.45" in result.output.replace("\n", "")

    harness_yml = repo / "harness.yml"
    harness_yml.write_text(harness_yml.read_text().replace("kind: rasa", "kind: rasa.v1"))  # a versioned kind
    result = runner.invoke(app, ["--project", str(repo), "sweep-threshold", str(run)])
    assert f"configured threshold ({repo / 'config.yml'}): 0.45" in result.output.replace("\n", ""), result.output

    (repo / "config.yml").write_text("pipeline: [\n")  # a broken bot config is said, and the sweep still runs
    result = runner.invoke(app, ["--project", str(repo), "sweep-threshold", str(run)])
    assert result.exit_code == 0, result.output
    assert "not valid YAML" in result.output and "threshold_sweep.csv" in result.output

    (repo / "config.yml").write_text("recipe: default.v1\nlanguage: en\npipeline:\n")  # as `rasa init` writes it
    result = runner.invoke(app, ["--project", str(repo), "sweep-threshold", str(run)])
    assert f"configured threshold ({repo / 'config.yml'}): 0.3" in result.output.replace("\n", ""), result.output

    harness_yml.write_text(harness_yml.read_text() + "\noutputdir: elsewhere\n")  # the sweep needs only the run
    result = runner.invoke(app, ["--project", str(repo), "sweep-threshold", str(run)])
    assert result.exit_code == 0, result.output
    assert "not known" in result.output and "outputdir" in result.output and "threshold_sweep.csv" in result.output
