"""A small project (intents/, the bot's escalation policy, optionally one eval set) in a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.project.paths import ProjectPaths

INTENTS = """version: 1
intents:
  - name: card_lost
    description: Lost card.
    queue: cards
    kind: self_service
    examples: [I lost my card, my card is gone, cannot find my card anywhere]
  - name: card_missing
    description: Card missing.
    queue: cards
    kind: self_service
    examples: [I have lost my card, new card never came]
  - name: fees
    description: Fees.
    queue: accounts
    kind: self_service
    examples: [what do you charge for an overdraft, monthly account fee, fees abroad]
"""


def project(tmp_path: Path, eval_text: str | None = None) -> Path:
    (tmp_path / "intents").mkdir()
    (tmp_path / "intents" / "cards.yml").write_text(INTENTS)
    (tmp_path / "bot").mkdir()
    shutil.copy(ProjectPaths().escalation_policy, tmp_path / "bot" / "escalation.yml")
    (tmp_path / "eval_sets").mkdir()
    if eval_text:
        (tmp_path / "eval_sets" / "e.yml").write_text(
            "version: 1\nname: e\nconversations:\n  - id: e-1\n    turns:\n"
            f"      - {{text: {eval_text!r}, intent: fees}}\n    expected: {{outcome: self_served}}\n"
            "    resolvable: true\n"
        )
    return tmp_path
