"""From a scored run to the dialogs analysts review: selection (flagging.py), masking, storage. The run is scored
once (`ScoredRun`); selection and dialogs read its scoring core.

A dialog keeps, per turn, what the customer wrote and everything the bot decided (intent and confidence, the
top alternatives, actions, slots, handoff), masked before it reaches the database. Loading is idempotent: a run
already loaded is refused, so reviews are never orphaned by a reload. A production window (a folder made by
`production.materialise`) loads the same way, with the sample drawn per conversation and the conversations another
loaded production window holds left out (see production.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from harness.embeddings import embed
from harness.errors import InputError
from harness.masking import mask, mask_turns, mask_value
from harness.records import read
from harness.records.run_folder import RunFolder
from harness.review import production
from harness.review.config import ReviewConfig
from harness.review.flagging import Selection, conversation_facts
from harness.review.flagging import select as select_dialogs
from harness.review.store import Dialog, DialogFlag, Run, audit
from harness.scoring.scored_run import ScoredRun

TOP_ALTERNATIVES = 3


def _json(value: Any, default: Any) -> Any:
    """A JSON cell decoded; `default` when null, empty, JSON null, or not of the default's type (a list for a
    list, a mapping for a mapping), so a bot whose trace leaves a field out never breaks the dialog view."""
    decoded = json.loads(value) if isinstance(value, str) and value else None
    return decoded if isinstance(decoded, type(default)) else default


def _value(value: Any) -> Any:
    """A plain Python value (None for pandas' missing values)."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def turn_view(row: pd.Series, text: str | None = None) -> dict[str, Any]:
    """One turn as the dialog view shows it, masked. `text`: the customer's text already masked together with the
    dialog's other turns (`mask_turns`, which also catches a number sent in pieces); by default the row's text is
    masked on its own."""
    ranking = _json(row["ranking"], [])
    return {
        "index": int(row["turn_index"]),
        "text": text if text is not None else mask(_value(row["text"])),
        "status": _value(row["status"]),
        "bot_messages": mask_value(_json(row["bot_messages"], [])),
        "intent": _value(row["intent"]),
        "confidence": None if _value(row["confidence"]) is None else round(float(row["confidence"]), 3),
        "fallback": bool(_value(row["fallback"]) or False),
        "alternatives": [
            {"name": r.get("name"), "confidence": round(float(r.get("confidence") or 0.0), 3)}
            for r in [r for r in ranking if isinstance(r, dict)][1 : 1 + TOP_ALTERNATIVES]
        ],
        "actions": _json(row["actions"], []),
        "slots": mask_value(_json(row["slots_set"], {})),
        "handoff_queue": _value(row["handoff_queue"]),
        "handoff_rule": _value(row["handoff_rule"]),
        "expected_intent": _value(row["expected_intent"]),
        "latency_ms": None if _value(row["latency_ms"]) is None else round(float(row["latency_ms"])),
        **_sent_at(row),
    }


def _sent_at(row: pd.Series) -> dict[str, str]:
    """`{"sent_at": ISO 8601 UTC}` for a production turn (when the customer's message arrived), else nothing."""
    sent = _value(row.get("sent_at"))
    return {"sent_at": pd.Timestamp(sent).isoformat()} if sent is not None else {}


def topic(turns: pd.DataFrame) -> str | None:
    """The first labelled intent, else the first intent the bot recognised (fallbacks aside)."""
    for column in ("expected_intent", "intent"):
        values = [v for v in turns[column].tolist() if _value(v) is not None and v != "nlu_fallback"]
        if values:
            return str(values[0])
    return None


def build_dialogs(
    run: ScoredRun,
    config: ReviewConfig,
    *,
    sample_key: str | None = None,
    skip: Callable[[Collection[str]], set[str]] | None = None,
) -> list[Dialog]:
    """Dialog rows (unsaved) for the conversations of `run` selected for review (a run with turn records).
    `sample_key`: see `flagging.select`; `skip`: given the selected conversation ids, those not to store."""
    if run.core is None or run.records is None:
        raise InputError("nothing to review", [f"{run.source}: the run has no turn records"])
    core, records = run.core, run.records
    encoder = embed if config.flags.repetition.meaning is not None else None
    chosen: dict[str, Selection] = {
        s.conversation_id: s
        for s in select_dialogs(core, config.flags, config.sample, encoder=encoder, sample_key=sample_key)
    }
    for conversation_id in skip(list(chosen)) if skip is not None else set():
        del chosen[conversation_id]
    facts = dict(conversation_facts(core))
    conversations = core.conversations.set_index("conversation_id")
    dialogs = []
    for conversation_id, turns in records.groupby("conversation_id", sort=True):
        if conversation_id not in chosen:
            continue
        selection, fact = chosen[conversation_id], facts[conversation_id]
        turns = turns.sort_values("turn_index")
        texts = mask_turns([_value(text) for text in turns["text"]])
        row = conversations.loc[conversation_id]
        labelled = fact.expected_label is not None
        dialogs.append(
            Dialog(
                conversation_id=str(conversation_id),
                eval_set=_value(turns["eval_set"].iloc[0]),
                intent=topic(turns),
                expected_label=fact.expected_label,
                actual_outcome=fact.actual_outcome,
                expected_queue=_value(row["expected_queue"]),
                actual_queue=_value(row["actual_queue"]),
                auto_resolved=bool(row["resolved"]) if labelled else None,
                critical=mask(fact.critical),
                resolvable=_value(row["resolvable"]) if labelled else None,
                priority=selection.priority,
                sampled=selection.sampled,
                flags=[{"rule": f.rule, "reason": mask(f.reason)} for f in selection.flags],
                flag_rows=[DialogFlag(rule=rule) for rule in sorted({f.rule for f in selection.flags})],
                turns=[turn_view(t, text) for (_, t), text in zip(turns.iterrows(), texts, strict=True)],
            )
        )
    return sorted(dialogs, key=lambda d: (-d.priority, d.conversation_id))


def loaded_run(session: Session, run_dir: Path) -> Run | None:
    """The run folder's run if it is in the review database already."""
    folder = RunFolder(run_dir)
    if folder.run_file.is_file():
        run_id = folder.meta().get("run_id")
    else:
        run_id = str(read(folder.turns)["run_id"].iloc[0]) if folder.turns.is_file() else None
    return session.scalar(select(Run).where(Run.run_id == run_id)) if run_id else None


def scored_run(run_dir: Path) -> ScoredRun:
    """The run to review, scored once: a finished run folder as `ScoredRun.load` reads it; a folder holding
    turns.parquet alone (hand-made, or production logs) as its records stand. InputError without turn records."""
    folder = RunFolder(run_dir)
    if folder.finished():
        return ScoredRun.load(folder)
    return ScoredRun.from_records(read(folder.turns), source=str(run_dir))


def load_run(session: Session, run_dir: Path, config: ReviewConfig, *, actor: str) -> Run:
    """Select, mask and store a finished run's dialogs for review; InputError if it was loaded already."""
    scored = scored_run(run_dir)
    records = scored.records
    if records is None or records.empty:
        raise InputError("nothing to review", [f"{RunFolder(run_dir).turns}: the run has no turns"])
    run_id = str(records["run_id"].iloc[0])
    if session.scalar(select(Run).where(Run.run_id == run_id)) is not None:
        raise InputError(
            "run already loaded for review",
            [f"{run_dir}: run {run_id} is in the review database; its dialogs and reviews are kept as they are"],
        )
    selection: dict[str, Any] = {"flags": config.flags.model_dump(), "sample": config.sample.model_dump()}
    stamp = production.stamp_of(run_dir)
    held: set[str] = set()

    def elsewhere(ids: Collection[str]) -> set[str]:
        held.update(production.held_elsewhere(session, ids, config.sample))
        return held

    if stamp is not None:
        selection[production.SOURCE] = stamp
    run = Run(
        run_id=run_id,
        source=str(run_dir),
        conversations=int(records["conversation_id"].nunique()),
        selection=selection,
    )
    if stamp is None:
        run.dialogs = build_dialogs(scored, config)
    else:
        run.dialogs = build_dialogs(scored, config, sample_key=production.SAMPLE_KEY, skip=elsewhere)
        selection[production.SOURCE] = {**stamp, "held_elsewhere": len(held)}
    session.add(run)
    audit(
        session,
        actor,
        "run.load",
        f"run {run_id}",
        source=str(run_dir),
        dialogs=len(run.dialogs),
        sampled=sum(d.sampled for d in run.dialogs),
        **({"held_elsewhere": len(held)} if stamp is not None else {}),
    )
    session.commit()
    return run
