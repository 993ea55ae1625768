"""The pure parts of the NLU benchmark scripts: reading HWU64-style CSVs, McNemar between two pipelines, the issue 17
targets, and the weak-spot split of a run (bench/hwu64_bench.py, bench/weak_spots.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
import yaml

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


hwu64 = load("hwu64_bench")
weak = load("weak_spots")


def test_a_csv_row_without_text_or_intent_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,intent\nwake me at 7,alarm_set\n,alarm_query\n")
    with pytest.raises(ValueError, match=r"train.csv:3: a row needs both text and intent"):
        hwu64.read_split(path)


def test_training_yaml_keeps_texts_that_yaml_would_misread() -> None:
    text = hwu64.nlu_yaml(["no", "yes: please", "- dash"], ["deny", "affirm", "deny"])
    blocks = {b["intent"]: b["examples"] for b in yaml.safe_load(text)["nlu"]}
    assert blocks == {"deny": "- no\n- - dash\n", "affirm": "- yes: please\n"}


def test_mcnemar_counts_the_discordant_pairs_and_gives_an_exact_p() -> None:
    result = hwu64.mcnemar([True, True, False, False, True], [True, False, True, True, True])
    assert result["only_baseline_correct"] == 1 and result["only_reference_correct"] == 2
    assert result["p_value"] == pytest.approx(1.0)  # 1 of 3 discordant: two-sided binomial p = 1
    assert hwu64.mcnemar([True], [True])["p_value"] == 1.0


def test_targets_are_judged_on_their_bounds() -> None:
    row = {"accuracy": 0.93, "recognition": 0.92, "train_seconds": 300.0, "p95_ms": 30.0}
    assert all(hwu64.targets_met(row).values())
    worse = {"accuracy": 0.9299, "recognition": 0.9198, "train_seconds": 300.1, "p95_ms": 30.01}
    assert not any(hwu64.targets_met(worse).values())


def turn(conversation: str, eval_set: str, tags: list[str], **columns: object) -> dict[str, object]:
    base = {
        "conversation_id": conversation,
        "eval_set": eval_set,
        "tags": json.dumps(tags),
        "expected_rule": None,
        "expected_intent": "report_fraud",
        "intent": "report_fraud",
        "fallback": False,
        "status": "ok",
        "handoff_queue": None,
    }
    return {**base, **columns}


def test_weak_spots_split_held_out_from_earlier_sets() -> None:
    turns = pd.DataFrame(
        [
            turn("a-1", "escalation", ["fraud"], handoff_queue="fraud"),
            turn("a-2", "escalation", ["fraud"], intent="fees"),
            turn("h-1", "heldout_2026_12", ["fraud"], intent="card_lost_stolen", handoff_queue="cards"),
            turn("h-2", "heldout_2026_12", [], expected_rule="explicit_human_request", expected_intent="request_human"),
        ]
    )
    spots = weak.weak_spots(turns)
    assert spots["earlier sets"]["fraud_missed"] == ["a-2"] and spots["earlier sets"]["fraud_n"] == 2
    assert spots["heldout_2026_12"]["fraud_missed"] == ["h-1"]
    assert spots["heldout_2026_12"]["human_missed"] == ["h-2"] and spots["heldout_2026_12"]["human_n"] == 1
    assert spots["earlier sets"]["recognition"] == pytest.approx(0.5)


def test_out_of_scope_turns_are_split_by_what_caught_them() -> None:
    turns = pd.DataFrame(
        [
            turn("c", "x", [], expected_intent="out_of_scope", intent="out_of_scope"),
            turn("c", "x", [], expected_intent="out_of_scope", intent="fees", fallback=True),
            turn("c", "x", [], expected_intent="out_of_scope", intent="fees"),
            turn("c", "x", [], expected_intent="fees", intent="out_of_scope"),
            turn("c", "x", [], expected_intent="fees", intent="fees", fallback=True),
            turn("c", "x", [], expected_intent="fees", intent="fees", status="timeout"),
        ]
    )
    assert weak.out_of_scope_split(turns) == {
        "oos_turns": 3,
        "oos_caught_by_class": 1,
        "oos_caught_only_by_fallback": 1,
        "oos_accepted": 1,
        "in_scope_turns": 2,
        "in_scope_fallback": 1,
        "in_scope_taken_for_oos": 1,
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("words,label\nhi,greet\n", "missing column"),
        ("text,intent\n", "no rows under the header"),
        ('text,intent\n"two\nlines",greet\n', "spans lines"),
    ],
)
def test_malformed_csvs_are_refused_by_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "test.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        hwu64.read_split(path)


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_bytes("\ufefftext,intent\nhi,greet\n".encode())
    assert hwu64.read_split(path) == (["hi"], ["greet"])


def test_weak_spots_of_a_group_without_fraud_or_human_requests_are_empty() -> None:
    turns = pd.DataFrame([turn("b-1", "accounts", ["balance"], expected_intent="check_balance", fallback=None)])
    spots = weak.weak_spots(turns)["earlier sets"]
    assert spots["fraud_missed"] == [] and spots["fraud_n"] == 0 and spots["human_missed"] == []
