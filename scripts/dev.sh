#!/usr/bin/env bash
# One entry point for a new machine: creates (or reuses) .venv, installs the
# pinned dev requirements and mrnn itself (editable), then runs what you ask.
#   bash scripts/dev.sh example   # the quickstart example
#   bash scripts/dev.sh test      # the test suite (extra args go to pytest)
#   bash scripts/dev.sh bench     # the speed benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MRNN_VENV:-.venv}
PY=${PYTHON:-python3}

setup() {
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  local stamp="$VENV/.mrnn-installed" want
  want=$(cat requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
    "$VENV/bin/python" -m pip install -q --no-deps -e .
    echo "$want" > "$stamp"
  fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup ;;
  example) setup; exec "$VENV/bin/python" examples/quickstart.py "$@" ;;
  test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  bench) setup; exec "$VENV/bin/python" benchmarks/run.py "$@" ;;
  *) echo "usage: bash scripts/dev.sh {setup|example|test|bench} [args]" >&2; exit 2 ;;
esac
