"""experiments/review.yml is validated strictly: each mistake is an InputError naming the file and where."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.errors import InputError
from harness.review.config import load_review_config

DEFAULT_REVIEW_CONFIG = Path(__file__).parents[2] / "experiments" / "review.yml"


def config_with(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    document = yaml.safe_load(DEFAULT_REVIEW_CONFIG.read_text(encoding="utf-8"))
    change(document)
    path = tmp_path / "review.yml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_the_committed_configuration_loads() -> None:
    config = load_review_config()
    assert config.flags.repetition.meaning == 0.5 and config.sample.rate == 0.1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["flags"].update(repetiton={"priority": 2}),
            "flags.repetiton: unknown key 'repetiton' (did you mean 'repetition'?)",
        ),
        (lambda d: d["flags"]["repetition"].update(meaning=1.5), "flags.repetition.meaning: Input should be less"),
        (lambda d: d["flags"]["low_confidence"].update(below=0), "flags.low_confidence.below: Input should be great"),
        (lambda d: d["sample"].update(rate=2), "sample.rate: Input should be less than or equal to 1"),
        (
            lambda d: d["scorecard"]["attributes"].append(dict(d["scorecard"]["attributes"][0])),
            "attribute names must be unique: understood",
        ),
        (lambda d: d["scorecard"].update(resolution_attribute="fixed"), "resolution_attribute 'fixed' is not one"),
    ],
)
def test_a_mistake_names_the_file_and_the_place(tmp_path: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    path = config_with(tmp_path, change)
    with pytest.raises(InputError, match="invalid review configuration") as refused:
        load_review_config(path)
    assert f"{path}: " in str(refused.value) and expected in str(refused.value)


def test_meaning_null_switches_the_model_off(tmp_path: Path) -> None:
    path = config_with(tmp_path, lambda d: d["flags"]["repetition"].update(meaning=None))
    assert load_review_config(path).flags.repetition.meaning is None
