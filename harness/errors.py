"""The harness's exceptions. Each carries enough context for a message that says what, where and how to fix."""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


class HarnessError(Exception):
    """Base of every error the harness reports to a user."""

    exit_code = EXIT_BAD_INPUT


class InputError(HarnessError):
    """One or more problems in the user's files; `problems` lists each as 'file: location: message'."""

    def __init__(self, summary: str, problems: list[str]) -> None:
        self.summary = summary
        self.problems = problems
        super().__init__(summary + "\n" + "\n".join(f"  {p}" for p in problems))
