"""The bot's view of `intents/`: each intent's owning queue and kind, from the generated intent_catalog.yml."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

CATALOG_PATH = Path(__file__).resolve().parent.parent / "intent_catalog.yml"


@dataclass(frozen=True)
class IntentInfo:
    queue: str
    kind: str
    description: str


@lru_cache(maxsize=4)
def load_catalog(path: Path = CATALOG_PATH) -> dict[str, IntentInfo]:
    """Intent name -> IntentInfo. Run `harness intents build` if the file is missing."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `harness intents build` to generate it from intents/")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {name: IntentInfo(**info) for name, info in raw["intents"].items()}
