"""The `rasa` bot kind against a fake Rasa 3.6 server on httpx's MockTransport: the REST channel's replies and the
HTTP API's trackers in Rasa's wire format (`DialogueStateTracker.current_state`, `Event.as_dict`), read into
BotTurns; every failure of the wire; the domain as a file and as a folder; the settings."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.bots.base import Handoff, HttpOptions, RankedIntent
from harness.bots.handoff_mapping import HandoffMapping, UnmappedHandoffValue, load_handoff_mapping
from harness.bots.kinds import BOT_KINDS
from harness.bots.rasa import NoHandoffMapping, RasaBot, RasaSettings, connect_rasa, rasa_vocabulary
from harness.bots.rasa_domain import load_domain
from harness.errors import BotRefused, BotUnreachable, InputError
from harness.records import Observation, TurnStatus

HELPDESK = Path(__file__).parents[2] / "fixtures" / "stock_rasa" / "helpdesk"
ROOT = "http://rasa.test:5005"
FAST = {"retries": 2, "backoff_s": 0.0, "timeout_s": 5.0}


# --- Rasa's wire format -------------------------------------------------------------------------------------------


def user(text: str, intent: str, confidence: float, *ranking: tuple[str, float], model: str = "m-1") -> dict:
    parse = {
        "intent": {"name": intent, "confidence": confidence},
        "entities": [],
        "text": text,
        "message_id": "mid",
        "metadata": {},
        "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking or ((intent, confidence),)],
    }
    meta = {"model_id": model, "assistant_id": "helpdesk"} if model else {}
    return {"event": "user", "timestamp": 1.0, "text": text, "parse_data": parse, "input_channel": "rest",
            "message_id": "mid", "metadata": meta}  # fmt: skip


def action(name: str) -> dict:
    return {"event": "action", "timestamp": 1.0, "name": name, "policy": "RulePolicy", "confidence": 1.0,
            "action_text": None, "hide_rule_turn": False}  # fmt: skip


def slot(name: str, value: Any) -> dict:
    return {"event": "slot", "timestamp": 1.0, "name": name, "value": value}


def bot(text: str) -> dict:
    return {"event": "bot", "timestamp": 1.0, "text": text, "data": {"elements": None}, "metadata": {}}


def loop(name: str | None) -> dict:
    return {"event": "active_loop", "timestamp": 1.0, "name": name}


PAUSE = {"event": "pause", "timestamp": 1.0}
SESSION_START = [
    action("action_session_start"),
    {"event": "session_started", "timestamp": 1.0},
    action("action_listen"),
]


@dataclass
class Reaction:
    """What the fake bot does with one message: REST messages and the events logged after the user event."""

    messages: list[dict]
    events: list[dict]


@dataclass
class FakeRasa:
    """A Rasa server: REST channel at /webhooks/rest/webhook, HTTP API (tracker, status) guarded by `token`."""

    reactions: dict[str, Reaction]
    token: str | None = None
    webhook_status: int | None = None
    tracker_status: int | None = None
    status_model: str = "m-status"
    trackers: dict[str, list[dict]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    tracker_delay_s: float = 0.0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.raw_path.decode().split("?")[0]
        if request.method == "POST" and path == "/webhooks/rest/webhook":
            if self.webhook_status:
                return httpx.Response(self.webhook_status, text="<html>nope</html>")
            body = json.loads(request.content)
            sender, text = body["sender"], body["message"]
            reaction = self.reactions[text]
            head = SESSION_START if sender not in self.trackers else []
            intent = reaction.events[0]
            self.trackers.setdefault(sender, []).extend([*head, intent, *reaction.events[1:], action("action_listen")])
            return httpx.Response(200, json=[{"recipient_id": sender, **m} for m in reaction.messages])
        if self.token is not None and request.url.params.get("token") != self.token:
            return httpx.Response(401, json={"status": "failure", "reason": "NotAuthenticated"})
        if path == "/status":
            return httpx.Response(200, json={"model_id": self.status_model, "model_file": "models/x.tar.gz"})
        if path.startswith("/conversations/") and path.endswith("/tracker"):
            await asyncio.sleep(self.tracker_delay_s)
            if self.tracker_status:
                return httpx.Response(self.tracker_status, text="error")
            sender = path.removeprefix("/conversations/").removesuffix("/tracker")
            return httpx.Response(200, json=state(sender, self.trackers.get(sender, [])))
        return httpx.Response(404, json={"status": "failure"})


def state(sender: str, events: list[dict]) -> dict:
    """`DialogueStateTracker.current_state(EventVerbosity.ALL)` for these events."""
    slots: dict[str, Any] = {}
    active: str | None = None
    paused = False
    for event in events:
        kind = event["event"]
        if kind == "slot":
            slots[event["name"]] = event["value"]
        elif kind == "active_loop":
            active = event["name"]
        elif kind == "pause":
            paused = True
        elif kind == "resume":
            paused = False
    users = [e for e in events if e["event"] == "user"]
    return {
        "sender_id": sender,
        "slots": slots,
        "latest_message": users[-1]["parse_data"] if users else None,
        "latest_event_time": 1.0,
        "followup_action": None,
        "paused": paused,
        "events": events,
        "latest_input_channel": "rest",
        "active_loop": {"name": active, "is_interrupted": False, "rejected": False, "trigger_message": {}}
        if active
        else {},
        "latest_action": {"action_name": "action_listen"},
        "latest_action_name": "action_listen",
    }


REACTIONS = {
    "hi": Reaction(
        [{"text": "Hi, you're chatting with the helpdesk."}],
        [user("hi", "greet", 0.97, ("greet", 0.97), ("goodbye", 0.02)), action("utter_greet"), bot("Hi")],
    ),
    "my line is dead": Reaction(
        [{"text": "What's your account number?"}],
        [
            user("my line is dead", "report_problem", 0.91),
            action("problem_form"),
            loop("problem_form"),
            slot("requested_slot", "account_number"),
            bot("What's your account number?"),
        ],
    ),  # fmt: skip
    "asdfgh": Reaction(
        [{"text": "Sorry, I didn't quite understand that."}],
        [
            user("asdfgh", "nlu_fallback", 0.3, ("nlu_fallback", 0.3), ("greet", 0.12)),
            action("action_default_fallback"),
        ],
    ),
    "what?": Reaction(
        [{"text": "Sorry, I didn't quite understand that."}],
        [user("what?", "greet", 0.55), action("action_default_fallback")],
    ),
    "get me a person": Reaction(
        [{"text": "Transferring you to one of our advisers."}, {"custom": {"handoff": {"team": "human"}}}],
        [
            user("get me a person", "ask_human", 0.99),
            slot("handoff_to", "human"),
            action("action_handoff"),
            bot("Transferring you"),
            slot("handoff_to", None),
        ],
    ),  # fmt: skip
    "sales please": Reaction(
        [{"text": "Transferring you."}],
        [
            user("sales please", "ask_human", 0.9),
            slot("handoff_to", "sales_team"),
            action("action_handoff"),
            slot("handoff_to", None),
        ],
    ),  # fmt: skip
    "agent": Reaction(
        [{"text": "An agent will join shortly."}],
        [user("agent", "ask_human", 0.99), action("action_pause_for_agent"), PAUSE],
    ),
    "crash": Reaction([], [user("crash", "check_outage", 0.88), action("action_check_outage")]),
    "buttons": Reaction(
        [{"text": "Pick one", "buttons": [{"title": "Yes", "payload": "/affirm"}]}, {"image": "http://x/y.png"}],
        [user("buttons", "greet", 0.9), action("utter_pick")],
    ),
}

HELPDESK_MAPPING = load_handoff_mapping(HELPDESK / "handoff.yml")


def rasa(fake: FakeRasa, mapping: HandoffMapping | None = HELPDESK_MAPPING, token: str = "", **kw: Any) -> RasaBot:
    return RasaBot(ROOT, token, mapping, HttpOptions(**FAST, transport=fake.transport()), **kw)


def talk(bot: RasaBot, *texts: str, sender: str = "run1:conv-1:0a1b2c3d") -> list:
    async def go() -> list:
        try:
            return [await bot.send(sender, t) for t in texts]
        finally:
            await bot.aclose()

    return asyncio.run(go())


def mapping_from(tmp_path: Path, *handoffs: str, queues: str = "{}") -> HandoffMapping:
    """A handoff.yml with these `handoffs` entries (YAML flow mappings) and `queues`, loaded."""
    text = "version: 1\nhandoffs:\n" + "".join(f"  - {entry}\n" for entry in handoffs) + f"queues: {queues}\n"
    (tmp_path / "handoff.yml").write_text(text)
    return load_handoff_mapping(tmp_path / "handoff.yml")


# --- observation ----------------------------------------------------------------------------------------------


def test_a_turn_is_read_from_the_rest_reply_and_the_events_after_its_user_event() -> None:
    fake = FakeRasa(REACTIONS)
    greet, form = talk(rasa(fake), "hi", "my line is dead")
    assert greet.status is TurnStatus.ok and greet.messages == ("Hi, you're chatting with the helpdesk.",)
    assert (greet.intent, greet.confidence) == ("greet", 0.97)
    assert greet.ranking == (RankedIntent("greet", 0.97), RankedIntent("goodbye", 0.02))
    assert greet.actions == ("utter_greet",)  # action_session_start came before the user event; no action_listen
    assert dict(greet.slots_set or {}) == {} and greet.active_form is None and greet.fallback is False
    assert greet.model == "m-1" and greet.state == "active" and greet.handoff is None
    assert form.intent == "report_problem" and form.actions == ("problem_form",)
    assert dict(form.slots_set or {}) == {"requested_slot": "account_number"} and form.active_form == "problem_form"


def test_fallback_is_the_fallback_intent_or_a_fallback_action() -> None:
    by_intent, by_action, understood = talk(rasa(FakeRasa(REACTIONS)), "asdfgh", "what?", "hi")
    assert by_intent.fallback is True and by_intent.intent == "nlu_fallback"
    assert by_action.fallback is True and by_action.intent == "greet"
    assert understood.fallback is False
    custom = talk(rasa(FakeRasa(REACTIONS), fallback_actions=("utter_greet",), fallback_intents=()), "asdfgh", "hi")
    assert [t.fallback for t in custom] == [False, True]


def test_a_handoff_by_action_reads_the_slot_as_the_action_saw_it_and_maps_the_value() -> None:
    # the helpdesk's action_handoff clears `handoff_to` after reading it: the tracker ends with the slot null
    (turn,) = talk(rasa(FakeRasa(REACTIONS)), "get me a person")
    assert turn.handoff == Handoff("general") and turn.state == "handed_off" and turn.handed_off
    assert turn.messages == ("Transferring you to one of our advisers.", '{"custom":{"handoff":{"team":"human"}}}')
    assert dict(turn.slots_set or {}) == {"handoff_to": None}


def test_a_slot_set_in_an_earlier_turn_is_read_from_the_conversation_history() -> None:
    reactions = {
        "billing": Reaction([{"text": "I can help"}], [user("billing", "billing_question", 0.9),
                                                       slot("handoff_to", "billing_team"), action("utter_x")]),
        "ok do it": Reaction([{"text": "Transferring"}], [user("ok do it", "affirm", 0.9), action("action_handoff"),
                                                          slot("handoff_to", None)]),
    }  # fmt: skip
    first, second = talk(rasa(FakeRasa(reactions)), "billing", "ok do it")
    assert first.handoff is None and first.state == "active"
    assert second.handoff == Handoff("billing")


def test_a_handoff_by_pause_event_hands_off_and_a_mapping_without_rules_observes_no_rule(tmp_path: Path) -> None:
    mapping = mapping_from(tmp_path, "{when: {event: pause}, queue: {value: general}}")
    bot_ = rasa(FakeRasa(REACTIONS), mapping)
    assert Observation.handoff in bot_.observes and Observation.handoff_rule not in bot_.observes
    hi, agent = talk(bot_, "hi", "agent")
    assert hi.handoff is None and hi.state == "active"
    assert agent.handoff == Handoff("general") and agent.state == "handed_off"


def test_a_handoff_by_custom_payload_takes_queue_and_rule_from_the_payload(tmp_path: Path) -> None:
    entry = "{when: {payload: handoff}, queue: {payload: handoff.team}, rule: {value: customer_asked}}"
    mapping = mapping_from(tmp_path, entry, queues="{human: general}")
    bot_ = rasa(FakeRasa(REACTIONS), mapping)
    assert Observation.handoff_rule in bot_.observes
    hi, person = talk(bot_, "hi", "get me a person")
    assert hi.handoff is None and person.handoff == Handoff("general", "customer_asked")


def test_a_handoff_by_intent_and_the_action_name_as_queue(tmp_path: Path) -> None:
    by_intent = mapping_from(
        tmp_path, "{when: {intent: ask_human}, queue: {slot: handoff_to}}", queues="{human: general}"
    )
    (turn,) = talk(rasa(FakeRasa(REACTIONS), by_intent), "get me a person")
    assert turn.handoff == Handoff("general")  # the slot ended the turn cleared: its last value in the turn counts
    entry = "{when: {action: [action_transfer, action_handoff]}, queue: {action: true}}"
    by_name = mapping_from(tmp_path, entry, queues="{action_handoff: general}")
    (turn,) = talk(rasa(FakeRasa(REACTIONS), by_name), "get me a person")
    assert turn.handoff == Handoff("general")


def test_a_value_the_mapping_does_not_translate_gives_a_null_queue_and_a_warning_saying_how_to_add_it() -> None:
    with pytest.warns(UnmappedHandoffValue, match=r"'sales_team'.*add `sales_team: <queue name>` under `queues:`"):
        (turn,) = talk(rasa(FakeRasa(REACTIONS)), "sales please")
    assert turn.handoff == Handoff(None) and turn.state == "handed_off"


def test_without_a_mapping_no_handoff_is_observed() -> None:
    bot_ = rasa(FakeRasa(REACTIONS), None)
    assert Observation.handoff not in bot_.observes and Observation.handoff_rule not in bot_.observes
    (turn,) = talk(bot_, "get me a person")
    assert turn.handoff is None and turn.state == "active" and turn.status is TurnStatus.ok


def test_messages_are_texts_and_a_part_without_text_is_compact_json() -> None:
    (turn,) = talk(rasa(FakeRasa(REACTIONS)), "buttons")
    assert turn.messages == ("Pick one", '{"image":"http://x/y.png"}')


def test_the_model_comes_from_the_events_else_from_status_read_once() -> None:
    fake = FakeRasa({"hi": Reaction([{"text": "Hello"}], [user("hi", "greet", 0.9, model=""), action("utter_greet")])})
    turns = talk(rasa(fake), "hi", "hi", "hi")
    assert [t.model for t in turns] == ["m-status"] * 3
    assert sum(r.url.path == "/status" for r in fake.requests) == 1


# --- the wire -----------------------------------------------------------------------------------------------------


def test_the_id_goes_into_the_tracker_url_unquoted_and_the_token_only_to_the_http_api() -> None:
    fake = FakeRasa(REACTIONS, token="s3cret&x")
    (turn,) = talk(rasa(fake, token="s3cret&x"), "hi", sender="run-7:conv.1:0a1b")
    assert turn.status is TurnStatus.ok
    webhook, tracker = fake.requests
    assert webhook.url.raw_path == b"/webhooks/rest/webhook" and "token" not in webhook.url.params
    assert json.loads(webhook.content) == {"sender": "run-7:conv.1:0a1b", "message": "hi"}
    # Rasa 3.6 (Sanic 21.12) does not percent-decode path parameters: %3A would name another conversation
    assert tracker.url.raw_path.startswith(b"/conversations/run-7:conv.1:0a1b/tracker?")
    assert tracker.url.params["token"] == "s3cret&x" and tracker.url.params["include_events"] == "ALL"


def test_an_empty_reply_is_empty_reply_with_the_tracker_observation_kept() -> None:
    (turn,) = talk(rasa(FakeRasa(REACTIONS)), "crash")
    assert turn.status is TurnStatus.empty_reply and turn.messages == () and "[]" in (turn.error or "")
    assert turn.intent == "check_outage" and turn.actions == ("action_check_outage",)


def test_an_error_status_is_a_channel_error_with_the_body_head_and_no_tracker_read() -> None:
    fake = FakeRasa(REACTIONS, webhook_status=500)
    (turn,) = talk(rasa(fake), "hi")
    assert turn.status is TurnStatus.channel_error and turn.http_status == 500
    assert turn.error == "HTTP 500: <html>nope</html>" and len(fake.requests) == 1


def test_a_body_that_is_not_a_message_list_is_a_channel_error() -> None:
    (turn,) = talk(_odd_body(), "hi")
    assert turn.status is TurnStatus.channel_error and "not a Rasa REST reply" in (turn.error or "")


def _odd_body() -> RasaBot:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"messages": []}))
    return RasaBot(ROOT, "", None, HttpOptions(**FAST, transport=transport))


@pytest.mark.parametrize(
    ("where", "status", "message"),
    [
        ("webhook", 401, "Rasa's REST channel takes no token"),
        ("webhook", 404, "is the REST channel enabled in the bot's credentials.yml"),
        ("tracker", 401, "start rasa with --enable-api --auth-token <token>.*bot.token_env"),
        ("tracker", 403, "start rasa with --enable-api --auth-token <token>.*bot.token_env"),
        ("tracker", 404, "start rasa with --enable-api"),
        ("tracker", 409, "no model loaded"),
    ],
)
def test_a_refusal_stops_the_run_saying_how_to_fix_it(where: str, status: int, message: str) -> None:
    fake = FakeRasa(REACTIONS, **{f"{where}_status": status})
    with pytest.raises(BotRefused, match=message):
        talk(rasa(fake), "hi")


def test_a_wrong_token_is_refused_by_the_http_api() -> None:
    with pytest.raises(BotRefused, match="bot.token_env"):
        talk(rasa(FakeRasa(REACTIONS, token="right"), token="wrong"), "hi")


def test_a_tracker_error_after_an_answer_is_a_channel_error_keeping_the_messages() -> None:
    (turn,) = talk(rasa(FakeRasa(REACTIONS, tracker_status=500)), "hi")
    assert turn.status is TurnStatus.channel_error and turn.messages == ("Hi, you're chatting with the helpdesk.",)
    assert "tracker could not be read: HTTP 500" in (turn.error or "")


def test_a_tracker_of_another_conversation_stops_the_run() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json=[{"recipient_id": "x", "text": "hi"}])
        return httpx.Response(200, json=state("a%3Ab", []))

    bot_ = RasaBot(ROOT, "", None, HttpOptions(**FAST, transport=httpx.MockTransport(handler)))
    with pytest.raises(BotRefused, match="characters Rasa's HTTP API cannot take"):
        talk(bot_, "hi", sender="a:b")


def test_a_tracker_whose_last_message_is_not_the_one_sent_is_a_channel_error() -> None:
    fake = FakeRasa(REACTIONS)
    bot_ = rasa(fake)
    fake.reactions = {**REACTIONS, "hello": REACTIONS["hi"]}  # logs the user event "hi" for the message "hello"
    (turn,) = talk(bot_, "hello")
    assert turn.status is TurnStatus.channel_error and "is 'hi', not the message sent" in (turn.error or "")


def test_connection_refused_raises_bot_unreachable_after_the_retries() -> None:
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("Connection refused", request=request)

    bot_ = RasaBot(ROOT, "", None, HttpOptions(**FAST, transport=httpx.MockTransport(refuse)))
    with pytest.raises(BotUnreachable, match=r"cannot reach the bot at http://rasa.test:5005/webhooks/rest/webhook"):
        talk(bot_, "hi")
    assert len(calls) == FAST["retries"] + 1


def test_a_timeout_is_a_timeout_turn_and_latency_excludes_the_tracker_read() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    (turn,) = talk(RasaBot(ROOT, "", None, HttpOptions(**FAST, transport=httpx.MockTransport(slow))), "hi")
    assert turn.status is TurnStatus.timeout and turn.attempts == 1
    fake = FakeRasa(REACTIONS, tracker_delay_s=0.3)
    (turn,) = talk(rasa(fake), "hi")
    assert turn.status is TurnStatus.ok and turn.latency_ms < 300


# --- domain, vocabulary, settings ---------------------------------------------------------------------------------


def test_the_vocabulary_comes_from_the_domain_and_the_mapping() -> None:
    settings = RasaSettings(url=ROOT, project=HELPDESK, handoff=HELPDESK / "handoff.yml")
    words = rasa_vocabulary(settings, Path("/unused"))
    assert words.intents[:3] == ("greet", "goodbye", "affirm") and "inform" in words.intents
    assert set(words.queues) == {"billing", "technical", "general"} and words.rules == ()
    assert str(HELPDESK / "domain.yml") in words.source and "handoff.yml" in words.source


def test_a_domain_folder_is_merged_as_rasa_merges_it(tmp_path: Path) -> None:
    folder = tmp_path / "domain"
    (folder / "billing").mkdir(parents=True)
    (folder / "core.yml").write_text(
        "version: '3.1'\nintents:\n  - greet\n  - nlu_fallback\n  - inform:\n      use_entities: []\n"
        "slots:\n  handoff_to: {type: text, mappings: []}\nresponses:\n  utter_greet: [{text: hi}]\n"
    )
    (folder / "billing" / "billing.yml").write_text(
        "intents: [billing_question, greet]\nactions: [action_handoff]\nforms:\n  pay_form: {required_slots: []}\n"
    )
    (folder / "nlu.yml").write_text("nlu:\n  - intent: greet\n    examples: '- hi'\n")  # not a domain file
    domain = load_domain(folder)
    assert domain.intents == ("billing_question", "greet", "nlu_fallback", "inform")
    assert set(domain.actions) == {"action_handoff", "utter_greet", "pay_form"} and domain.slots == ("handoff_to",)
    settings = RasaSettings(url=ROOT, project=tmp_path)
    assert rasa_vocabulary(settings, tmp_path).intents == ("billing_question", "greet", "inform")


def test_a_malformed_domain_names_the_file_and_entry(tmp_path: Path) -> None:
    (tmp_path / "domain.yml").write_text("intents:\n  - greet\n  - {a: 1, b: 2}\nslots: [x]\n")
    with pytest.raises(InputError) as info:
        load_domain(tmp_path / "domain.yml")
    assert info.value.problems == [
        f"{tmp_path / 'domain.yml'}: intents[1]: expected an intent name or a one-key mapping `name: {{options}}`, "
        "got {'a': 1, 'b': 2}",
        f"{tmp_path / 'domain.yml'}: slots: expected a mapping of names, got list",
    ]
    with pytest.raises(InputError, match="has no domain.yml and no domain/ folder"):
        rasa_vocabulary(RasaSettings(url=ROOT, project=tmp_path / "nowhere"), tmp_path)


def test_the_mapping_is_checked_against_the_domain_with_did_you_mean(tmp_path: Path) -> None:
    shutil.copy(HELPDESK / "domain.yml", tmp_path / "domain.yml")
    mapping_from(
        tmp_path,
        "{when: {action: action_handof}, queue: {slot: handoff_too}}",
        "{when: {intent: ask_humna}, queue: {value: general}}",
        queues="{human: general}",
    )
    settings = RasaSettings(url=ROOT, project=tmp_path, handoff=tmp_path / "handoff.yml")
    with pytest.raises(InputError) as info:
        rasa_vocabulary(settings, tmp_path)
    where = f"{tmp_path / 'handoff.yml'}: handoffs"
    assert [p.split("; known")[0] for p in info.value.problems] == [
        f"{where}[0].when.action: unknown action 'action_handof' (did you mean 'action_handoff'?)",
        f"{where}[0].queue.slot: unknown slot 'handoff_too' (did you mean 'handoff_to'?)",
        f"{where}[1].when.intent: unknown intent 'ask_humna' (did you mean 'ask_human'?)",
    ]


def test_settings_take_the_server_root_and_say_so_when_given_the_webhook() -> None:
    kind = BOT_KINDS.get("rasa")
    assert kind.name == "rasa.v1" and kind.token_env == "RASA_AUTH_TOKEN" and not kind.token_required
    assert kind.settings.model_validate({"kind": "rasa", "url": ROOT + "/", "project": "."}).url == ROOT
    with pytest.raises(ValueError, match=r"is a channel's webhook; give the Rasa server's root \(http://h:5005\)"):
        RasaSettings(url="http://h:5005/webhooks/rest/webhook", project=Path("."))
    with pytest.raises(ValueError, match="give `project`"):
        RasaSettings(url=ROOT)
    with pytest.raises(ValueError, match="Extra inputs"):
        RasaSettings.model_validate({"url": ROOT, "project": ".", "handof": "x.yml"})


def test_connect_loads_the_mapping_or_warns_that_no_handoff_will_be_seen() -> None:
    options = HttpOptions(**FAST)
    bot_ = connect_rasa(RasaSettings(url=ROOT, project=HELPDESK, handoff=HELPDESK / "handoff.yml"), "t", options)
    assert bot_.mapping == HELPDESK_MAPPING and bot_.token == "t" and Observation.handoff in bot_.observes
    with pytest.warns(NoHandoffMapping, match="set bot.handoff"):
        bot_ = connect_rasa(RasaSettings(url=ROOT, project=HELPDESK), "", options)
    assert bot_.mapping is None and Observation.handoff not in bot_.observes


# --- recorded wire of a real Rasa 3.6.21 server (tests/fixtures/stock_rasa/wire) -----------------------------------

WIRE = HELPDESK.parent / "wire"


def recorded(name: str, mapping: HandoffMapping | None = HELPDESK_MAPPING) -> tuple[RasaBot, str, list[str]]:
    """A RasaBot on a transport serving one recorded conversation's REST replies and trackers in order (the
    recording's sender id, and its texts to send)."""
    turns = json.loads((WIRE / name).read_text())
    status = json.loads((WIRE / "status.json").read_text())
    sender = turns[0]["tracker"]["sender_id"]
    position = {"sent": -1}

    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/status":
            return httpx.Response(200, json=status)
        if request.method == "POST":
            position["sent"] += 1
            turn = turns[position["sent"]]
            assert json.loads(request.content) == {"sender": sender, "message": turn["text"]}
            return httpx.Response(200, json=turn["rest"])
        assert request.url.raw_path.startswith(f"/conversations/{sender}/tracker".encode())
        return httpx.Response(200, json=turns[position["sent"]]["tracker"])

    bot_ = RasaBot(ROOT, "", mapping, HttpOptions(**FAST, transport=httpx.MockTransport(serve)))
    return bot_, sender, [t["text"] for t in turns]


