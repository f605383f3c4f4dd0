#!/usr/bin/env bash
# Creates /work/main/.venv (ignored by git: see .gitignore) with pedalboard, numpy and soundfile,
# used by tests/hosts/pedalboard_host.py. Idempotent: does nothing when the venv already imports them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${HUMMINGFACE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
if [ -x "$PY" ] && "$PY" -c "import pedalboard, numpy, soundfile" >/dev/null 2>&1; then
    echo "venv ready: $VENV (pedalboard $("$PY" -c 'import pedalboard; print(pedalboard.__version__)'))"
    exit 0
fi
PYTHON="${PYTHON:-python3}"
if [ ! -x "$PY" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$PY" -m pip install --quiet --disable-pip-version-check pedalboard numpy soundfile
"$PY" -c "import pedalboard, numpy, soundfile; print('venv ready:', '$VENV', '(pedalboard', pedalboard.__version__ + ')')"
