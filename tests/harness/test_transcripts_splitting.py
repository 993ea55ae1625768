"""Conversation splitting at the inactivity timeout (the exact boundary), session starts and restarts; the
production configuration."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.project import production_config
from harness.project.production_config import load_production_config
from harness.sources.transcripts.events import RawEvent, Watermark
from harness.sources.transcripts.splitting import split


def events(*spec: tuple[str, float]) -> list[RawEvent]:
    out = []
    for index, (kind, t) in enumerate(spec, start=1):
        data = {"event": kind, "timestamp": t}
        if kind == "action_session_start":
            data = {"event": "action", "timestamp": t, "name": "action_session_start"}
        out.append(RawEvent("s", float(index), f"events.id={index}", data))
    return out


def keys(segments: list) -> list[list[float]]:
    return [[e.key for e in s.events] for s in segments]


@pytest.mark.parametrize(("gap", "pieces"), [(1800.0, 1), (1799.5, 1), (1800.5, 2)])
def test_timeout_boundary(gap: float, pieces: int) -> None:
    # The gap runs from the bot's message (t=1.5) to the next customer message.
    found = split(events(("user", 1.0), ("bot", 1.5), ("user", 1.5 + gap)), 1800.0)
    assert len(found) == pieces
    if pieces == 2:
        assert keys(found) == [[1.0, 2.0], [3.0]] and found[0].ended_by == "timeout" and found[1].ended_by is None


def test_other_events_do_not_reset_the_idle_clock() -> None:
    # An action at t=1000 (say a reminder) is not a message: the gap counts from the bot's message at t=1.
    found = split(events(("user", 0.0), ("bot", 1.0), ("action", 1000.0), ("user", 1802.0)), 1800.0)
    assert keys(found) == [[1.0, 2.0, 3.0], [4.0]]


def test_session_start_takes_its_action_with_it() -> None:
    found = split(
        events(("user", 0), ("bot", 1), ("action_session_start", 60), ("session_started", 60), ("user", 61)), 1800.0
    )
    assert keys(found) == [[1.0, 2.0], [3.0, 4.0, 5.0]] and found[0].ended_by == "session_start"


def test_a_first_session_start_does_not_split() -> None:
    found = split(events(("action_session_start", 0), ("session_started", 0), ("user", 1)), 1800.0)
    assert keys(found) == [[1.0, 2.0, 3.0]]


def test_restart_ends_with_the_restart() -> None:
    found = split(events(("user", 0), ("restart", 1), ("user", 2)), 1800.0)
    assert keys(found) == [[1.0, 2.0], [3.0]] and found[0].ended_by == "restart"


def test_watermark_reopens_only_deferred_senders() -> None:
    mark = Watermark(10.0, {"h1": 7.0})
    assert mark.wanted(11.0, "h2") and not mark.wanted(8.0, "h2")
    assert mark.wanted(7.0, "h1") and not mark.wanted(6.0, "h1")
    assert Watermark().wanted(1.0, "x") and Watermark().low() is None


def test_config_defaults_and_file(tmp_path: Path) -> None:
    from harness.bots.rasa import DEFAULT_FALLBACK_ACTIONS, DEFAULT_FALLBACK_INTENTS

    assert production_config.DEFAULT_FALLBACK_ACTIONS == DEFAULT_FALLBACK_ACTIONS
    assert production_config.DEFAULT_FALLBACK_INTENTS == DEFAULT_FALLBACK_INTENTS
    defaults = load_production_config(tmp_path / "missing.yml", tmp_path)
    assert (
        defaults.inactivity_timeout == timedelta(minutes=30) and defaults.store == tmp_path / "experiments/production"
    )
    assert defaults.handoff_mapping is None and defaults.customer == "sender"
    path = tmp_path / "p.yml"
    path.write_text(
        "store: /data/prod\ninactivity_timeout_minutes: 15\nhandoff_mapping: bot/h.yml\nmasking: {names: true}\n"
    )
    loaded = load_production_config(path, tmp_path)
    assert loaded.store == Path("/data/prod") and loaded.inactivity_timeout == timedelta(minutes=15)
    assert loaded.handoff_mapping == tmp_path / "bot/h.yml" and loaded.masking.names is True
    path.write_text("inactivity_timeout_minutes: 0\nmasking: {nmes: true}\n")
    with pytest.raises(InputError) as caught:
        load_production_config(path, tmp_path)
    text = str(caught.value)
    assert "inactivity_timeout_minutes" in text and "masking.nmes" in text


def test_the_repository_config_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    loaded = load_production_config(root / "experiments" / "production.yml", root)
    assert loaded.handoff_mapping == root / "bot" / "handoff.yml" and loaded.handoff_mapping.is_file()
