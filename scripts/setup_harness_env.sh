#!/usr/bin/env bash
# Create or update .venv: the harness environment (current pandas, scikit-learn, sentence-transformers, MLflow,
# pytest) from requirements.lock, plus the harness itself in editable mode. torch is pinned to the CPU build
# (2.13.0+cpu) so nothing pulls CUDA packages. Idempotent: a stamp makes a second run return at once.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
PYTHON=${PYTHON:-python3.11}
STAMP=$VENV/.installed
want="$(sha256sum requirements.lock pyproject.toml scripts/setup_harness_env.sh | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/harness" ]; then
  exit 0
fi
echo "setting up the harness environment in $VENV (a few minutes the first time)..."
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==24.3.1"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
"$VENV/bin/python" -m pip check
echo "$want" > "$STAMP"
echo "harness environment ready: $VENV/bin/harness"
