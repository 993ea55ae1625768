"""Every reader of a user's file refuses one that is not UTF-8 with the file, the line and how to fix it (an
InputError, exit 2), never a UnicodeDecodeError traceback; one shared reader (`problems.read_utf8`) does it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.bots.handoff_mapping import load_handoff_mapping
from harness.bots.rasa_domain import load_domain
from harness.errors import InputError
from harness.gate.spec import load_spec
from harness.project.bot_config import load_queue_config
from harness.project.config import load_config
from harness.project.eval_set import load_eval_sets
from harness.project.intents import load_catalog
from harness.review.config import load_review_config

LATIN_1 = "version: 1\n# caf\xe9 au lait\nname: x\n".encode("latin-1")


def in_folder(load: Callable[[Path], Any]) -> Callable[[Path], Any]:
    return lambda path: load(path.parent)


READERS: dict[str, Callable[[Path], Any]] = {
    "run configuration": load_config,
    "gate specification": load_spec,
    "review configuration": load_review_config,
    "handoff mapping": load_handoff_mapping,
    "rasa domain": load_domain,
    "escalation policy": load_queue_config,
    "intents": in_folder(load_catalog),
    "eval set": lambda path: load_eval_sets(path, intents=[], queues=[]),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_file_that_is_not_utf8_is_refused_with_its_line(reader: str, tmp_path: Path) -> None:
    path = tmp_path / "file.yml"
    path.write_bytes(LATIN_1)
    with pytest.raises(InputError) as raised:
        READERS[reader](path)
    assert f"{path}: line 2: byte 0xe9 is not UTF-8; re-save the file as UTF-8" in raised.value.problems
