"""intents/ at scale: `harness intents import` of a 10,000-row CSV and `harness intents validate` on the result
(about 10,700 examples over 90 intents), timed as a trainer runs them, on a temporary copy of the project.

    .venv/bin/python bench/intents_scale.py [--data ../shared/data/hwu64/train.csv] [--rows 10000]

The CSV is built at run time from the HWU64 training split (public, 64 intents; read from ../shared, never copied
into the repository): every row, then repeats of the first rows in upper case up to `--rows` (a real export has
repeats; they are skipped as such). New intents get `--queue general`. The repository's intents/, eval_sets/,
bot/escalation.yml and bot/domain/ are copied to a temporary folder; the real ones are never touched.

Each command runs as a child process (`python -m harness ...`, what a trainer types, module imports and model
loading included), in this order: import --dry-run (read + plan), import (read + plan + write + re-validate),
validate --no-embeddings, validate (MiniLM embeddings for confusable pairs and near leakage). Wall time and the
child's peak resident memory are measured; the counts come from the commands' own summary lines and report files.
Writes bench/results/intents_scale.json and intents_scale.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from harness.project.intents import load_catalog

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "hwu64" / "train.csv"


def build_csv(data: Path, rows: int, target: Path) -> dict[str, int]:
    """A `text,intent` CSV of `rows` rows from the HWU64 split at `data`; returns its make-up."""
    with data.open(encoding="utf-8", newline="") as handle:
        source = [(r["text"], r["intent"]) for r in csv.DictReader(handle)]
    padded = source[:rows] + [(text.upper(), intent) for text, intent in source[: max(0, rows - len(source))]]
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        writer.writerows(padded)
    return {
        "rows": len(padded),
        "from_split": min(rows, len(source)),
        "upper_case_repeats": len(padded) - min(rows, len(source)),
        "intents": len({i for _, i in padded}),
    }


def project_copy(folder: Path) -> Path:
    """The parts of the repository the intents commands read, copied under `folder`."""
    root = folder / "project"
    shutil.copytree(REPO / "intents", root / "intents")
    shutil.copytree(REPO / "eval_sets", root / "eval_sets")
    (root / "bot").mkdir(parents=True)
    shutil.copy(REPO / "bot" / "escalation.yml", root / "bot" / "escalation.yml")
    shutil.copytree(REPO / "bot" / "domain", root / "bot" / "domain")
    return root


def timed(args: list[str]) -> dict[str, object]:
    """Run `python -m harness ARGS` in a child process; wall seconds, the child's peak RSS, exit code, output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": round(seconds, 1),
        # ru_maxrss of children is the largest child so far: exact for the first, a lower bound after a bigger one.
        "peak_rss_mb": round(peak / 1024) if peak > before else None,
        "exit_code": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
    }


def last_line(text: str, prefix: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return lines[-1] if lines else ""


def section(report: str, name: str) -> list[str]:
    """The lines of section `## name (N)` of a report file written by the intents commands."""
    lines: list[str] = []
    inside = False
    for line in report.splitlines():
        if line.startswith("## "):
            inside = line.startswith(f"## {name} (")
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def number(pattern: str, text: str) -> int | None:
    found = re.search(pattern, text)
    return int(found.group(1)) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="HWU64 train.csv (text,intent).")
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found; pass --data PATH to the HWU64 train.csv (text,intent)")
    with tempfile.TemporaryDirectory(prefix="intents-scale-") as tmp:
        folder = Path(tmp)
        source = folder / "hwu64_export.csv"
        make_up = build_csv(args.data, args.rows, source)
        root = project_copy(folder)
        examples_before = sum(len(i.examples) for i in load_catalog(root / "intents").intents.values())
        base = ["--root", str(root)]
        steps: dict[str, dict[str, object]] = {}
        import_args = ["intents", "import", str(source), "--queue", "general", *base]
        steps["import_dry_run"] = timed([*import_args, "--dry-run", "--report", str(folder / "dry_run.txt")])
        steps["import"] = timed([*import_args, "--report", str(folder / "import.txt")])
        validate_args = ["intents", "validate", *base, "--report", str(folder / "validate.txt")]
        steps["validate_no_embeddings"] = timed([*validate_args, "--no-embeddings"])
        steps["validate"] = timed(validate_args)
        imported = steps["import"]
        summary = last_line(str(imported["stdout"]), "added ")
        validated = steps["validate"]
        valid_line = last_line(str(validated["stdout"]) + str(validated["stderr"]), "intents/ ")
        by_kind = [
            line.strip()
            for line in str(validated["stdout"]).splitlines()
            if re.match(r"^\s+\d+\s+(error|warning)\(s\):", line)
        ]
        skip_reasons = section((folder / "import.txt").read_text(), "skipped by reason")
        result = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "data": {"source": "HWU64 train split (../shared/data/hwu64/train.csv)", **make_up},
            "examples_before": examples_before,
            "import": {
                "summary": summary,
                "added": number(r"added (\d+) example", summary),
                "new_intents": number(r"\((\d+) new intent", summary),
                "skipped": number(r"skipped (\d+)", summary),
                "skipped_by_reason": skip_reasons,
            },
            "validate": {"summary": valid_line, "by_kind": by_kind},
            "steps": {
                name: {k: v for k, v in step.items() if k not in ("stdout", "stderr")} for name, step in steps.items()
            },
        }
    failed = {name: step for name, step in steps.items() if step["exit_code"] not in (0, 2)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "intents_scale.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = "\n".join(
        f"| `{name}` | {step['seconds']} | {step['peak_rss_mb'] if step['peak_rss_mb'] is not None else 'n/a'} | "
        f"{step['exit_code']} |"
        for name, step in result["steps"].items()  # type: ignore[attr-defined]
    )
    reasons = "\n".join(f"    {line}" for line in result["import"]["skipped_by_reason"])  # type: ignore[index]
    kinds = "\n".join(f"    {line}" for line in by_kind)
    (RESULTS / "intents_scale.md").write_text(
        f"# intents/ at scale\n\nMeasured {result['measured_at']} on {os.cpu_count()} CPUs by "
        f"`bench/intents_scale.py`, on a temporary copy of the project ({examples_before} examples before "
        "the import).\n\n"
        f"Import source: {make_up['rows']:,} rows ({make_up['from_split']:,} of the HWU64 training split, "
        f"{make_up['upper_case_repeats']} upper-case repeats), {make_up['intents']} intents; new intents "
        "get `--queue general`.\n\n"
        "| step (`harness intents ...` in a child process) | wall s | peak RSS MB | exit |\n|---|---:|---:|---:|\n"
        f"{rows}\n\n"
        f"Import: {summary}\n\nSkipped by reason:\n\n{reasons}\n\n"
        f"Validate: {valid_line}\n\nFindings by kind:\n\n{kinds}\n"
    )
    print((RESULTS / "intents_scale.md").read_text())
    if failed:
        for name, step in failed.items():
            print(f"{name} failed (exit {step['exit_code']}):\n{step['stderr']}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
