"""What `harness init` writes into a bot team's folder: the project file (harness.yml), a gate spec, a review
config, a handoff mapping proposed from a Rasa bot's files, and an example eval set (or the bot's own test stories,
imported).

`plan_init` decides every file's text without touching the folder; the CLI writes them (`write_files`), so a
folder that already holds one of them is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from harness.errors import InputError
from harness.project.paths import PROJECT_FILE, chosen_project, find_project_root

RASA_TOKEN_ENV = "RASA_AUTH_TOKEN"
EVAL_SETS = "eval_sets"


@dataclass(frozen=True)
class RasaProject:
    """A stock Rasa bot's folder, as `harness init` found it."""

    folder: Path
    """The folder holding domain.yml (or domain/) and config.yml."""
    test_stories: tuple[Path, ...]
    """Its end-to-end test stories (`tests/test_*.yml`), which `harness init` can import as an eval set."""


@dataclass
class InitPlan:
    """The files `harness init` writes (path relative to the project -> text) and what it says about them."""

    root: Path
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


def template(name: str) -> str:
    """The text of a default file shipped with the harness (harness/project/templates/<name>)."""
    return resources.files("harness.project").joinpath("templates", name).read_text(encoding="utf-8")


def find_rasa_project(folder: Path) -> RasaProject | None:
    """The Rasa bot in `folder` (domain.yml, domain.yaml or domain/, beside config.yml), or None."""
    has_domain = any((folder / name).exists() for name in ("domain.yml", "domain.yaml", "domain"))
    if not (has_domain and (folder / "config.yml").is_file()):
        return None
    tests = folder / "tests"
    stories = tuple(sorted([*tests.glob("test_*.yml"), *tests.glob("test_*.yaml")])) if tests.is_dir() else ()
    return RasaProject(folder.resolve(), stories)


def _relative(path: Path, root: Path) -> str:
    """`path` relative to `root` (as harness.yml stores paths: `../bot` for a bot beside the project), so committed
    files name no folder of this machine."""
    return os.path.relpath(path.resolve(), root.resolve())


