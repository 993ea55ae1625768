"""Eval-set validation: the committed sets are valid and cover the bot; each kind of bad input gets a clear
message naming file and location, and every problem is reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InputError
from harness.project.bot_config import load_queue_config
from harness.project.eval_set import load_eval_sets
from harness.project.paths import ProjectPaths
from harness.project.validation import validate_eval_sets

PATHS = ProjectPaths()
QUEUES = load_queue_config(PATHS.escalation_policy)
INTENTS = ["card_lost_stolen", "inform", "affirm", "report_fraud", "fees"]


def load(location: Path):  # type: ignore[no-untyped-def]
    return load_eval_sets(location, intents=INTENTS, queues=QUEUES.queues, rules=QUEUES.rules)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """version: 1
name: demo
conversations:
  - id: demo-1
    tags: [cards]
    turns:
      - {text: "lost my card", intent: card_lost_stolen}
      - {text: "debit", intent: inform}
      - text: "yes"
        intent: affirm
        expect: {actions: [action_block_card]}
    expected: {outcome: self_served}
    resolvable: true
"""


def test_the_committed_eval_sets_are_valid_and_cover_every_intent_queue_and_rule() -> None:
    report = validate_eval_sets(PATHS, PATHS.eval_sets, overlap=False)
    assert len(report.suite) >= 200
    assert report.coverage.missing_intents == []
    assert report.coverage.missing_queues == []
    assert report.coverage.missing_rules == []


def test_a_valid_file_loads_with_a_content_hash(tmp_path: Path) -> None:
    suite = load(write(tmp_path, "demo.yml", GOOD))
    assert len(suite) == 1 and suite.conversations[0].eval_set == "demo" and len(suite.content_hash) == 64
    assert suite.conversations[0].conversation.expected.label == "self_served"


def test_unknown_intents_queues_and_rules_get_did_you_mean_all_at_once(tmp_path: Path) -> None:
    bad = GOOD.replace("intent: inform", "intent: infrom").replace(
        "expected: {outcome: self_served}", "expected: {outcome: escalated, queue: fraudd, rule: fraud_immediat}"
    )
    with pytest.raises(InputError) as info:
        load(write(tmp_path, "demo.yml", bad))
    problems = info.value.problems
    assert (
        f"{tmp_path}/demo.yml: conversations[0](demo-1).turns[1].intent: unknown intent 'infrom' "
        "(did you mean 'inform'?)" in problems[0]
    )
    assert any("expected.queue: unknown queue 'fraudd' (did you mean 'fraud'?)" in p for p in problems)
    assert any("expected.rule: unknown rule 'fraud_immediat' (did you mean 'fraud_immediate'?)" in p for p in problems)


def test_unknown_keys_are_rejected_and_other_conversations_still_checked(tmp_path: Path) -> None:
    bad = GOOD.replace("tags: [cards]", "tags: [cards]\n    priority: high") + GOOD.split("conversations:\n")[
        1
    ].replace("demo-1", "demo-2").replace("intent: affirm", "intent: afirm")
    with pytest.raises(InputError) as info:
        load(write(tmp_path, "demo.yml", bad))
    problems = info.value.problems
    assert any("conversations[0](demo-1).priority: unknown key 'priority'" in p for p in problems)
    assert any("conversations[1](demo-2).turns[2].intent: unknown intent 'afirm'" in p for p in problems)


def test_escalated_without_queue_and_self_served_with_queue_are_errors(tmp_path: Path) -> None:
    bad = GOOD.replace("expected: {outcome: self_served}", "expected: {outcome: escalated}")
    with pytest.raises(InputError, match="an escalated outcome needs the expected queue"):
        load(write(tmp_path, "demo.yml", bad))


def test_duplicate_conversation_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", GOOD)
    write(tmp_path, "b.yml", GOOD.replace("name: demo", "name: other"))
    with pytest.raises(
        InputError,
        match=r"b.yml: conversations\[0\]\(demo-1\).id: duplicate conversation id, "
        r"first used at .*a.yml",
    ):
        load(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("version: 1\nname: x\nconversations: [\n", "not valid YAML"),
        ("", "the file is empty"),
        ("version: 1\nname: x\nconversations: []\n", "conversations: List should have at least 1 item"),
        ("version: 2\nname: x\nconversations: [{}]\n", "version: Input should be 1"),
    ],
)
def test_malformed_and_empty_files(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load(write(tmp_path, "x.yml", content))


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no eval sets"):
        load(tmp_path)
