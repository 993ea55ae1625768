"""Entity markup read with Rasa's grammar: the shared table of cases (also checked against Rasa itself in
tests/bot/test_entity_markup_rasa.py), and what `intents validate` and `intents import` say about annotations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from intent_project import project
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import InputError
from harness.project import entity_markup
from harness.project.entity_markup import MarkupError, find_entities, read_declared
from harness.project.intents import load_catalog, normalise, plain_text
from harness.trainer.intent_import import Candidate, plan_import

TABLE = json.loads((Path(__file__).parents[1] / "data" / "entity_annotations.json").read_text(encoding="utf-8"))
READ = [c for c in TABLE["cases"] if not c.get("error")]
REFUSED = [c for c in TABLE["cases"] if c.get("error")]
QUEUES = ["accounts", "cards", "fraud", "general"]
DOMAIN = "version: '3.1'\nentities:\n  - card_type\n  - city:\n      roles: [from, to]\n"


@pytest.mark.parametrize("case", READ, ids=[c["name"] for c in READ])
def test_the_harness_reads_each_annotation_as_rasa_does(case: dict) -> None:  # type: ignore[type-arg]
    assert [e.as_rasa() for e in find_entities(case["example"])] == case["entities"]
    assert entity_markup.plain_text(case["example"]) == case["text"]
    assert plain_text(case["example"]) == case["text"]  # the catalog's plain text is Rasa's


@pytest.mark.parametrize("case", REFUSED, ids=[c["name"] for c in REFUSED])
def test_the_harness_refuses_what_rasa_refuses(case: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(MarkupError):
        find_entities(case["example"])


def test_dict_and_list_form_entities_are_declared_by_the_catalog(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(
        "version: 1\nintents:\n  - name: travel\n    description: Travel.\n    queue: general\n"
        "    kind: self_service\n    examples:\n"
        '      - \'fly to [LA]{"entity": "city", "role": "to"}\'\n'
        '      - \'from [NYC][{"entity": "city"}, {"entity": "airport"}]\'\n'
        "      - with my [visa](card_type:credit)\n"
    )
    catalog = load_catalog(tmp_path)
    assert catalog.entities() == ["airport", "card_type", "city"]
    assert normalise(catalog.intents["travel"].examples[1]) == "from nyc"


def test_an_annotation_rasa_refuses_is_an_error_when_loading_intents(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(
        "version: 1\nintents:\n  - name: travel\n    description: Travel.\n    queue: general\n"
        "    kind: self_service\n    examples:\n      - \"fly to [LA]{'entity': 'city'}\"\n"
    )
    with pytest.raises(InputError) as caught:
        load_catalog(tmp_path)
    assert (
        "travel.examples[0]: Rasa cannot read the entity annotation {'entity': 'city'} is not valid JSON"
        in (caught.value.problems[0])
    )


def test_the_domain_declarations_skip_the_generated_file(tmp_path: Path) -> None:
    (tmp_path / "slots.yml").write_text(DOMAIN)
    (tmp_path / "intents.yml").write_text("entities: [typo_entity]\n")
    (tmp_path / "responses.yml").write_text("responses: {utter_x: [{text: hi}]}\n")
    declared = read_declared(tmp_path, generated=[tmp_path / "intents.yml"])
    assert declared is not None
    assert declared.entities == {"card_type", "city"}
    assert declared.roles == {"city": {"from", "to"}}
    assert read_declared(tmp_path / "responses.yml") is None


def annotated_project(tmp_path: Path, examples: list[str]) -> Path:
    root = project(tmp_path)
    (root / "bot" / "domain").mkdir()
    (root / "bot" / "domain" / "slots.yml").write_text(DOMAIN)
    cards = root / "intents" / "cards.yml"
    quoted = "".join(", " + json.dumps(e) for e in examples)
    cards.write_text(cards.read_text().replace("fees abroad]", f"fees abroad{quoted}]"))
    return root


def test_validate_reports_quoted_names_and_entities_the_domain_does_not_declare(tmp_path: Path) -> None:
    root = annotated_project(
        tmp_path,
        [
            'fee for my [Visa]("card_type")',
            "fee for my [gold](card_tpye) card",
            'fee to [Rome]{"entity": "city", "role": "via"}',
            "fee for [x]() stays",
        ],
    )
    result = CliRunner().invoke(
        app, ["intents", "validate", "--root", str(root), "--no-embeddings", "--min-examples", "1"]
    )
    assert result.exit_code == 2, result.output
    assert "cards.yml: fees.examples[3]: entity '\"card_type\"' on 'Visa': Rasa keeps the quotes" in result.stderr
    assert "write it without them: [Visa](card_type)" in result.stderr
    out = result.stdout
    assert "fees.examples[4]: unknown entity 'card_tpye' (did you mean 'card_type'?)" in out
    assert "role 'via' of entity 'city' on 'Rome': not declared in the bot's domain" in out
    assert "fees.examples[6]: '[x](' looks like entity markup: Rasa does not read it" in out


def test_the_import_skips_annotations_rasa_misreads_and_warns_of_undeclared_entities(tmp_path: Path) -> None:
    root = annotated_project(tmp_path, [])
    catalog = load_catalog(root / "intents")
    declared = read_declared(root / "bot" / "domain")
    rows = [
        Candidate('block my [Visa]("card_type")', "card_lost", None, "x.csv:2"),
        Candidate("block my [Visa]{'entity': 'card_type'}", "card_lost", None, "x.csv:3"),
        Candidate("block my [gold](tier) card", "card_lost", None, "x.csv:4"),
        Candidate("block the [gold](tier) one", "card_lost", None, "x.csv:5"),
        Candidate("block my [debit](card_type) card", "card_lost", None, "x.csv:6"),
    ]
    plan = plan_import(Path("x.csv"), rows, catalog, queues=QUEUES, eval_turns={}, declared=declared)
    reasons = {s.candidate.origin: s.reason for s in plan.skipped}
    assert "Rasa keeps the quotes" in reasons["x.csv:2"]
    assert "is not valid JSON (JSON needs double quotes)" in reasons["x.csv:3"]
    assert [c.origin for c in plan.to_existing] == ["x.csv:4", "x.csv:5", "x.csv:6"]
    assert any(
        w.startswith("unknown entity 'tier'") and "2 added example(s) (first: x.csv:4)" in w for w in plan.warnings
    )
