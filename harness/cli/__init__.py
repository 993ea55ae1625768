"""The `harness` command: thin commands by group (cli/run.py, evalsets.py, intents.py, bot.py, trainer.py,
gate.py, review.py), sharing cli/common.py. Each command is a short list of stage calls."""

from __future__ import annotations

from harness import __version__
from harness.cli import (  # noqa: F401 (registers the commands)
    bot,
    evalsets,
    gate,
    init,
    intents,
    logs_compare,
    logs_import,
    logs_kpis,
    logs_transfers,
    probe,
    review,
    run,
    trainer,
)
from harness.cli.common import app, err, out
from harness.errors import EXIT_BAD_INPUT

__all__ = ["app", "main"]


@app.command()
def version() -> None:
    """Print the harness version."""
    out.print(__version__)


def main() -> None:
    import signal
    import warnings

    from harness.scoring.metrics import UndefinedMetricWarning

    # An undefined KPI is data: the scorecard and the gate print it with its reason; no Python warning on top.
    warnings.filterwarnings("ignore", category=UndefinedMetricWarning)

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # `make` and CI stop jobs with SIGTERM: treat it like Ctrl-C so started bot processes are stopped. SIGINT gets
    # Python's handler back even when a parent shell started us with it ignored (background jobs).
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)  # a closed terminal or SSH session: stop what we started, cleanly
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(EXIT_BAD_INPUT) from None
