#!/usr/bin/env bash
# Create or update .venv-bot: Rasa Open Source 3.6.21 + rasa-sdk 3.6.2 on CPython 3.11.
# Rasa declares Requires-Python <3.11, so its dependencies are installed from bot/requirements.lock (resolved
# for 3.11, see README "Bot environment") and rasa/rasa-sdk themselves with --no-deps --ignore-requires-python.
# The lock also holds the Rasa-era sentence-transformers set (RASA_NOTES) with torch's CPU build, for the bot's
# dense featurizer; everything is installed --no-deps, so torch's metadata wish for setuptools>=77 is not acted on
# (Rasa needs setuptools 70.3.0; torch does not use setuptools at run time).
# Idempotent: a stamp holding the lock's hash makes a second run return at once.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-bot
PYTHON=${PYTHON:-python3.11}
STAMP=$VENV/.installed
want="$(sha256sum bot/requirements.lock scripts/setup_bot_env.sh | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/rasa" ]; then
  exit 0
fi
echo "setting up the bot environment in $VENV (Rasa 3.6.21; a few minutes the first time)..."
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==24.3.1"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r bot/requirements.lock
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python \
  rasa==3.6.21 rasa-sdk==3.6.2
# Rasa breaks silently if these drift: check them explicitly.
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
expected = {"rasa": "3.6.21", "rasa-sdk": "3.6.2", "pydantic": "1.10.9", "setuptools": "70.3.0",
            "tensorflow": "2.12.0", "torch": "2.13.0+cpu", "sentence-transformers": "3.0.1"}
wrong = {k: version(k) for k, v in expected.items() if version(k) != v}
if wrong:
    raise SystemExit(f"bot environment has wrong versions: {wrong}; expected {expected}")
PY
echo "$want" > "$STAMP"
echo "bot environment ready: $VENV/bin/rasa"
