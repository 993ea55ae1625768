"""The reference bot's weak spots of issue 17, per run: fraud conversations not handed to the fraud queue,
explicit requests for a person not handed off, and turn recognition, on the held-out set written after the
training data (eval_sets/heldout_2026_12.yml) and on the earlier eval sets, apart.

    .venv/bin/python bench/weak_spots.py experiments/baseline runs/<run id> [...]

A fraud conversation is one tagged `fraud`; it is missed when no turn handed off to the `fraud` queue. A human
request is a conversation whose expected rule is `explicit_human_request`; it is missed when nothing was handed
off. Recognition here is over labelled in-scope turns answered with status ok (the KPI recognition_rate.v2 of the
scorecard is the authoritative figure; this split only shows the two groups apart).

Out-of-scope detection, decomposed over every eval set: of the out-of-scope turns, how many the explicit
`out_of_scope` class caught (top intent), how many only the fallback caught (below threshold or ambiguous, top
intent in scope), and how many neither; of the in-scope turns, how many the fallback rejected and how many were
taken for `out_of_scope`. The class and the threshold are measured within one model (trained with the class), so
this says what each adds in the bot as it is, not how a model trained without the class would do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

HELD_OUT = "heldout_2026_12"


def weak_spots(turns: pd.DataFrame) -> dict[str, dict[str, object]]:
    """Per group (HELD_OUT / "earlier sets"): {"fraud_missed": [ids], "fraud_n", "human_missed": [ids], ...}."""
    turns = turns.assign(group=turns.eval_set.where(turns.eval_set == HELD_OUT, "earlier sets"))
    conversations = turns.groupby("conversation_id").agg(
        group=("group", "first"),
        tags=("tags", "first"),
        rule=("expected_rule", "first"),
        queues=("handoff_queue", lambda s: set(s.dropna())),
    )
    out: dict[str, dict[str, object]] = {}
    for group, c in conversations.groupby("group"):
        fraud = c[c.tags.map(lambda tags: "fraud" in json.loads(tags))]
        human = c[c.rule == "explicit_human_request"]
        scored = turns[
            (turns.group == group)
            & turns.expected_intent.notna()
            & (turns.expected_intent != "out_of_scope")
            & (turns.status == "ok")
        ]
        hits = (scored.intent == scored.expected_intent) & ~scored.fallback.fillna(False).astype(bool)
        out[str(group)] = {
            "fraud_missed": sorted(cid for cid, queues in fraud.queues.items() if "fraud" not in queues),
            "fraud_n": len(fraud),
            "human_missed": sorted(cid for cid, queues in human.queues.items() if not queues),
            "human_n": len(human),
            "recognition": float(hits.mean()) if len(scored) else None,
            "recognition_n": len(scored),
        }
    return out


def out_of_scope_split(turns: pd.DataFrame) -> dict[str, int]:
    """Counts of how out-of-scope turns were caught and in-scope turns rejected (see the module doc)."""
    ok = turns[(turns.status == "ok") & turns.expected_intent.notna()]
    fallback = ok.fallback.fillna(False).astype(bool)
    as_class = ok.intent == "out_of_scope"
    oos = ok.expected_intent == "out_of_scope"
    return {
        "oos_turns": int(oos.sum()),
        "oos_caught_by_class": int((oos & as_class).sum()),
        "oos_caught_only_by_fallback": int((oos & ~as_class & fallback).sum()),
        "oos_accepted": int((oos & ~as_class & ~fallback).sum()),
        "in_scope_turns": int((~oos).sum()),
        "in_scope_fallback": int((~oos & fallback).sum()),
        "in_scope_taken_for_oos": int((~oos & as_class & ~fallback).sum()),
    }


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for folder in map(Path, sys.argv[1:]):
        print(folder)
        if not (folder / "turns.parquet").is_file():
            sys.exit(f"{folder}: no turns.parquet; give a run folder written by `make eval` or `harness run`")
        turns = pd.read_parquet(folder / "turns.parquet")
        for group, row in weak_spots(turns).items():
            recognition = "n/a" if row["recognition"] is None else f"{row['recognition']:.1%}"
            print(
                f"  {group}: fraud missed {len(row['fraud_missed'])} of {row['fraud_n']} {row['fraud_missed']}; "
                f"human requests missed {len(row['human_missed'])} of {row['human_n']}; "
                f"recognition {recognition} of {row['recognition_n']} turns"
            )
        split = out_of_scope_split(turns)
        print(
            f"  out of scope: {split['oos_turns']} turns: caught by the out_of_scope class "
            f"{split['oos_caught_by_class']}, only by the fallback {split['oos_caught_only_by_fallback']}, accepted "
            f"{split['oos_accepted']}; in scope: {split['in_scope_turns']} turns, fallback "
            f"{split['in_scope_fallback']}, taken for out_of_scope {split['in_scope_taken_for_oos']}"
        )


if __name__ == "__main__":
    main()
