"""Importing Rasa end-to-end test stories as an eval set: every step form of the Rasa 3.x docs gives the
hand-derived eval set (tests/fixtures/rasa_stories/expected/), which loads with `load_eval_sets` against the bot's
vocabulary; everything that cannot be carried over is listed with file and line; handoffs are read as the `rasa`
bot kind reads them at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bots.handoff_mapping import HandoffMapping, load_handoff_mapping
from harness.bots.rasa_domain import eval_intents, load_domain
from harness.errors import InputError
from harness.project.eval_set import Outcome, TurnChecks, load_eval_sets
from harness.project.rasa_stories import (
    FindingKind,
    ImportResult,
    check_loads,
    import_rasa_stories,
    render_eval_set,
    write_eval_set,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rasa_stories"
HELPDESK = Path(__file__).resolve().parents[1] / "fixtures" / "stock_rasa" / "helpdesk"


@pytest.fixture
def in_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the fixture folder, so paths in the output are the relative ones of the expected file."""
    monkeypatch.chdir(FIXTURES)


def import_fixtures() -> ImportResult:
    domain = load_domain(Path("domain.yml"))
    return import_rasa_stories(
        [Path("tests")], load_handoff_mapping(Path("handoff.yml")), eval_set_name="fixture_bot", forms=domain.forms
    )


def load_with_vocabulary(path: Path, domain: Path, mapping: Path):  # type: ignore[no-untyped-def]
    """Load an eval set as a run against the rasa bot would: intents from the domain, queues and rules from the
    handoff mapping (harness.bots.rasa.rasa_vocabulary)."""
    handoffs = load_handoff_mapping(mapping)
    return load_eval_sets(
        path,
        intents=eval_intents(load_domain(domain)),
        queues=handoffs.queue_names(),
        rules=handoffs.rule_names(),
    )