def test_recorded_billing_handoff() -> None:
    bot_, sender, texts = recorded("handoff_billing.json")
    hello, bill = talk(bot_, *texts, sender=sender)
    assert (hello.intent, hello.actions, hello.handoff, hello.state) == ("greet", ("utter_greet",), None, "active")
    assert bill.intent == "billing_question" and bill.confidence == pytest.approx(0.99214, abs=1e-5)
    assert [r.name for r in bill.ranking or ()][:3] == ["billing_question", "report_problem", "upgrade_plan"]
    assert bill.actions == ("action_handoff",) and dict(bill.slots_set or {}) == {"handoff_to": None}
    assert bill.handoff == Handoff("billing") and bill.state == "handed_off" and bill.fallback is False
    assert bill.messages == (
        "Transferring you to our billing team. Someone will join this chat shortly.",
        '{"custom":{"handoff":{"team":"billing_team"}}}',
    )
    assert bill.model == "436ce4a2605f44efb4ebf42519467617"


def test_recorded_form_then_technical_handoff() -> None:
    bot_, sender, texts = recorded("handoff_tech_after_form.json")
    ask, account, dead = talk(bot_, *texts, sender=sender)
    assert ask.active_form == "problem_form" and dict(ask.slots_set or {}) == {"requested_slot": "account_number"}
    assert account.active_form == "problem_form" and account.intent == "inform" and account.handoff is None
    assert dict(account.slots_set or {}) == {"account_number": "40012345", "requested_slot": "problem_kind"}
    assert dead.active_form is None
    assert dead.actions == ("problem_form", "action_submit_problem", "action_handoff")
    assert dead.handoff == Handoff("technical") and len(dead.messages or ()) == 3


