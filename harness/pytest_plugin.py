"""pytest integration: write the release gate as a test over a run, in the test runner teams already have.

    # test_release.py
    def test_release(harness_gate):
        harness_gate().assert_passed()          # fails listing every reason, in a release manager's words

    pytest test_release.py --harness-run runs/<run id> [--harness-gate-spec gate.yml]
                                                      [--harness-baseline experiments/baseline]

Fixtures: `harness_run` (the scored run, a `harness.scoring.scored_run.ScoredRun`: its KPIs, scorecard,
conversations and turn records) and `harness_gate` (a callable returning the gate's outcome, optionally for another
specification or baseline). Installed with the harness (entry point `pytest11`), so it is active wherever the
harness is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the plugin is also discovered by environments without the harness's dependencies
    from harness.gate.decision import GateResult
    from harness.scoring.scored_run import ScoredRun


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "bot quality harness")
    group.addoption(
        "--harness-run",
        type=Path,
        default=None,
        help="run folder to gate (default: $HARNESS_RUN, else the newest run in runs/)",
    )
    group.addoption(
        "--harness-gate-spec", type=Path, default=None, help="gate specification (default: harness.yml `gate`)"
    )
    group.addoption(
        "--harness-baseline",
        type=Path,
        default=None,
        help="baseline run folder (default: the specification's baseline)",
    )


@dataclass(frozen=True)
class GateOutcome:
    result: GateResult

    @property
    def passed(self) -> bool:
        return self.result.passed

    def assert_passed(self) -> None:
        """Fail the test with every failed check listed (no Python traceback: the reasons are the message)."""
        if not self.result.passed:
            lines = [f"release gate FAILED: {len(self.result.failures())} check(s) failed"]
            lines += [f"  - {c.message}" for c in self.result.failures()]
            pytest.fail("\n".join(lines), pytrace=False)


def _run_folder(config: pytest.Config) -> Path:
    import os

    from harness.project.config import load_config
    from harness.records.run_folder import RunFolder

    chosen = config.getoption("--harness-run") or (
        Path(os.environ["HARNESS_RUN"]) if os.environ.get("HARNESS_RUN") else None
    )
    return chosen.resolve() if chosen else RunFolder.latest(load_config().resolved().output_dir).path


@pytest.fixture
def harness_run(request: pytest.FixtureRequest) -> ScoredRun:
    """The run under test (`harness.scoring.scored_run.ScoredRun`), scored from its turn records: `.kpis`, `.scorecard`,
    `.core.conversations`, `.records`, `.value(name)`."""
    from harness.scoring.scored_run import ScoredRun

    return ScoredRun.load(_run_folder(request.config))


@pytest.fixture
def harness_gate(request: pytest.FixtureRequest, harness_run: ScoredRun) -> Callable[..., GateOutcome]:
    """Call it to run the gate: `harness_gate()` or `harness_gate(spec=Path(...), baseline=Path(...))`."""
    from harness.gate.baseline import baseline_for
    from harness.gate.decision import decide
    from harness.gate.spec import load_spec
    from harness.project.project import load_project

    def gate(spec: Path | None = None, baseline: Path | None = None) -> GateOutcome:
        spec_path = spec or request.config.getoption("--harness-gate-spec") or load_project().gate
        gate_spec = load_spec(spec_path)
        chosen = baseline or request.config.getoption("--harness-baseline")
        return GateOutcome(decide(gate_spec, harness_run, baseline_for(gate_spec, harness_run, override=chosen)))

    return gate