def story_file(tmp_path: Path, text: str, name: str = "test_inline.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def mapping(raw: dict) -> HandoffMapping:  # type: ignore[type-arg]
    return HandoffMapping.model_validate({"version": 1, **raw})


# ------------------------------------------------------------------------------------------ the full round trip


def test_every_step_form_gives_the_hand_derived_eval_set_which_loads(in_fixtures: None, tmp_path: Path) -> None:
    result = import_fixtures()
    assert render_eval_set(result) == (FIXTURES / "expected" / "fixture_bot.yml").read_text(encoding="utf-8")

    out = write_eval_set(result, tmp_path / "fixture_bot.yml")
    suite = load_with_vocabulary(out, Path("domain.yml"), Path("handoff.yml"))
    assert [c.conversation for c in suite.conversations] == [s.conversation for s in result.conversations]
    assert {c.eval_set for c in suite.conversations} == {"fixture_bot"}


def test_an_intent_the_bots_domain_lacks_is_reported_before_writing(in_fixtures: None) -> None:
    result = import_fixtures()
    intents = [i for i in eval_intents(load_domain(Path("domain.yml"))) if i != "thankyou"]
    with pytest.raises(InputError) as error:
        check_loads(result, intents=intents, queues=["billing", "general", "technical"], rules=["bot_handoff"])
    # `thankyou` labels turn 1 of one story and turn 3 of another (tests/test_stories.yml).
    assert [p.split(": unknown")[0] for p in error.value.problems] == [
        "eval set 'fixture_bot': conversations[4](a-test-where-a-custom-action-returns-events).turns[1].intent",
        "eval set 'fixture_bot': conversations[5](a-test-story-with-a-form).turns[3].intent",
    ]
    assert "unknown intent 'thankyou' (did you mean 'thanks'?)" in error.value.problems[0]
    check_loads(result, intents=[*intents, "thankyou"], queues=["billing", "general", "technical"])


def test_a_folder_gives_its_test_files_in_name_order_and_nothing_else(in_fixtures: None) -> None:
    result = import_fixtures()
    # tests/notes.yml has no test_ prefix: `rasa test` would not read it either.
    assert [p.as_posix() for p in result.files] == [
        "tests/test_handoffs.yml",
        "tests/test_stories.yml",
        "tests/test_untranslatable.yml",
    ]
    assert import_fixtures() == result  # deterministic


def test_everything_not_carried_over_is_listed_with_file_and_line(in_fixtures: None) -> None:
    result = import_fixtures()
    listed = [(f.kind, f"{f.file.as_posix() if f.file else None}:{f.line}", f.story) for f in result.findings]
    handoffs, stories, untranslatable = (
        "tests/test_handoffs.yml",
        "tests/test_stories.yml",
        "tests/test_untranslatable.yml",
    )
    skipped, untranslated, changed = FindingKind.skipped, FindingKind.untranslated, FindingKind.changed
    basic = "A basic end-to-end test"
    assert listed == [
        (changed, f"{handoffs}:14", "Billing handoff, queue slot set before"),  # 2 turns after the handoff
        (changed, f"{handoffs}:27", "Queue slot set in the handoff turn and cleared by the handoff action"),
        (skipped, f"{handoffs}:39", "The handoff action sets the queue slot itself"),
        (skipped, f"{handoffs}:49", "Handoff to an untranslated queue"),
        (untranslated, f"{stories}:10", basic),  # [chinese]{"entity": "cuisine"}
        (untranslated, f"{stories}:14", basic),  # [Paris]{...}
        (untranslated, f"{stories}:44", "A test story with a form"),  # [afghan](cuisine)
        (untranslated, f"{stories}:48", "A test story with a form"),  # active_loop: null
        (untranslated, f"{stories}:59", "Free text, payloads and bot utterances"),  # [two](guests:2)
        (untranslated, f"{stories}:73", "Free text, payloads and bot utterances"),  # active_loop: null
        (changed, f"{stories}:78", "Free text, payloads and bot utterances"),  # faq/ask_scope
        (changed, f"{stories}:81", "Free text, payloads and bot utterances"),  # nlu_fallback
        (untranslated, f"{untranslatable}:3", None),  # nlu:
        (skipped, f"{untranslatable}:10", "Intent only"),
        (skipped, f"{untranslatable}:14", "Intent only"),
        (skipped, f"{untranslatable}:18", "Starts at a checkpoint"),
        (untranslated, f"{untranslatable}:29", "Ends at a checkpoint"),
        (skipped, f"{untranslatable}:36", "Or of messages"),
        (skipped, f"{untranslatable}:40", "No user text"),
        (skipped, f"{untranslatable}:44", "No steps"),
        (changed, f"{untranslatable}:47", basic),  # id taken
        (untranslated, f"{untranslatable}:48", basic),  # story metadata
        (untranslated, f"{untranslatable}:51", basic),  # action before the first message
        (untranslated, f"{untranslatable}:52", basic),  # bot: before the first message
        (untranslated, f"{untranslatable}:54", basic),  # slot before the first message
        (untranslated, f"{untranslatable}:55", basic),  # entities:
        (untranslated, f"{untranslatable}:59", basic),  # metadata step
        (untranslated, f"{untranslatable}:60", basic),  # or: of slots
        (untranslated, f"{untranslatable}:66", basic),  # bare slot name
        (untranslated, f"{untranslatable}:67", basic),  # list value
        (untranslated, f"{untranslatable}:68", basic),  # unknown form
        (untranslated, f"{untranslatable}:69", basic),  # acton:
        (changed, f"{untranslatable}:72", basic),  # mood twice in a turn
        (untranslated, f"{untranslatable}:73", basic),  # checkpoint at the end
        (skipped, f"{untranslatable}:76", "Greet"),  # a rule
    ]
    text = "\n".join(str(f) for f in result.findings)
    for expected in (
        "tests/test_handoffs.yml:14: 'Billing handoff, queue slot set before': changed: the handoff at line 12"
        " ends the conversation: 2 later customer turn(s) dropped",
        "slot 'handoff_to' listed again in the same turn ('tech_support' at line 24, now null)",
        "slot 'handoff_to' has no value when the handoff happens",
        "'sales_team' is not translated by handoff.yml",
        'entity annotation(s) [chinese]{"entity": "cuisine"} not checked',
        "sent as 'show me chinese restaurants'",
        "retrieval intent 'faq/ask_scope' labelled 'faq'",
        "intent 'nlu_fallback' labelled 'out_of_scope'",
        "NLU examples (test them with `rasa test nlu`)",
        "intent-only step (intent: greet): no customer text to send",
        "checkpoint 'greeted' starts the story",
        "checkpoint 'greeted' ends the story",
        "or: alternatives of customer messages",
        "no customer message (`user:` step) to replay",
        "the story has no steps",
        "id 'a-basic-end-to-end-test' already used by the story at tests/test_stories.yml:4: this one is"
        " 'a-basic-end-to-end-test-2'",
        "story metadata is not imported",
        "action 'utter_welcome' before the first customer message",
        "entities: not checked",
        "metadata step is not imported",
        "or: of slot values",
        "slot_was_set of 'name' without a value",
        "slot 'items' set to ['a', 'b']: list and mapping values are not checked",
        "active_loop 'restuarant_form' is not a form of the domain (did you mean 'restaurant_form'?)",
        "unknown step 'acton' (did you mean 'action'?)",
        "slot 'mood' listed again in the same turn ('happy' at line 71, now 'sad')",
        "'Greet': skipped: a rule is a fragment of a conversation",
    ):
        assert expected in text
    # Stories and rules not imported: the two handoffs without a queue, five in test_untranslatable, one rule.
    assert result.skipped_items == 8
    assert result.summary().startswith("9 conversation(s) from 3 file(s); 8 story/rule(s) skipped;")


# ------------------------------------------------------------------------------------------------------ handoffs


def test_without_a_mapping_every_story_is_self_served_and_that_is_said(in_fixtures: None) -> None:
    result = import_rasa_stories([Path("tests/test_handoffs.yml")], None, eval_set_name="x")
    assert [f.message for f in result.findings if f.file is None] == [
        "no handoff mapping given: every conversation is expected to be self_served"
    ]
    # All five stories are now plain conversations; the first keeps its turns but the intent-only one at line 17.
    assert [s.conversation.expected.outcome for s in result.conversations] == [Outcome.self_served] * 4
    assert [f.line for f in result.of_kind(FindingKind.skipped)] == [17]
    assert all(s.conversation.resolvable for s in result.conversations)


def test_handoff_signals_stories_cannot_show_are_listed_and_payload_queues_skip_the_story(tmp_path: Path) -> None:
    path = story_file(
        tmp_path,
        """stories:
- story: paused
  steps:
  - user: I want a person
    intent: human
  - action: action_pause
""",
    )
    handoffs = mapping(
        {
            "handoffs": [
                {"when": {"event": "pause"}, "queue": {"value": "general"}},
                {"when": {"payload": "handoff"}, "queue": {"payload": "handoff.queue"}},
                {"when": {"intent": "human"}, "queue": {"payload": "handoff.queue"}},
            ]
        }
    )
    result = import_rasa_stories([path], handoffs, eval_set_name="x")
    global_findings = [f.message for f in result.findings if f.file is None]
    assert len(global_findings) == 2
    assert "handoff when {event: pause} cannot be seen in test stories" in global_findings[0]
    assert "handoff when {payload: handoff} cannot be seen in test stories" in global_findings[1]
    (skipped,) = result.of_kind(FindingKind.skipped)
    assert skipped.line == 4
    assert "its queue is unknown: it comes from the bot's payload key 'handoff.queue'" in skipped.message


def test_an_intent_handoff_reads_the_slot_at_the_end_of_the_turn_or_its_last_value(tmp_path: Path) -> None:
    path = story_file(
        tmp_path,
        """stories:
- story: routed by an action after the intent
  steps:
  - user: complaint!
    intent: complain
  - action: action_route
  - slot_was_set:
    - team: billing_team
  - slot_was_set:
    - team: null
- story: action name is the queue
  steps:
  - user: fix my line
    intent: tech
  - action: action_to_tech
""",
    )
    handoffs = mapping(
        {
            "handoffs": [
                {"when": {"intent": ["complain"]}, "queue": {"slot": "team"}, "rule": {"value": "complaints"}},
                {"when": {"action": ["action_to_tech", "action_to_billing"]}, "queue": {"action": True}},
            ],
            "queues": {"billing_team": "billing", "action_to_tech": "technical"},
        }
    )
    result = import_rasa_stories([path], handoffs, eval_set_name="x")
    expected = [(s.conversation.expected.queue, s.conversation.expected.rule) for s in result.conversations]
    assert expected == [("billing", "complaints"), ("technical", None)]


def test_the_first_mapping_entry_observed_in_a_turn_decides_as_at_run_time(tmp_path: Path) -> None:
    path = story_file(
        tmp_path,
        """stories:
- story: both signals in one turn
  steps:
  - user: a person, now
    intent: human
  - slot_was_set:
    - team: billing_team
  - action: action_handoff
""",
    )
    handoffs = mapping(
        {
            "handoffs": [
                {"when": {"action": "action_handoff"}, "queue": {"slot": "team"}},
                {"when": {"intent": "human"}, "queue": {"value": "general"}},
            ],
            "queues": {"billing_team": "billing"},
        }
    )
    (story,) = import_rasa_stories([path], handoffs, eval_set_name="x").conversations
    assert story.conversation.expected.queue == "billing"


# -------------------------------------------------------------------------------------------------- texts and ids


def test_every_entity_markup_form_is_stripped_to_the_text_and_ids_are_slugs(tmp_path: Path) -> None:
    path = story_file(
        tmp_path,
        """stories:
- story: Café — déjà vu!
  steps:
  - user: |
      fly [Berlin](city) to [NYC](city:New York) on [Monday]{"entity": "day", "role": "departure"}, [2]["""
        """{"entity": "n"}, {"entity": "seats"}] seats
    intent: book
  - bot: "Booked: 2 seats (Berlin → New York)."
- story: ""
  steps:
  - user: 007
  - bot: 1.50
""",
    )
    first, second = import_rasa_stories([path], None, eval_set_name="x").conversations
    assert first.conversation.id == "cafe-deja-vu"
    turn = first.conversation.turns[0]
    assert turn.text == "fly Berlin to NYC on Monday, 2 seats"
    assert turn.expect is not None
    assert turn.expect.reply_matches == r"Booked:\s+2\s+seats\s+\(Berlin\s+→\s+New\s+York\)\."
    assert second.conversation.id == "test_inline-line-8"
    # Numbers are sent as written, not as YAML reads them (7, 1.5).
    assert second.conversation.turns[0].text == "007" and second.conversation.turns[0].intent is None
    assert second.conversation.turns[0].expect == TurnChecks(reply_matches=r"1\.50")


# ------------------------------------------------------------------------------------------------- bad input, files


def test_invalid_yaml_is_reported_with_file_line_and_column() -> None:
    with pytest.raises(InputError) as error:
        import_rasa_stories([FIXTURES / "broken" / "test_invalid_yaml.yml"], None, eval_set_name="x")
    # The `-` of line 6 sits in column 4, inside the mapping of the step above it.
    assert f"{FIXTURES / 'broken' / 'test_invalid_yaml.yml'}:6:4:" in str(error.value)


def test_a_duplicate_key_is_reported_where_it_is() -> None:
    with pytest.raises(InputError) as error:
        import_rasa_stories([FIXTURES / "broken" / "test_duplicate_key.yml"], None, eval_set_name="x")
    assert f"{FIXTURES / 'broken' / 'test_duplicate_key.yml'}:6:5:" in str(error.value)
    assert "duplicate key" in str(error.value)


def test_missing_paths_and_folders_without_test_files_are_input_errors(tmp_path: Path) -> None:
    (tmp_path / "stories.yml").write_text("stories: []\n")
    with pytest.raises(InputError) as error:
        import_rasa_stories([tmp_path / "nope.yml", tmp_path], None, eval_set_name="x")
    assert error.value.problems == [
        f"{tmp_path / 'nope.yml'}: no such file or folder",
        f"{tmp_path}: no test_*.yml files in this folder (Rasa's test-story names)",
    ]


def test_an_existing_file_is_kept_unless_overwrite_is_asked(in_fixtures: None, tmp_path: Path) -> None:
    out = tmp_path / "sets" / "fixture_bot.yml"
    out.parent.mkdir()
    out.write_text("hand-written, keep me\n")
    result = import_fixtures()
    with pytest.raises(InputError) as error:
        write_eval_set(result, out)
    assert "pass --overwrite to replace it" in str(error.value)
    assert out.read_text() == "hand-written, keep me\n"
    write_eval_set(result, out, overwrite=True)
    assert out.read_text(encoding="utf-8") == render_eval_set(result)
    assert [p.name for p in out.parent.iterdir()] == ["fixture_bot.yml"]  # no partial file left


def test_nothing_to_write_when_no_story_could_be_imported(tmp_path: Path) -> None:
    path = story_file(tmp_path, "stories:\n- story: x\n  steps:\n  - intent: greet\n")
    result = import_rasa_stories([path], None, eval_set_name="x")
    with pytest.raises(InputError) as error:
        write_eval_set(result, tmp_path / "out.yml")
    assert "no test story could be imported" in str(error.value)
    assert "intent-only step (intent: greet)" in str(error.value)
    assert not (tmp_path / "out.yml").exists()


# ------------------------------------------------------------------------------------- a stock Rasa bot's tests


def test_the_helpdesk_bots_test_stories_import_and_load_against_its_vocabulary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(HELPDESK)
    result = import_rasa_stories(
        [Path("tests")],
        load_handoff_mapping(Path("handoff.yml")),
        eval_set_name="helpdesk",
        forms=load_domain(Path("domain.yml")).forms,
    )
    # Derived by hand from tests/test_stories.yml and handoff.yml (billing_team -> billing, human -> general,
    # tech_support -> technical; the slot is set before action_handoff runs and cleared after it).
    outcomes = {
        s.conversation.id: (s.conversation.expected.label, len(s.conversation.turns)) for s in result.conversations
    }
    assert outcomes == {
        "billing-question-handed-to-the-billing-team": ("escalated:billing", 2),
        "customer-asks-for-a-person": ("escalated:general", 1),
        "dead-line-handed-to-technical-support": ("escalated:technical", 3),
        "slow-line-logged-by-the-fault-form": ("self_served", 4),
        "outage-check-answered-no-fault-wanted": ("self_served", 3),
        "outage-check-then-a-wifi-fault-logged": ("self_served", 5),
        "plans-explained": ("self_served", 2),
        "greet-and-goodbye": ("self_served", 2),
    }
    assert result.of_kind(FindingKind.skipped) == ()
    last = next(s for s in result.conversations if s.story == "dead line handed to technical support")
    assert last.conversation.turns[-1].expect is not None
    assert last.conversation.turns[-1].expect.actions == ["problem_form", "action_submit_problem", "action_handoff"]

    out = write_eval_set(result, tmp_path / "helpdesk.yml")
    suite = load_with_vocabulary(out, Path("domain.yml"), Path("handoff.yml"))
    assert len(suite) == len(result.conversations)