def test_recorded_form_completed_without_handoff_though_the_team_slot_was_set() -> None:
    bot_, sender, texts = recorded("form_completed.json")
    turns = talk(bot_, *texts, sender=sender)
    assert [t.intent for t in turns] == ["report_problem", "billing_question", "inform", "inform", "deny"]
    assert dict(turns[1].slots_set or {})["handoff_to"] == "billing_team"  # from_intent mapping, no action_handoff
    assert [t.handoff for t in turns] == [None] * 5 and [t.state for t in turns] == ["active"] * 5
    assert [t.active_form for t in turns] == ["problem_form"] * 3 + [None, None]


def test_recorded_fallback() -> None:
    bot_, sender, texts = recorded("fallback.json")
    hi, gibberish, outage = talk(bot_, *texts, sender=sender)
    assert (hi.fallback, gibberish.fallback, outage.fallback) == (False, True, False)
    assert gibberish.intent == "nlu_fallback" and gibberish.confidence == 0.4
    assert gibberish.actions == ("action_default_fallback",)  # the `rewind` event after it is not an action
    assert outage.actions == ("action_check_outage", "utter_offer_ticket") and len(outage.messages or ()) == 2


def test_recorded_turn_without_an_action_server() -> None:
    # action_handoff failed (no action server) and Rasa fell back; it still logged the action as run, then went
    # straight on to action_default_fallback and reverted the message: neither a mapping on the action nor one on
    # the payload the action sends sees a handoff
    payload = HandoffMapping.model_validate(
        {"version": 1, "handoffs": [{"when": {"payload": "handoff"}, "queue": {"payload": "handoff.team"}}],
         "queues": {"billing_team": "billing"}}
    )  # fmt: skip
    bot_, sender, texts = recorded("no_action_server.json", payload)
    (turn,) = talk(bot_, *texts, sender=sender)
    assert turn.fallback is True and turn.actions == ("action_handoff", "action_default_fallback")
    assert turn.handoff is None and turn.state == "active"
    bot_, sender, texts = recorded("no_action_server.json")
    (turn,) = talk(bot_, *texts, sender=sender)
    assert turn.handoff is None and turn.state == "active" and turn.fallback is True


def test_recorded_starter_image_reply() -> None:
    bot_, sender, texts = recorded("starter_cheered_up.json", None)
    hi, sad, yes = talk(bot_, *texts, sender=sender)
    assert sad.messages == (
        "Here is something to cheer you up:",
        '{"image":"https://i.imgur.com/nGF1K8f.jpg"}',
        "Did that help you?",
    )
    assert sad.intent == "mood_unhappy" and sad.actions == ("utter_cheer_up", "utter_did_that_help")
    assert yes.intent == "affirm" and hi.model == "babec6c827a9469492717236d0a50382"  # the starter's own model
