"""monitoring/: the alert rules and the scrape configuration checked by promtool, the rules' own unit tests
(alerts_test.yml) run by promtool, and the Grafana dashboard: valid JSON for Grafana 9+, every query valid PromQL
(promtool) and naming only metrics the exporter (harness.sinks.probe_metrics) really exports, as scraped from it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness.records.probe_log import ProbeResult
from harness.scoring.uptime import uptime
from harness.sinks.probe_metrics import ProbeMetrics

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
ALERTS = MONITORING / "prometheus" / "alerts.yml"
ALERTS_TEST = MONITORING / "prometheus" / "alerts_test.yml"
SCRAPE_CONFIG = MONITORING / "prometheus" / "prometheus.yml"
DASHBOARD = MONITORING / "grafana" / "harness-probes.json"

PROMETHEUS_OWN = {"up"}
"""Series Prometheus makes itself for every scrape target."""
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "24h", "$__interval": "1m", "$window": "15m"}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        # scripts/setup_system.sh installs it (Debian's `prometheus`); under CI its absence is a failure.
        message = "promtool missing: scripts/setup_system.sh installs it (Debian package prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every sample name the exporter serves once each probe has passed and failed, read off a real scrape."""
    metrics = ProbeMetrics("reference-bot")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for ok, attempts in ((True, 1), (False, 2)):
        metrics.record(
            ProbeResult(
                target="reference-bot",
                probe="balance",
                started_at=t0,
                finished_at=t0 + timedelta(seconds=1),
                ok=ok,
                attempts=attempts,
                latency_ms=300.0,
                holds_until=t0 + timedelta(minutes=3),
                failed_check=None if ok else "reply",
            )
        )
    failed = ProbeResult(
        target="reference-bot",
        probe="balance",
        started_at=t0,
        finished_at=t0 + timedelta(seconds=1),
        ok=False,
        attempts=2,
        latency_ms=300.0,
        holds_until=t0 + timedelta(minutes=3),
        failed_check="reply",
    )
    metrics.record_uptime(uptime([failed], t0, t0 + timedelta(minutes=5)), "24h")  # the uptime and incident series
    with metrics.serve(port=0) as handle:
        text = httpx.get(f"http://127.0.0.1:{handle.port}/metrics", timeout=5).text
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or"}
PROMQL_WORDS |= {"unless", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, aggregations, keywords,
    label names (inside {...} or a by/on/... clause), strings or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group().lower() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def test_metric_names_reads_promql_as_intended() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, probe) (rate(a_bucket{target=~"x|y"}[5m]))) > 3 unless on (job) b'
    assert metric_names(expr) == {"a_bucket", "b"}
    assert metric_names("time() - c > 1e3 and absent(up{job='x'})") == {"c", "up"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL with Grafana's variables replaced by example values) of every panel query."""
    queries = []
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace('=~"$target"', '=~".*"')
            for variable, example in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, example)
            assert "$" not in expr, f"{panel['title']}: unknown Grafana variable in {target['expr']}"
            queries.append((panel["title"], expr))
    return queries


def test_alert_rules_and_scrape_config_pass_promtool_checks(promtool: str) -> None:
    for args in (("check", "rules", ALERTS), ("check", "config", SCRAPE_CONFIG)):
        checked = run(promtool, *args)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in run(promtool, "check", "rules", ALERTS).stdout


def test_alert_rules_pass_their_unit_tests(promtool: str) -> None:
    tested = run(promtool, "test", "rules", ALERTS_TEST)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_unit_tests_catch_a_changed_rule(promtool: str, tmp_path: Path) -> None:
    """BotDown waiting 3 minutes instead of 2 must fail alerts_test.yml (it expects the alert at 4m)."""
    rules = ALERTS.read_text(encoding="utf-8")
    changed = rules.replace("expr: harness_bot_up == 0\n        for: 2m", "expr: harness_bot_up == 0\n        for: 3m")
    assert changed != rules
    (tmp_path / "alerts.yml").write_text(changed, encoding="utf-8")
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yml")
    tested = run(promtool, "test", "rules", tmp_path / "alerts_test.yml")
    assert tested.returncode != 0 and "alertname: BotDown, time: 4m" in tested.stdout + tested.stderr


def test_every_alert_names_exported_metrics(exported: set[str]) -> None:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} >= {"BotDown", "ProbeStale", "ProbeExporterDown", "ProbeLatencyHigh"}
    for rule in rules:
        unknown = metric_names(str(rule["expr"])) - exported - PROMETHEUS_OWN
        assert not unknown, f"{rule['alert']}: {sorted(unknown)} not exported"


def test_the_dashboard_is_an_importable_grafana_dashboard() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 36
    assert board["uid"] == "harness-probes" and board["id"] is None
    assert [(i["name"], i["type"], i["pluginId"]) for i in board["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")
    ]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"] and all(t["datasource"] == panel["datasource"] for t in panel["targets"])
    queries = dict(dashboard_queries())
    assert queries["Bot up now"] == 'harness_bot_up{target=~".*"}'
    assert queries["Uptime over the dashboard range"] == 'avg_over_time(harness_bot_up{target=~".*"}[24h])'
    assert "harness_probe_success" in queries["Probe success by probe"]
    assert "time() - harness_probe_last_success_timestamp_seconds" in queries["Time since last success"]
    latency = [e for title, e in dashboard_queries() if title.startswith("Latency")]
    assert [e.split(",")[0] for e in latency] == ["histogram_quantile(0.5", "histogram_quantile(0.95"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["target"]["definition"] == "label_values(harness_bot_up, target)"


def test_dashboard_queries_are_valid_promql_on_exported_metrics(
    promtool: str, exported: set[str], tmp_path: Path
) -> None:
    queries = dashboard_queries()
    for title, expr in queries:
        unknown = metric_names(expr) - exported - PROMETHEUS_OWN
        assert not unknown, f"{title}: {sorted(unknown)} not exported"
    # promtool parses PromQL when it checks rules: each query becomes a recording rule.
    rules = {
        "groups": [{"name": "dashboard", "rules": [{"record": f"q{i}", "expr": e} for i, (_, e) in enumerate(queries)]}]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    checked = run(promtool, "check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    variable = re.fullmatch(r"label_values\((\w+), target\)", dashboard()["templating"]["list"][0]["definition"])
    assert variable is not None and variable.group(1) in exported
