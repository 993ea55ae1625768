"""The probe configuration (experiments/probe.yml) and the probe set: defaults, resolution, the run configuration
the bot kinds take, and one broken file per error message."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.project.probe_config import load_probe_config, load_probe_set
from harness.sources.probes import load_probes

REPO = Path(__file__).resolve().parents[2]
MINIMAL = """version: 1
target: shop-bot
bot: {kind: reference, url: "http://127.0.0.1:5005/webhooks/reference/webhook"}
probes: probes.yml
"""
PROBES = """version: 1
name: probes
conversations:
  - id: probe-balance
    turns:
      - text: "what's my balance"
        intent: check_balance
        expect: {actions: [action_check_balance]}
    expected: {outcome: self_served}
    resolvable: true
  - id: probe-human
    turns:
      - text: "a person please"
        intent: request_human
    expected: {outcome: escalated, queue: general}
    resolvable: false
"""


def write(tmp_path: Path, text: str, name: str = "probe.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_probe_config(path, **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def test_a_minimal_file_gets_the_documented_defaults(tmp_path: Path) -> None:
    config = load_probe_config(write(tmp_path, MINIMAL))
    assert (config.schedule.interval_s, config.schedule.jitter_s) == (60.0, 5.0)
    assert (config.retry_delay_s, config.turn_timeout_s, config.latency_budget_ms) == (2.0, 10.0, 3000.0)
    assert config.budget_ms("anything") == 3000.0
    # 3 * 60 s + 5 s.
    assert config.stale_after == timedelta(seconds=185)
    assert config.store == "sqlite:///experiments/probes.sqlite3"
    assert (config.metrics.host, config.metrics.port) == ("127.0.0.1", 9464)
    assert config.source == tmp_path / "probe.yml"


def test_overrides_and_resolution(tmp_path: Path) -> None:
    config = load_probe_config(
        write(tmp_path, MINIMAL),
        {"schedule.interval_s": 30, "schedule.jitter_s": None, "latency_budgets": {"probe-balance": 800}},
    )
    # 3 * 30 s + 5 s (jitter_s left at its default: a None override is ignored).
    assert config.stale_after == timedelta(seconds=95)
    assert (config.budget_ms("probe-balance"), config.budget_ms("probe-human")) == (800.0, 3000.0)
    resolved = config.resolved(tmp_path)
    assert resolved.probes == tmp_path / "probes.yml"
    assert resolved.store == f"sqlite:///{tmp_path}/experiments/probes.sqlite3"
    assert resolved.tracking.uri == f"sqlite:///{tmp_path}/experiments/mlflow.db"
    assert resolved.source == config.source
    elsewhere = config.model_copy(update={"store": "postgresql+psycopg://u@localhost/probes"}).resolved(tmp_path)
    assert elsewhere.store == "postgresql+psycopg://u@localhost/probes"


def test_the_run_configuration_has_the_turn_timeout_and_no_http_retries(tmp_path: Path) -> None:
    config = load_probe_config(write(tmp_path, MINIMAL + "turn_timeout_s: 4\n"))
    run = config.run_config()
    assert (run.replay.turn_timeout_s, run.replay.retries, run.replay.concurrency) == (4.0, 0, 1)
    assert run.bot == config.bot and run.eval_sets == Path("probes.yml")


def test_the_committed_configuration_and_probe_set_load() -> None:
    config = load_probe_config(REPO / "experiments" / "probe.yml").resolved(REPO)
    assert (config.target, config.bot.kind, config.bot.token_env) == (
        "reference-bot",
        "reference",
        "REFERENCE_CHANNEL_TOKEN",
    )
    assert config.bot.url == "http://127.0.0.1:5005/webhooks/reference/webhook"
    assert config.stale_after == timedelta(seconds=185)
    probes = load_probes(config, REPO)
    assert [p.id for p in probes] == ["probe-balance", "probe-branch-hours", "probe-handoff-cards"]
    assert [p.expected.label for p in probes] == ["self_served", "self_served", "escalated:cards"]
    assert all(1 <= len(p.turns) <= 3 for p in probes)


def test_every_problem_of_a_broken_file_is_reported_with_its_location(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL.replace("shop-bot", '"shop:bot"')
        + "latency_budget_ms: 0\nlatency_budgets: {probe-balance: -5}\nmetrics: {port: 70000}\nscheduel: {}\n",
    )
    assert problems(path) == [
        f"{path}: target: 'shop:bot' is not a target name: up to 40 letters, digits, '_', '.' or '-', starting with "
        "a letter or digit (no ':', which separates the parts of a probe's sender id)",
        f"{path}: latency_budget_ms: Input should be greater than 0",
        f"{path}: latency_budgets.probe-balance: Input should be greater than 0",
        f"{path}: metrics.port: Input should be less than or equal to 65535",
        f"{path}: scheduel: unknown key 'scheduel' (did you mean 'schedule'?); known: bot, latency_budget_ms, "
        "latency_budgets, metrics, probes, retry_delay_s, schedule, stale_after_s, store, target, tracking, "
        "turn_timeout_s, version",
    ]


def test_jitter_must_stay_below_the_interval(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "schedule: {interval_s: 10, jitter_s: 10}\n")
    assert problems(path) == [
        f"{path}: schedule: jitter_s (10) must be less than interval_s (10), or cycles could start out of order; "
        "lower jitter_s"
    ]


def test_the_interval_must_be_positive(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "schedule: {interval_s: 0, jitter_s: 0}\n")
    assert problems(path) == [f"{path}: schedule.interval_s: Input should be greater than 0"]


def test_the_retry_comes_before_the_next_cycle(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "schedule: {interval_s: 10, jitter_s: 1}\nretry_delay_s: 10\n")
    assert problems(path) == [
        f"{path}: retry_delay_s: retry_delay_s (10) must be less than schedule.interval_s (10): the retry comes "
        "before the next cycle"
    ]


def test_stale_after_must_outlive_one_late_cycle(tmp_path: Path) -> None:
    base = MINIMAL + "schedule: {interval_s: 10, jitter_s: 2}\n"
    # 10 s + 2 s = 12 s: a result must stand longer than that.
    path = write(tmp_path, base + "stale_after_s: 12\n")
    assert problems(path) == [
        f"{path}: stale_after_s: stale_after_s (12) must exceed schedule.interval_s + schedule.jitter_s (12), or "
        "results expire between cycles that run on time; leave it out for 3 * interval_s + jitter_s"
    ]
    ok = load_probe_config(write(tmp_path, base + "stale_after_s: 12.5\n", "ok.yml"))
    assert ok.stale_after == timedelta(seconds=12.5)


def test_budgets_must_name_probes_of_the_set(tmp_path: Path) -> None:
    write(tmp_path, PROBES, "probes.yml")
    path = write(tmp_path, MINIMAL + "latency_budgets: {probe-balanse: 500, probe-human: 900}\n")
    config = load_probe_config(path).resolved(tmp_path)
    with pytest.raises(InputError) as caught:
        load_probe_set(config, root=REPO)
    assert caught.value.problems == [
        f"{path}: latency_budgets.probe-balanse: unknown probe 'probe-balanse' (did you mean 'probe-balance'?); "
        "known: probe-balance, probe-human"
    ]


def test_probes_are_checked_against_the_bots_vocabulary(tmp_path: Path) -> None:
    probes = write(tmp_path, PROBES.replace("intent: check_balance", "intent: check_balanse"), "probes.yml")
    config = load_probe_config(write(tmp_path, MINIMAL)).resolved(tmp_path)
    with pytest.raises(InputError) as caught:
        load_probes(config, REPO)
    (problem,) = caught.value.problems
    assert problem.startswith(
        f"{probes}: conversations[0](probe-balance).turns[0].intent: unknown intent 'check_balanse' (did you mean "
        "'check_balance'?)"
    )


def test_a_sender_id_too_long_for_the_channel_is_refused(tmp_path: Path) -> None:
    long_id = "p" * 70
    probes = write(tmp_path, PROBES.replace("probe-human", long_id), "probes.yml")
    config = load_probe_config(write(tmp_path, MINIMAL.replace("shop-bot", "t" * 40))).resolved(tmp_path)
    with pytest.raises(InputError) as caught:
        load_probe_set(config, root=REPO)
    # harness-probe: (14) + 40 + ':' + 70 + ':' + 8 hex = 134 characters.
    assert caught.value.problems == [
        f"{probes}: {long_id}: id: the probe's sender id would be 134 characters, over the 128 a bot channel "
        "accepts; shorten the probe id or the target"
    ]


def test_an_escalated_probe_needs_a_bot_that_reports_handoffs(tmp_path: Path) -> None:
    probes = write(tmp_path, PROBES.replace("expect: {actions: [action_check_balance]}", ""), "probes.yml")
    bot = (
        "bot:\n  kind: http_json\n  url: http://127.0.0.1:9/chat\n"
        "  request: {json: {session: '{conversation_id}', text: '{text}'}}\n"
        "  response: {messages: replies}\n  vocabulary: {intents: [check_balance, request_human], queues: [general]}\n"
    )
    text = MINIMAL.replace('bot: {kind: reference, url: "http://127.0.0.1:5005/webhooks/reference/webhook"}\n', bot)
    config = load_probe_config(write(tmp_path, text)).resolved(tmp_path)
    with pytest.raises(InputError) as caught:
        load_probes(config, REPO)
    assert caught.value.problems == [
        f"{probes}: probe-human: expected.outcome: a http_json bot does not report handoffs, so an escalated probe "
        "cannot be judged; map the bot's handoffs in its configuration or drop the probe"
    ]
