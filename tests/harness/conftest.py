"""Every harness test starts with no project chosen: none named by `--project` (a CliRunner invocation sets it for
the process) or by $HARNESS_PROJECT, so the project is found from the working directory (this repository)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.project.paths import PROJECT_ENV, choose_project


@pytest.fixture(autouse=True)
def no_chosen_project(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    choose_project(None)
    yield
    choose_project(None)
