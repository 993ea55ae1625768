"""Loading intents/: the committed data is valid; every problem in a broken file is reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InputError
from harness.project.bot_config import load_queue_config
from harness.project.intents import IntentKind, load_catalog, normalise, plain_text
from harness.project.paths import ProjectPaths

PATHS = ProjectPaths()


def test_the_committed_intents_cover_what_the_reference_bot_needs() -> None:
    catalog = load_catalog(PATHS.intents, known_queues=load_queue_config(PATHS.escalation_policy).queues)
    assert len(catalog.intents) >= 25
    kinds = {i.kind for i in catalog.intents.values()}
    assert kinds == set(IntentKind)
    assert {"request_human", "complaint", "report_fraud", "out_of_scope", "card_lost_stolen"} <= set(catalog.intents)
    assert catalog.entities() == ["card_type"]


def test_markup_is_stripped_and_text_normalised() -> None:
    assert plain_text("lost my [debit card](card_type) today") == "lost my debit card today"
    assert plain_text('my [visa]{"entity": "card_type", "value": "debit"}') == "my visa"
    assert normalise("  Lost my CARD!!  ") == "lost my card"


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)


GOOD = """version: 1
intents:
  - name: card_lost
    description: Lost card.
    queue: cards
    kind: self_service
    examples: [I lost my card, card gone]
"""


def test_every_problem_is_reported_with_file_and_location(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", GOOD)
    write(
        tmp_path,
        "b.yml",
        """version: 1
intents:
  - name: card_lost
    description: Again.
    queue: cards
    kind: self_service
    examples: [x]
  - name: balance
    description: Balance.
    queue: acounts
    kind: self_service
    examples: ["Card gone!", what's my balance]
  - name: fees
    description: Fees.
    queue: accounts
    kind: selfservice
    exampels: [fees]
""",
    )
    with pytest.raises(InputError) as info:
        load_catalog(tmp_path, known_queues=["cards", "accounts"])
    problems = info.value.problems
    assert any("b.yml: intents[2](fees).kind: Input should be" in p for p in problems)
    assert any(
        "b.yml: intents[2](fees).exampels: unknown key 'exampels' (did you mean 'examples'?)" in p for p in problems
    )
    # The schema error stops that file; a valid file still gets cross-checked.
    write(
        tmp_path,
        "b.yml",
        """version: 1
intents:
  - name: card_lost
    description: Again.
    queue: cards
    kind: self_service
    examples: [x]
  - name: balance
    description: Balance.
    queue: acounts
    kind: self_service
    examples: ["Card gone!", what's my balance]
""",
    )
    with pytest.raises(InputError) as info:
        load_catalog(tmp_path, known_queues=["cards", "accounts"])
    problems = info.value.problems
    assert any("b.yml: intents: intent 'card_lost' is also defined in" in p for p in problems)
    assert any("b.yml: balance.queue: unknown queue 'acounts' (did you mean 'accounts'?)" in p for p in problems)
    assert any(
        "b.yml: balance.examples[0]: duplicate example 'Card gone!' (already under 'card_lost')" in p for p in problems
    )
    assert len(problems) == 3


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, "bad.yml", "version: 1\nintents: [unclosed\n")
    with pytest.raises(InputError, match="bad.yml:3:1: not valid YAML: expected"):  # file:line:col of the parser
        load_catalog(tmp_path)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no intent files"):
        load_catalog(tmp_path)
