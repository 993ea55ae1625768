"""The harness's exceptions, all in one tree. Each carries enough context for a message that says what, where and
how to fix; the CLI prints the message and exits with the error's `exit_code`.

```
HarnessError                      anything the harness reports to a user (exit 2)
├── InputError                    problems in the user's files, each as 'file: location: message'
├── UnknownName                   a name not in a registry (bot kind, metric), with did-you-mean
│   └── UnknownMetric
├── BotError                      the run cannot go on with this bot
│   ├── BotUnreachable            no connection, even after retries
│   ├── BotRefused                the bot refused the harness itself (token, URL)
│   └── BotModelChanged           a reply came from another model than the run measures
├── BotProcessError               training or serving the reference bot failed
├── TrackingError                 MLflow refused the run
├── ProbeLogError                 the probe log's database cannot be read or written
└── TrialError                    one pipeline of an NLU experiment failed
```

A failing bot is data, not an error: a turn that errors, times out or comes back empty is a record with that
status; only a bot that cannot be talked to at all raises a BotError.
"""

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


class UnknownName(HarnessError):
    """A name not registered in a registry (the message lists what is, and the closest match)."""


class UnknownMetric(UnknownName):
    """A metric name that is not registered."""


class BotError(HarnessError):
    """The run cannot go on with this bot (as opposed to a failed turn, which is recorded)."""


class BotUnreachable(BotError):
    """The bot did not accept connections, even after retries."""


class BotRefused(BotError):
    """The bot refused the harness itself (wrong token, wrong URL): no point sending more."""


class BotModelChanged(BotError):
    """A reply came from another bot model than the one the run measures; the run cannot go on."""


class BotProcessError(HarnessError):
    """Training or starting the reference bot failed; the message says which step and where its log is."""


class TrackingError(HarnessError):
    """MLflow could not record the run (the message says why and how to fix it)."""


class TrialError(HarnessError):
    """One pipeline of an NLU experiment failed (the message names it and where its log is)."""


class ProbeLogError(HarnessError):
    """The probe log's database cannot be opened, read or written (the message names it and how to fix it)."""
