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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from harness.errors import InputError
from harness.project.entity_markup import Declared, MarkupNotice, lint
from harness.project.eval_set import EvalSuite
from harness.project.intents import Catalog, IntentKind, load_catalog, nfc, normalise
from harness.project.problems import unknown

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RASA_EXAMPLE_LEADING_SYMBOL = "-"
"""Rasa's `MULTILINE_TRAINING_EXAMPLE_LEADING_SYMBOL`: a line of an `examples: |` block is an example when it
starts with it."""
RASA_STRIP_SYMBOLS = "\n\r "
"""Rasa's `STRIP_SYMBOLS`, stripped around every example."""


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
    kind: str = ""
    """What kind of reason, for counts (`repeats a row of the import`); the reason itself when empty."""

    def category(self) -> str:
        return self.kind or self.reason


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


@dataclass
class SourceRead:
    """What a source file gave: candidates, entries skipped while reading (with the reason) and notices about what
    the file holds that intents/ cannot (retrieval intents, metadata)."""

    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_source(path: Path) -> SourceRead:
    """Candidates from a CSV or Rasa NLU YAML file (by extension), entries skipped while reading, notices."""
    suffix = path.suffix.lower()
    try:
        content = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError("cannot read the import file", [f"{path}: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise InputError("the import file is not UTF-8 text", [f"{path}: {exc}; save it as UTF-8 CSV"]) from None
    if suffix == ".csv":
        return SourceRead(read_csv(content, path.name))
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


def read_rasa_nlu(content: str, name: str) -> SourceRead:
    """Candidates from a Rasa 3 NLU file, read as Rasa reads it (`RasaYAMLReader`) but with every example kept as
    written: YAML's typing is off (`- text: no` is "no", not False; `- text: 42` is "42"). A block of examples
    (`examples: |`) gives one example per line starting with `-`, as in Rasa; other lines are skipped, as Rasa
    skips them. Retrieval intents (`faq/ask_hours`) are skipped and metadata is dropped, each with a notice;
    synonym, regex and lookup entries are skipped."""
    loader = yaml.BaseLoader(content)  # every scalar is the text written
    try:
        document = loader.get_single_node()
        raw = loader.construct_document(document) if document is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        raise InputError("the Rasa NLU file is not valid YAML", [f"{where}: {exc}"]) from None
    finally:
        loader.dispose()
    items = _mapping_value(document, "nlu")
    if not isinstance(raw, dict) or not isinstance(raw.get("nlu"), list) or not isinstance(items, yaml.SequenceNode):
        raise InputError("not a Rasa NLU file", [f"{name}: expected a top-level `nlu:` list (Rasa 3 format)"])
    read = SourceRead()
    for index, (item, node) in enumerate(zip(raw["nlu"], items.value, strict=True)):
        line = node.start_mark.line + 1
        if not isinstance(item, dict) or "intent" not in item:
            kind = next(iter(item), "entry") if isinstance(item, dict) else type(item).__name__
            placeholder = Candidate("", "", None, f"{name}:{line}: nlu[{index}]")
            read.skipped.append(
                Skipped(placeholder, f"`{kind}` entries are not imported (only intents with examples)", "not an intent")
            )
            continue
        intent = str(item["intent"]).strip()
        examples = _examples(item.get("examples"), _mapping_value(node, "examples"), name, intent, read)
        if "metadata" in item:
            read.warnings.append(
                f"{name}:{_key_line(node, 'metadata')}: the metadata of intent {intent} is not imported "
                "(intents/ keeps no metadata); its examples are"
            )
        if "/" in intent:
            ordinary = re.sub(r"[^a-z0-9_]+", "_", intent.lower()).strip("_")
            reason = (
                f"{intent} is a retrieval intent (Rasa's ResponseSelector answers it from `utter_{intent}`): intents/ "
                f"has no retrieval intents or their responses; to keep these examples, rename it to an ordinary "
                f"intent (e.g. {ordinary}) and import again"
            )
            read.skipped.extend(Skipped(c, reason, "retrieval intent") for c in examples)
            read.warnings.append(
                f"{name}:{line}: retrieval intent {intent} ({len(examples)} example{'s' * (len(examples) != 1)}) is "
                "not imported: intents/ has no retrieval intents; rename it to an ordinary intent to import it"
            )
            continue
        read.candidates.extend(examples)
    return read


def _examples(value: Any, node: yaml.Node | None, name: str, intent: str, read: SourceRead) -> list[Candidate]:
    """The examples of one intent entry, block or list form, with their lines; notices go into `read`."""
    found: list[Candidate] = []
    if isinstance(value, str) and isinstance(node, yaml.ScalarNode):
        literal = node.style == "|"
        first = node.start_mark.line + (2 if literal else 1)
        for offset, written in enumerate(value.splitlines()):
            line = first + offset if literal else first
            if not written.strip():
                continue
            if not written.startswith(RASA_EXAMPLE_LEADING_SYMBOL):
                skipped = Candidate(written.strip(), intent, None, f"{name}:{line}")
                read.skipped.append(
                    Skipped(skipped, "the line does not start with `-`: Rasa skips it too", "not an example line")
                )
                continue
            found.append(Candidate(_clean(written[1:]), intent, None, f"{name}:{line}"))
    elif isinstance(value, list) and isinstance(node, yaml.SequenceNode):
        with_metadata: list[int] = []
        for example, example_node in zip(value, node.value, strict=True):
            line = example_node.start_mark.line + 1
            text = example.get("text", "") if isinstance(example, dict) else example
            if isinstance(example, dict) and "metadata" in example:
                with_metadata.append(_key_line(example_node, "metadata"))
            if not isinstance(text, str):
                skipped = Candidate("", intent, None, f"{name}:{line}")
                read.skipped.append(Skipped(skipped, "the example's `text` is not text", "not an example line"))
                continue
            found.append(Candidate(_clean(text), intent, None, f"{name}:{line}"))
        if with_metadata:
            count = len(with_metadata)
            read.warnings.append(
                f"{name}:{with_metadata[0]}: the metadata of {count} example{'s' * (count != 1)} of intent {intent} "
                "is not imported (intents/ keeps no metadata); the examples are"
            )
    return found


def _clean(text: str) -> str:
    """Rasa's strip of an example (`STRIP_SYMBOLS`), then runs of whitespace as one space."""
    return " ".join(text.strip(RASA_STRIP_SYMBOLS).split())


def _mapping_value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _key_line(node: yaml.Node, key: str) -> int:
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k.start_mark.line + 1
    return node.start_mark.line + 1


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
    read_warnings: Iterable[str] = (),
    declared: Declared | None = None,
) -> ImportPlan:
    """Decide for every candidate: add it (to an existing or a new intent) or skip it, with the reason.

    Texts are compared `normalise`d (Unicode NFC, case, punctuation and spacing ignored) and added in NFC. Entity
    markup is read with Rasa's grammar: an annotation Rasa refuses or misreads (a quoted entity name) is a skip;
    entities, roles and groups that `declared` (the bot's domain) lacks are a warning. Linear in the candidates."""
    plan = ImportPlan(source, skipped=list(read_skips), warnings=list(read_warnings))
    known_queues = set(queues)
    existing = {normalise(ex): name for name, i in catalog.intents.items() for ex in i.examples}
    candidates = [replace(c, text=nfc(c.text)) for c in candidates]
    keys = [normalise(c.text) for c in candidates]
    labels: dict[str, dict[str, str]] = {}
    for c, key in zip(candidates, keys, strict=True):
        if c.text and c.intent:
            labels.setdefault(key, {}).setdefault(c.intent, c.origin)
    seen: dict[str, str] = {}
    mismatched_queue: set[str] = set()
    markup_warnings: dict[str, tuple[MarkupNotice, list[str]]] = {}
    for c, key in zip(candidates, keys, strict=True):
        reason, kind = _reason(c, key, catalog, labels, existing, seen, eval_turns)
        notices = lint(c.text, declared) if reason is None else []
        markup_error = next((n for n in notices if n.severity == "error"), None)
        if markup_error is not None:
            reason, kind = markup_error.message, markup_error.kind
        queue = c.queue
        if reason is None and c.intent not in catalog.intents:
            queue = queue or plan.new_queues.get(c.intent) or default_queue
            if queue is None:
                reason = f"new intent {c.intent} needs a queue: add a `queue` column or pass --queue"
                kind = "new intent without a queue"
            elif queue not in known_queues:
                reason = unknown("queue", queue, known_queues) + " (queues are defined in bot/escalation.yml)"
                kind = "unknown queue"
        if reason is not None:
            plan.skipped.append(Skipped(c, reason, kind))
            continue
        seen[key] = c.origin
        for notice in notices:
            markup_warnings.setdefault(notice.subject, (notice, []))[1].append(c.origin)
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
    for subject, (notice, origins) in markup_warnings.items():
        plan.warnings.append(f"{subject} in {len(origins)} added example(s) (first: {origins[0]}): {notice.detail}")
    if plan.new_intents:
        plan.warnings.append(
            f"new intents need a description and a kind before they are final: {', '.join(plan.new_intents)}"
        )
    return plan


def _reason(
    c: Candidate,
    key: str,
    catalog: Catalog,
    labels: dict[str, dict[str, str]],
    existing: dict[str, str],
    seen: dict[str, str],
    eval_turns: dict[str, str],
) -> tuple[str | None, str]:
    """Why `c` cannot be added whatever its queue (None if it can), and the kind of reason."""
    if not key:
        return "empty text", "empty text"
    if not c.intent:
        return "no intent", "no intent"
    if not NAME.match(c.intent):
        return (
            f"intent {c.intent!r} is not a valid name (lowercase letters, digits and _, starting with a letter)",
            "invalid intent name",
        )
    if len(labels[key]) > 1:
        others = ", ".join(f"{i} ({o})" for i, o in labels[key].items())
        return (
            f"labelled differently within the import: {others}; fix the labels and import again",
            "labelled differently within the import",
        )
    if key in existing:
        owner = existing[key]
        if owner == c.intent:
            return f"already an example of {owner}", "already an example of its intent"
        return (
            f"already an example of intent {owner}: adding it to {c.intent} would make them confusable",
            "already an example of another intent",
        )
    if key in seen:
        return f"repeats {seen[key]}", "repeats a row of the import"
    if key in eval_turns:
        return (
            f"is a customer turn of the eval sets ({eval_turns[key]}): training on it would leak the test",
            "a customer turn of the eval sets",
        )
    return None, ""


# ---------------------------------------------------------------------------------------------- writing


def round_trip_yaml():  # type: ignore[no-untyped-def]
    """A ruamel round-trip YAML (comments and layout kept) whose every string reads back as the same string: text
    that a YAML 1.1 reader (PyYAML, which reads intents/ and eval_sets/) would take unquoted for something else
    (`no`, `on`, `42`, `1.5`, `2024-01-01`, `null`, `~`) is written double-quoted. ruamel alone quotes by YAML 1.2,
    for which `no` is text."""
    from ruamel.yaml import YAML
    from ruamel.yaml.representer import RoundTripRepresenter

    class TextKeepingRepresenter(RoundTripRepresenter):
        def represent_str(self, data: str):  # type: ignore[no-untyped-def]
            if type(data) is str and not reads_back_as_text(data):
                return self.represent_scalar("tag:yaml.org,2002:str", data, style='"')
            return super().represent_str(data)

    TextKeepingRepresenter.add_representer(str, TextKeepingRepresenter.represent_str)
    rt = YAML()
    rt.Representer = TextKeepingRepresenter
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096
    return rt


_YAML_1_1 = yaml.resolver.Resolver()


def reads_back_as_text(text: str) -> bool:
    """Whether `text`, written as a plain (unquoted) YAML scalar, reads back in PyYAML as this string."""
    return _YAML_1_1.resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"


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
    entries: dict[str, Any] = {}

    def document(path: Path):  # type: ignore[no-untyped-def]
        if path not in documents:
            before[path] = path.read_text(encoding="utf-8") if path.exists() else None
            loaded: Any = rt.load(before[path]) if before[path] else None
            documents[path] = loaded
            for entry in loaded["intents"] if loaded else []:
                entries.setdefault(str(entry["name"]), entry)
        return documents[path]

    for c in plan.to_existing:
        document(catalog.sources[c.intent])
        _append_keeping_trailing_comment(entries[c.intent]["examples"], c.text)
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
