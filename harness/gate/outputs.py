"""The gate's outputs: JUnit XML (one test case per check, so CI systems show them natively), a Markdown summary
fit for a pull-request comment, and JSON.

Check messages quote the bot (a must-pass rule shows what the bot said), and a bot can say anything: control
characters, HTML, Markdown. Every output stays well-formed and inert whatever it said:
- XML: characters XML 1.0 forbids (C0 controls but tab, newline and carriage return; surrogates; U+FFFE, U+FFFF)
  are written visibly as Python-style escapes (`\\x1b`, `\\ufffe`), so `gate.xml` always parses (W3C XML 1.0,
  section 2.2 "Characters"), and a backslash is doubled so an escape is never ambiguous;
- Markdown: the same escapes for every control character (C0 and C1, newlines included, so a table row or list
  item is never broken), HTML's special characters as entities (no raw HTML reaches the comment), and Markdown's
  inline punctuation backslash-escaped (CommonMark 0.31, section 2.4 "Backslash escapes"), `|` included (GitHub
  Flavored Markdown tables);
- JSON: json.dumps escapes control characters itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

from harness.gate.decision import GateResult

_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff\\\\]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff\\\\]")
_MARKDOWN_INLINE = re.compile(r"([`*_\[\]|~$<>&\"])")
"""Characters that can open inline markup in a line we start ourselves (`- `, `| `): code, emphasis, links and
images, table cells, strikethrough, math; and HTML's (made entities)."""


SHORT = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in SHORT:
        return SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every character XML 1.0 forbids written as a visible escape (`\\x1b`), backslashes doubled;
    tab, newline and carriage return kept."""
    return _XML_FORBIDDEN.sub(_escape, text)


def one_line(text: str) -> str:
    """`text` with every control character (newlines and tabs included) written as a visible escape: for a line
    of a console, a list item or a table cell."""
    return _CONTROL.sub(_escape, text)


_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;"}
_AUTOLINKS = re.compile(r"(@)(?=\w)|(#)(?=\d)|(:)(?=//)|(www)(?=\.)", re.IGNORECASE)
"""What GitHub turns into live features in a comment: @mentions (they notify people), #123 references, and
autolinked URLs (`scheme://`, `www.`)."""
_WORD_JOINER = "\u2060"


def markdown_text(text: str) -> str:
    """`text` as inert Markdown on one line: control characters visible, HTML special characters as entities,
    Markdown punctuation backslash-escaped (it renders as the same characters, never as markup), and GitHub's
    mentions, issue references and autolinks broken by an invisible word joiner (U+2060), so a bot's words
    notify nobody and link nowhere."""
    escaped = _MARKDOWN_INLINE.sub(lambda m: _ENTITIES.get(m.group(1)) or "\\" + m.group(1), one_line(text))
    return _AUTOLINKS.sub(lambda m: m.group(0) + _WORD_JOINER, escaped)


def _code(text: object) -> str:
    """An identifier (run id, bot model) as inline code: backticks and control characters removed."""
    return "`" + one_line(str(text)).replace("`", "'") + "`"


def junit_xml(result: GateResult) -> str:
    suite = ET.Element(
        "testsuite",
        name="release-gate",
        tests=str(len(result.checks)),
        failures=str(len(result.failures())),
        errors="0",
    )
    for check in result.checks:
        message = visible(check.message)
        case = ET.SubElement(suite, "testcase", classname=f"release_gate.{check.group}", name=visible(check.name))
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=message)
            failure.text = message
        elif check.known_failure:
            ET.SubElement(case, "skipped", message=message)
        elif check.warning:
            ET.SubElement(case, "system-err").text = "warning: " + message
        else:
            ET.SubElement(case, "system-out").text = message
    if result.detectability:
        properties = ET.Element("properties")
        for line in result.detectability:
            ET.SubElement(
                properties, "property", name=f"detectable: {visible(line.check)}", value=visible(line.message)
            )
        suite.insert(0, properties)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def markdown(result: GateResult) -> str:
    verdict = "PASSED" if result.passed else "FAILED"
    run = result.run
    lines = [
        f"## Release gate {verdict}",
        "",
        f"Run {_code(run.get('run_id'))} (bot {_code(run.get('bot_model'))}, eval sets "
        f"{_code(str(run.get('eval_set_hash'))[:12])})"
        + (
            f" against baseline {_code(result.baseline.get('run_id'))} (bot {_code(result.baseline.get('bot_model'))})."
            if result.baseline
            else "."
        ),
        "",
    ]
    failures = result.failures()
    if failures:
        lines += [f"**{len(failures)} check(s) failed:**", ""] + [f"- {markdown_text(c.message)}" for c in failures]
        lines += [""]
    kpis = [c for c in result.checks if c.group == "kpi"]
    lines += ["| KPI check | result |", "|---|---|"]
    lines += [f"| {'✅' if c.passed else '❌'} {markdown_text(c.name)} | {markdown_text(c.message)} |" for c in kpis]
    must = [c for c in result.checks if c.group == "must_pass"]
    if must:
        known = [c for c in must if c.known_failure]
        warned = [c for c in must if c.warning]
        conversations = [c for c in must if not c.name.endswith(": no regression")]
        lines += [
            "",
            f"Must-pass conversations: {sum(c.passed and not c.known_failure and not c.warning for c in conversations)}"
            f" of {len(conversations)} passed, {len(known)} known failure(s) (failing in the baseline too)"
            + (f", {len(warned)} new failure(s) listed as warnings" if warned else "")
            + ".",
        ]
        lines += [f"- ⚠️ new: {markdown_text(c.message)}" for c in warned]
        lines += [f"- known: {markdown_text(c.message)}" for c in known]
        lines += [f"- {markdown_text(c.message)}" for c in must if c.name.endswith(": no regression") and c.passed]
    if result.detectability:
        lines += ["", "**What this gate can see** (smallest drop caught with the target power, at this eval size):", ""]
        lines += [f"- {'🔍' if d.blind_spot else '✔️'} {markdown_text(d.message)}" for d in result.detectability]
    lines += ["", *[f"_Note: {markdown_text(n)}_" for n in result.notes]] if result.notes else []
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
                    {
                        "name": c.name,
                        "group": c.group,
                        "passed": c.passed,
                        "message": c.message,
                        "known_failure": c.known_failure,
                        "warning": c.warning,
                    }
                    for c in result.checks
                ],
                "detectability": [d.as_dict() for d in result.detectability],
            },
            indent=2,
        )
        + "\n"
    )


def write_outputs(result: GateResult, *, junit: Path, markdown_path: Path, json_path: Path) -> None:
    junit.write_text(junit_xml(result), encoding="utf-8")
    markdown_path.write_text(markdown(result), encoding="utf-8")
    json_path.write_text(as_json(result), encoding="utf-8")
