#!/usr/bin/env bash
# Create ./.venv with circuit-atlas and its dev tools. Idempotent: a second run only checks.
# Needs Python 3.11. torch is pinned to 2.13.0, the CPU build (see pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"circuit-atlas needs Python 3.11, found {sys.version.split()[0]}"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if ! .venv/bin/python -c 'import circuit_atlas, torch, real_ladybug, pytest' 2>/dev/null; then
    echo "[setup] installing circuit-atlas into .venv (first run: a few minutes)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
fi
echo "[setup] ready: .venv/bin/circuit-atlas"