def _experiment_name(root: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", root.name).strip("-") or "my-bot"


def _commented(setting: str, comment: str) -> str:
    """`setting` padded to a column of comments (YAML)."""
    return f"{setting:<38} # {comment}"


def project_file(root: Path, bot_lines: list[str]) -> str:
    """The commented harness.yml of a new project whose `bot:` section is `bot_lines` (already indented)."""
    return "\n".join(
        [
            "# A harness project: `harness` commands run in this folder (or below it) act on it. Relative paths are",
            "# relative to this folder. Every key is documented in the README ('Install into your bot's repository').",
            "version: 1",
            "bot:",
            *bot_lines,
            _commented(f"eval_sets: {EVAL_SETS}", "a file or a folder of eval sets (conversations with labels)"),
            _commented("output_dir: runs", "each run writes runs/<run id>/ (scorecard, report, records)"),
            "replay:",
            _commented("  concurrency: 4", "conversations in flight at once"),
            _commented("  turn_timeout_s: 30", "a turn slower than this is recorded as `timeout`"),
            _commented("tracking:", "MLflow: every run is logged here"),
            _commented("  uri: sqlite:///mlflow.db", "or an MLflow server, http://..."),
            f"  experiment: {_experiment_name(root)}",
            _commented("gate: gate.yml", "the release gate's spec (`harness gate`)"),
            _commented("review: review.yml", "QA review: flag rules, sample, scorecard (`harness review`)"),
            "",
        ]
    )


def rasa_bot_lines(root: Path, rasa: RasaProject, url: str, handoff: str) -> list[str]:
    return [
        _commented("  kind: rasa", "a stock Rasa server: rasa run --enable-api"),
        _commented(f"  url: {json.dumps(url)}", "the server's root"),
        _commented(f"  token_env: {RASA_TOKEN_ENV}", "the variable holding `rasa run --auth-token` (unset: no token)"),
        _commented(
            f"  project: {_relative(rasa.folder, root) or '.'}", "the bot's folder (its domain names the intents)"
        ),
        _commented(f"  handoff: {handoff}", "how the harness sees a handoff; proposed by harness init: check it"),
    ]


def http_bot_lines(url: str) -> list[str]:
    return [
        _commented("  kind: http_json", "any bot behind an HTTP endpoint taking and returning JSON"),
        f"  url: {json.dumps(url)}",
        _commented("  request:", "what is sent for each customer message"),
        "    json: {text: '{text}', sender: '{conversation_id}'}",
        _commented("  response:", "JMESPath expressions on the reply: the kind observes exactly these"),
        "    messages: 'messages[].text'",
        "    intent: 'intent.name'",
        "    # confidence: 'intent.confidence'   fallback, actions, slots, handoff_queue: see the README",
        _commented("  vocabulary:", "what eval sets may name against this bot"),
        "    intents: [greet]",
        "    queues: []",
    ]


EXAMPLE_EVAL_SET = """\
# An example eval set: replace it with conversations your customers have (or import your bot's test stories:
# harness evalsets import-rasa). Each conversation lists the customer's turns with the intent they mean, and how
# the conversation should end: self_served, or escalated to a queue. `harness validate` checks them.
version: 1
name: example
description: A first conversation to see the harness work end to end; not a measurement of the bot.
conversations:
  - id: example-001
    tags: [example]
    turns:
      - text: {text}
        intent: {intent}
    expected:
      outcome: self_served
    resolvable: true
"""


def example_eval_set(intent: str, text: str) -> str:
    """The example eval set, one turn `text` labelled `intent` (YAML-quoted)."""
    return EXAMPLE_EVAL_SET.format(intent=intent, text=json.dumps(text))


def first_example(rasa: RasaProject, intents: tuple[str, ...]) -> tuple[str, str]:
    """(intent, text): the first training example of the first domain intent that has one in the bot's NLU data,
    else ('greet' or the first intent, 'hello')."""
    import yaml

    for path in sorted([*(rasa.folder / "data").rglob("*.yml")]) if (rasa.folder / "data").is_dir() else []:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        for block in (document or {}).get("nlu", []) if isinstance(document, dict) else []:
            examples = block.get("examples") if isinstance(block, dict) else None
            if block.get("intent") in intents and isinstance(examples, str):
                lines = [line.strip()[2:].strip() for line in examples.splitlines() if line.strip().startswith("- ")]
                plain = [line for line in lines if line and "[" not in line]
                if plain:
                    return str(block["intent"]), plain[0]
    return ("greet" if "greet" in intents else intents[0] if intents else "greet"), "hello"


def _url(url: str) -> str:
    """`url` if it is an http(s) URL with a host; InputError saying what is expected otherwise."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise InputError("invalid --bot-url", [f"--bot-url {url!r}: expected http(s)://HOST:PORT[/path], no spaces"])
    return url


def _shown(path: Path) -> str:
    """A path as a shell word (quoted when it needs to be), for the commands init prints."""
    import shlex

    return shlex.quote(str(path))


def imported_stories(rasa: RasaProject, handoff_text: str, root: Path) -> tuple[str, str, list[str]]:
    """(eval-set text, summary, findings) of the bot's test stories imported with the handoff mapping `handoff_text`
    and checked against its domain; paths under `root` are shown relative to it (the file is committed).

    Raises InputError when a story file cannot be read or the eval set does not load against the bot."""
    import tempfile

    from harness.bots.handoff_mapping import load_handoff_mapping
    from harness.bots.rasa_domain import eval_intents, find_domain, load_domain
    from harness.project.rasa_stories import check_loads, import_rasa_stories, render_eval_set

    domain = load_domain(find_domain(rasa.folder, None))
    with tempfile.TemporaryDirectory() as scratch:
        draft = Path(scratch) / "handoff.yml"
        draft.write_text(handoff_text, encoding="utf-8")
        mapping = load_handoff_mapping(draft)
    name = _experiment_name(rasa.folder)
    result = import_rasa_stories(list(rasa.test_stories), mapping, eval_set_name=name, forms=domain.forms)
    check_loads(result, intents=eval_intents(domain), queues=mapping.queue_names(), rules=mapping.rule_names())
    prefix = f"{root}/"
    findings = [str(finding).replace(prefix, "") for finding in result.findings]
    return render_eval_set(result).replace(prefix, ""), result.summary(), findings


def _check_bot_section(project_text: str, root: Path) -> None:
    """InputError when the bot section init wrote is one its kind refuses (for example a Rasa webhook URL where the
    server's root is expected), said as a problem of the options given."""
    import yaml

    from harness.bots.kinds import bot_settings
    from harness.project.config import RunConfig
    from harness.project.project import without_project_keys

    try:
        bot_settings(RunConfig.model_validate(without_project_keys(yaml.safe_load(project_text))).resolved(root))
    except InputError as exc:
        raise InputError("the bot options do not fit its kind", [*exc.problems, "fix --bot-url / --bot-kind"]) from None


def plan_init(
    root: Path, *, bot_kind: str | None, bot_url: str | None, rasa_folder: Path | None, import_stories: bool
) -> InitPlan:
    """Every file `harness init` writes into `root`, and what to tell the user.

    Raises InputError when --rasa-project (or --bot-kind rasa) finds no Rasa bot, the bot declares no intents,
    --bot-url is not an http(s) URL, or the kind is not one init knows.
    """
    from harness.bots.handoff_proposal import propose_handoff
    from harness.bots.rasa_domain import find_domain, load_domain

    root = root.resolve()
    plan = InitPlan(root)
    url = _url(bot_url) if bot_url is not None else None
    rasa = find_rasa_project(rasa_folder or root)
    if rasa is None and (rasa_folder is not None or bot_kind == "rasa"):
        where = (rasa_folder or root).resolve()
        hint = "give the bot's folder" if rasa_folder is not None else "pass --rasa-project PATH (the bot's folder)"
        raise InputError("no Rasa bot found", [f"{where}: no domain.yml (or domain/) beside config.yml; {hint}"])
    kind = bot_kind or ("rasa" if rasa else "http_json")
    if kind == "rasa":
        assert rasa is not None  # refused above
        domain = load_domain(find_domain(rasa.folder, None))
        if not domain.intents:
            raise InputError("the Rasa bot declares no intents", [f"{domain.source}: `intents:` is empty or missing"])
        proposal = propose_handoff(domain, rasa.folder, shown_as=_relative(Path(domain.source), root))
        url = url or "http://127.0.0.1:5005"
        plan.files["handoff.yml"] = proposal.text
        plan.files[PROJECT_FILE] = project_file(root, rasa_bot_lines(root, rasa, url, "handoff.yml"))
        plan.notes.append(f"bot: the Rasa bot in {rasa.folder} ({len(domain.intents)} intents in its domain), at {url}")
        plan.notes += proposal.notes
        example = True
        if import_stories and rasa.test_stories:
            try:
                text, summary, findings = imported_stories(rasa, proposal.text, root)
            except InputError as exc:
                plan.notes.append(f"eval set: the test stories were not imported ({exc}); an example instead")
            else:
                plan.files[f"{EVAL_SETS}/{_experiment_name(rasa.folder)}.yml"] = text
                plan.notes.append(f"eval set: {summary}")
                plan.notes += [f"  {finding}" for finding in findings]
                example = False
        elif rasa.test_stories:
            plan.notes.append("eval set: an example (test stories not imported: --no-import-stories)")
        if example:
            intent, text = first_example(rasa, domain.intents)
            plan.files[f"{EVAL_SETS}/example.yml"] = example_eval_set(intent, text)
        plan.next_steps = [
            f'cd {_shown(rasa.folder)} && rasa train && rasa run --enable-api --auth-token "$RASA_AUTH_TOKEN"   '
            "# and `rasa run actions` if it has custom actions",
            "harness run          # replay the eval sets: scorecard, report and an MLflow run",
            "harness gate         # judge the run with gate.yml (once it passes, --update-baseline baseline keeps it)",
        ]
    elif kind == "http_json":
        url = url or "http://127.0.0.1:8080/chat"
        plan.files[PROJECT_FILE] = project_file(root, http_bot_lines(url))
        plan.files[f"{EVAL_SETS}/example.yml"] = example_eval_set("greet", "hello")
        plan.notes.append(
            f"bot: an HTTP JSON endpoint at {url}: set its request, response and vocabulary (harness.yml)"
        )
        plan.next_steps = [
            "edit harness.yml: the bot's request and response shapes, and the intents and queues it knows",
            "harness run          # replay the eval sets: scorecard, report and an MLflow run",
            "harness gate         # judge the run with gate.yml (once it passes, --update-baseline baseline keeps it)",
        ]
    else:
        raise InputError("unknown bot kind for harness init", [f"--bot-kind {kind}: choose rasa or http_json"])
    plan.files["gate.yml"] = template("gate.yml")
    plan.files["review.yml"] = template("review.yml")
    _check_bot_section(plan.files[PROJECT_FILE], root)
    named = chosen_project()
    if named is not None and named.resolve() != root:
        plan.notes.append(f"note: --project or HARNESS_PROJECT names {named}: commands will act on it, not on {root}")
    outer = find_project_root(root.parent)
    if outer is not None:
        plan.notes.append(
            f"note: {root} is inside the project at {outer}; commands run at or below {root} will act on this new one"
        )
    if root != Path.cwd().resolve():
        plan.next_steps[1:] = [f"cd {_shown(root)} && {step}" for step in plan.next_steps[1:]]
    return plan


def existing(plan: InitPlan) -> list[Path]:
    """The files of `plan` already in its folder."""
    return [plan.root / name for name in plan.files if (plan.root / name).exists()]


def write_files(plan: InitPlan, *, force: bool) -> list[Path]:
    """Write the plan's files (folders created); returns them. Writes nothing when one exists and not `force`; when
    a write fails, removes the files and folders this call created. InputError either way, naming the file."""
    present = existing(plan)
    if present and not force:
        raise InputError(
            "harness init would replace files",
            [f"{path}: exists; init keeps it: move it away, or pass --force to replace it" for path in present],
        )
    created: list[Path] = []
    written: list[Path] = []
    try:
        for name, text in plan.files.items():
            path = plan.root / name
            for folder in reversed(path.parents):
                if folder.is_relative_to(plan.root) and not folder.exists():
                    folder.mkdir()
                    created.append(folder)
            new = not path.exists()
            partial = path.with_name(f".{path.name}.partial")
            try:
                partial.write_text(text, encoding="utf-8")
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
            written.append(path)
            if new:
                created.append(path)
    except OSError as exc:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                made.rmdir() if made.is_dir() else made.unlink()
        replaced = [p for p in written if p not in created]
        kept = f"; replaced before the failure: {', '.join(map(str, replaced))}" if replaced else ""
        raise InputError(
            "harness init could not write the project",
            [f"{exc.filename or plan.root}: {exc.strerror}; the files it created were removed{kept}"],
        ) from None
    return written
