"""Bring labelled utterances from a spreadsheet export (CSV: `text,intent[,queue]`) or a Rasa NLU YAML file into
`intents/`, so trainers can start from what they already have.

Planning is pure (`plan_import`): every candidate is either added (to its existing intent, or to a new intent) or
skipped with the reason. Writing (`apply_plan`) edits the YAML files round-trip (comments and layout kept),
re-validates `intents/` and restores every file if the result would not load: nothing is half-written.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from harness.errors import InputError
from harness.project.eval_set import EvalSuite
from harness.project.intents import Catalog, IntentKind, load_catalog, normalise, plain_text
from harness.project.problems import unknown

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Candidate:
    text: str
    """As it will be written to intents/ (Rasa entity markup allowed)."""
    intent: str
    queue: str | None
    origin: str
    """Where it came from, e.g. `export.csv:7` (line) or `nlu.yml: intent greet`."""


@dataclass(frozen=True)
class Skipped:
    candidate: Candidate
    reason: str


@dataclass
class ImportPlan:
    source: Path
    to_existing: list[Candidate] = field(default_factory=list)
    new_intents: dict[str, list[Candidate]] = field(default_factory=dict)
    new_queues: dict[str, str] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def added(self) -> int:
        return len(self.to_existing) + sum(len(v) for v in self.new_intents.values())


# ---------------------------------------------------------------------------------------------- reading sources


def read_source(path: Path) -> tuple[list[Candidate], list[Skipped]]:
    """Candidates from a CSV or Rasa NLU YAML file (by extension), and entries skipped while reading."""
    suffix = path.suffix.lower()
    try:
        content = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError("cannot read the import file", [f"{path}: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise InputError("the import file is not UTF-8 text", [f"{path}: {exc}; save it as UTF-8 CSV"]) from None
    if suffix == ".csv":
        return read_csv(content, path.name), []
    if suffix in (".yml", ".yaml"):
        return read_rasa_nlu(content, path.name)
    raise InputError("unknown import format", [f"{path}: use a .csv (text,intent[,queue]) or a Rasa NLU .yml file"])


def read_csv(content: str, name: str) -> list[Candidate]:
    reader = csv.DictReader(io.StringIO(content))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in ("text", "intent") if c not in columns]
    if missing:
        raise InputError(
            "the CSV lacks required columns",
            [
                f"{name}: line 1: missing {', '.join(missing)}; found {columns or 'no header'}; "
                "the header must name `text` and `intent` (and optionally `queue`)"
            ],
        )
    reader.fieldnames = columns
    candidates = []
    for row in reader:
        queue = (row.get("queue") or "").strip() or None
        candidates.append(
            Candidate(
                text=" ".join((row.get("text") or "").split()),
                intent=(row.get("intent") or "").strip(),
                queue=queue,
                origin=f"{name}:{reader.line_num}",
            )
        )
    return candidates


def read_rasa_nlu(content: str, name: str) -> tuple[list[Candidate], list[Skipped]]:
    try:
        raw = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise InputError("the Rasa NLU file is not valid YAML", [f"{name}: {exc}"]) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("nlu"), list):
        raise InputError("not a Rasa NLU file", [f"{name}: expected a top-level `nlu:` list (Rasa 3 format)"])
    candidates: list[Candidate] = []
    skipped: list[Skipped] = []
    for index, item in enumerate(raw["nlu"]):
        if not isinstance(item, dict) or "intent" not in item:
            kind = next(iter(item), "entry") if isinstance(item, dict) else type(item).__name__
            placeholder = Candidate("", "", None, f"{name}: nlu[{index}]")
            skipped.append(Skipped(placeholder, f"`{kind}` entries are not imported (only intents with examples)"))
            continue
        intent = str(item["intent"]).strip()
        examples = item.get("examples")
        if isinstance(examples, str):
            texts = [line.strip()[2:].strip() for line in examples.splitlines() if line.strip().startswith("- ")]
        elif isinstance(examples, list):
            texts = [str(e.get("text", "")) if isinstance(e, dict) else str(e) for e in examples]
        else:
            texts = []
        origin = f"{name}: intent {intent}"
        candidates.extend(Candidate(" ".join(t.split()), intent, None, origin) for t in texts)
    return candidates, skipped


# ---------------------------------------------------------------------------------------------- planning (pure)


def eval_texts(suite: EvalSuite | None) -> dict[str, str]:
    """Normalised customer turn -> `set:conversation` where it occurs."""
    if suite is None:
        return {}
    return {
        normalise(t.text): f"{c.eval_set}:{c.conversation.id}"
        for c in suite.conversations
        for t in c.conversation.turns
    }


def plan_import(
    source: Path,
    candidates: Iterable[Candidate],
    catalog: Catalog,
    *,
    queues: Iterable[str],
    eval_turns: dict[str, str],
    default_queue: str | None = None,
    read_skips: Iterable[Skipped] = (),
) -> ImportPlan:
    """Decide for every candidate: add it (to an existing or a new intent) or skip it, with the reason."""
    plan = ImportPlan(source, skipped=list(read_skips))
    known_queues = set(queues)
    existing = {normalise(plain_text(ex)): name for name, i in catalog.intents.items() for ex in i.examples}
    candidates = list(candidates)
    labels: dict[str, dict[str, str]] = {}
    for c in candidates:
        if c.text and c.intent:
            labels.setdefault(normalise(plain_text(c.text)), {}).setdefault(c.intent, c.origin)
    seen: dict[str, str] = {}
    mismatched_queue: set[str] = set()
    for c in candidates:
        key = normalise(plain_text(c.text))
        reason = None
        if not key:
            reason = "empty text"
        elif not c.intent:
            reason = "no intent"
        elif not NAME.match(c.intent):
            reason = (
                f"intent {c.intent!r} is not a valid name (lowercase letters, digits and _, starting with a letter)"
            )
        elif len(labels[key]) > 1:
            others = ", ".join(f"{i} ({o})" for i, o in labels[key].items())
            reason = f"labelled differently within the import: {others}; fix the labels and import again"
        elif key in existing:
            owner = existing[key]
            reason = (
                f"already an example of {owner}"
                if owner == c.intent
                else f"already an example of intent {owner}: adding it to {c.intent} would make them confusable"
            )
        elif key in seen:
            reason = f"repeats {seen[key]}"
        elif key in eval_turns:
            reason = f"is a customer turn of the eval sets ({eval_turns[key]}): training on it would leak the test"
        queue = c.queue
        if reason is None and c.intent not in catalog.intents:
            queue = queue or plan.new_queues.get(c.intent) or default_queue
            if queue is None:
                reason = f"new intent {c.intent} needs a queue: add a `queue` column or pass --queue"
            elif queue not in known_queues:
                reason = unknown("queue", queue, known_queues) + " (queues are defined in bot/escalation.yml)"
        if reason is not None:
            plan.skipped.append(Skipped(c, reason))
            continue
        seen[key] = c.origin
        if c.intent in catalog.intents:
            owner_queue = catalog.intents[c.intent].queue
            if c.queue and c.queue != owner_queue and c.intent not in mismatched_queue:
                mismatched_queue.add(c.intent)
                plan.warnings.append(
                    f"{c.origin}: queue {c.queue!r} given for {c.intent}, which is owned by {owner_queue!r}; "
                    "examples were added, the intent keeps its queue"
                )
            plan.to_existing.append(c)
        else:
            assert queue is not None
            plan.new_queues.setdefault(c.intent, queue)
            plan.new_intents.setdefault(c.intent, []).append(c)
    if plan.new_intents:
        plan.warnings.append(
            f"new intents need a description and a kind before they are final: {', '.join(plan.new_intents)}"
        )
    return plan


# ---------------------------------------------------------------------------------------------- writing


def round_trip_yaml():  # type: ignore[no-untyped-def]
    from ruamel.yaml import YAML

    rt = YAML()
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096
    return rt


def _append_keeping_trailing_comment(seq, value: str) -> None:  # type: ignore[no-untyped-def]
    """Append to a round-trip sequence; the blank lines and comments that followed its last item move below the
    new one (ruamel attaches them to the last item, so a plain append would land after them)."""
    trailing = seq.ca.items.pop(len(seq) - 1, None) if len(seq) else None
    seq.append(value)
    if trailing is not None:
        seq.ca.items[len(seq) - 1] = trailing


def apply_plan(
    plan: ImportPlan, catalog: Catalog, intents_dir: Path, into: Path, *, queues: Iterable[str]
) -> list[Path]:
    """Write the plan into the intent files; returns the files changed. Restores everything if the result is
    not a valid intents/ (and raises the validation error)."""
    rt = round_trip_yaml()
    before: dict[Path, str | None] = {}
    documents: dict[Path, object] = {}

    def document(path: Path):  # type: ignore[no-untyped-def]
        if path not in documents:
            before[path] = path.read_text(encoding="utf-8") if path.exists() else None
            documents[path] = rt.load(before[path]) if before[path] else None
        return documents[path]

    for c in plan.to_existing:
        doc = document(catalog.sources[c.intent])
        entry = next(i for i in doc["intents"] if i["name"] == c.intent)
        _append_keeping_trailing_comment(entry["examples"], c.text)
    if plan.new_intents:
        doc = document(into)
        if doc is None:
            doc = rt.load("version: 1\nintents: []\n")
            doc["intents"] = []
            documents[into] = doc
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        for name, items in plan.new_intents.items():
            doc["intents"].append(
                {
                    "name": name,
                    "description": f"Imported from {plan.source.name} on {stamp}: describe what the customer wants.",
                    "queue": plan.new_queues[name],
                    "kind": IntentKind.self_service.value,
                    "examples": [c.text for c in items],
                }
            )
    try:
        for path, doc in documents.items():
            buffer = io.StringIO()
            if before[path] is None:
                buffer.write(
                    f"# {path.name}: intents imported by `harness intents import`; review and describe them.\n"
                )
            rt.dump(doc, buffer)
            path.write_text(buffer.getvalue(), encoding="utf-8")
        load_catalog(intents_dir, known_queues=queues)
    except Exception:
        for path, text in before.items():
            if text is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(text, encoding="utf-8")
        raise
    return sorted(documents)
