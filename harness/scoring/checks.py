"""Reply checks, judged from the turn table at scoring time: a changed check is a rescore, not a new replay.

A turn's checks (`checks` column, the eval set's `expect:`) are judged against what the table recorded of the
bot's reaction (`bot_messages`, `actions`, `slots_set`). A check on a turn the bot did not answer fails ("no reply
from the bot"); a silenced or unsent turn is not judged. A check whose input the bot kind does not observe (the
column is null: an HTTP bot that reports no actions) is not judged either: `check_passed` stays null and
`check_failures` says which observation is missing, so a pass is never claimed on nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd

from harness.project.eval_set import TurnChecks
from harness.records import TurnStatus

NOT_JUDGED = (TurnStatus.silenced.value, TurnStatus.not_sent.value)


def judge(checks: TurnChecks, row: dict[str, Any]) -> tuple[bool | None, list[str]]:
    """(passed, reasons) for one turn's `checks` against its record `row` (the table's columns).

    passed is None when a check needs an observation the row lacks (reasons then name it); True/False otherwise.
    """
    if row.get("status") != TurnStatus.ok.value:
        return False, ["no reply from the bot"]
    needs = {
        "actions": bool(checks.actions or checks.not_actions),
        "slots_set": bool(checks.slots),
        "bot_messages": bool(checks.reply_matches or checks.reply_excludes),
    }
    values = {column: _json(row.get(column)) for column, needed in needs.items() if needed}
    missing = [column for column, value in values.items() if value is None]
    if missing:
        return None, [f"not judged: the bot does not report {', '.join(missing)}"]
    actions = values.get("actions") or []
    slots = values.get("slots_set") or {}
    reply = "\n".join(values.get("bot_messages") or [])
    failures = [f"action {a} did not run" for a in checks.actions if a not in actions]
    failures += [f"action {a} ran" for a in checks.not_actions if a in actions]
    failures += [f"slot {k} was {slots.get(k)!r}, expected {v!r}" for k, v in checks.slots.items() if slots.get(k) != v]
    if checks.reply_matches and not re.search(checks.reply_matches, reply, re.IGNORECASE):
        failures.append(f"reply does not match /{checks.reply_matches}/")
    if checks.reply_excludes and re.search(checks.reply_excludes, reply, re.IGNORECASE):
        failures.append(f"reply matches forbidden /{checks.reply_excludes}/")
    return not failures, failures


def judge_checks(records: pd.DataFrame) -> pd.DataFrame:
    """`records` with `check_passed` and `check_failures` judged afresh from `checks` (a copy; same index)."""
    passed: list[bool | None] = []
    reasons: list[str | None] = []
    for row in records.to_dict("records"):
        spec = row.get("checks")
        if spec is None or pd.isna(spec) or row.get("status") in NOT_JUDGED:
            passed.append(None)
            reasons.append(None)
            continue
        ok, why = judge(TurnChecks.model_validate_json(spec), row)
        passed.append(ok)
        reasons.append(json.dumps(why))
    return records.assign(
        check_passed=pd.Series(passed, index=records.index, dtype="boolean"),
        check_failures=pd.Series(reasons, index=records.index, dtype="string"),
    )


def _json(value: Any) -> Any:
    if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
        return None
    return json.loads(value) if isinstance(value, str) else value
