"""Tests run in two environments: tests/bot in the bot environment (Rasa's pins), the rest in the harness
environment. `make test` runs both; each environment skips collecting the other's folders."""

import importlib.util

IN_BOT_ENVIRONMENT = importlib.util.find_spec("rasa_sdk") is not None
collect_ignore = ["harness", "integration"] if IN_BOT_ENVIRONMENT else ["bot"]
