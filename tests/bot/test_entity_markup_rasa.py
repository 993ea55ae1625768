"""Rasa's own reader on the shared table of entity annotations (tests/data/entity_annotations.json), which
tests/harness/test_entity_markup.py checks against the harness's copy of the grammar
(harness/project/entity_markup.py): both agree with the table, so they agree with each other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rasa.shared.nlu.training_data.entities_parser import find_entities_in_training_example, replace_entities
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

TABLE = json.loads((Path(__file__).parents[1] / "data" / "entity_annotations.json").read_text(encoding="utf-8"))
READ = [c for c in TABLE["cases"] if not c.get("error")]
REFUSED = [c for c in TABLE["cases"] if c.get("error")]


@pytest.mark.parametrize("case", READ, ids=[c["name"] for c in READ])
def test_rasa_reads_each_annotation_as_the_table_says(case: dict) -> None:  # type: ignore[type-arg]
    assert find_entities_in_training_example(case["example"]) == case["entities"]
    assert replace_entities(case["example"]) == case["text"]


@pytest.mark.parametrize("case", REFUSED, ids=[c["name"] for c in REFUSED])
def test_rasa_refuses_what_the_table_marks_as_refused(case: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(Exception):  # noqa: B017 (InvalidEntityFormatException or SchemaValidationError)
        find_entities_in_training_example(case["example"])


def test_rasa_reads_the_table_the_same_way_from_an_nlu_file() -> None:
    """The training-data reader (as `rasa train` reads the generated nlu.yml, examples in a literal block, written
    verbatim) gives the same text and entities."""
    examples = "".join(f"    - {c['example']}\n" for c in READ)
    data = RasaYAMLReader().reads(f'version: "3.1"\nnlu:\n- intent: x\n  examples: |\n{examples}')
    assert [m.get("text") for m in data.training_examples] == [c["text"] for c in READ]
    assert [m.get("entities", []) for m in data.training_examples] == [c["entities"] for c in READ]
