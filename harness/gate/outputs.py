"""The gate's outputs: JUnit XML (one test case per check, so CI systems show them natively), a Markdown summary
fit for a pull-request comment, and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from harness.gate.decision import GateResult


def junit_xml(result: GateResult) -> str:
    suite = ET.Element(
        "testsuite",
        name="release-gate",
        tests=str(len(result.checks)),
        failures=str(len(result.failures())),
        errors="0",
    )
    for check in result.checks:
        case = ET.SubElement(suite, "testcase", classname=f"release_gate.{check.group}", name=check.name)
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=check.message)
            failure.text = check.message
        elif check.known_failure:
            ET.SubElement(case, "skipped", message=check.message)
        else:
            ET.SubElement(case, "system-out").text = check.message
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def markdown(result: GateResult) -> str:
    verdict = "PASSED" if result.passed else "FAILED"
    run = result.run
    lines = [
        f"## Release gate {verdict}",
        "",
        f"Run `{run.get('run_id')}` (bot `{run.get('bot_model')}`, eval sets `{str(run.get('eval_set_hash'))[:12]}`)"
        + (
            f" against baseline `{result.baseline.get('run_id')}` (bot `{result.baseline.get('bot_model')}`)."
            if result.baseline
            else "."
        ),
        "",
    ]
    failures = result.failures()
    if failures:
        lines += [f"**{len(failures)} check(s) failed:**", ""] + [f"- {c.message}" for c in failures] + [""]
    kpis = [c for c in result.checks if c.group == "kpi"]
    lines += ["| KPI check | result |", "|---|---|"]
    lines += [f"| {'✅' if c.passed else '❌'} {c.name} | {c.message} |" for c in kpis]
    must = [c for c in result.checks if c.group == "must_pass"]
    if must:
        known = [c for c in must if c.known_failure]
        lines += [
            "",
            f"Must-pass conversations: {sum(c.passed and not c.known_failure for c in must)} of "
            f"{len(must)} passed, {len(known)} known failure(s) (failing in the baseline too).",
        ]
        lines += [f"- known: {c.message}" for c in known]
    lines += ["", *[f"_Note: {n}_" for n in result.notes]] if result.notes else []
    return "\n".join(lines) + "\n"


def as_json(result: GateResult) -> str:
    return (
        json.dumps(
            {
                "passed": result.passed,
                "run": result.run,
                "baseline": result.baseline,
                "notes": result.notes,
                "checks": [
                    {"name": c.name, "group": c.group, "passed": c.passed, "message": c.message} for c in result.checks
                ],
            },
            indent=2,
        )
        + "\n"
    )


def write_outputs(result: GateResult, *, junit: Path, markdown_path: Path, json_path: Path) -> None:
    junit.write_text(junit_xml(result), encoding="utf-8")
    markdown_path.write_text(markdown(result), encoding="utf-8")
    json_path.write_text(as_json(result), encoding="utf-8")
