#!/usr/bin/env bash
# Create ./.venv with circuit-atlas and its dev tools. Idempotent: a second run only checks.
# Needs Python 3.11. torch is pinned to 2.13.0; where ../shared/wheels exists (the project's machines)
# its CPU build is taken from there instead of PyPI's CUDA build (several GB).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"circuit-atlas needs Python 3.11, found {sys.version.split()[0]}"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if ! .venv/bin/python -c 'import circuit_atlas.tracer, torch, kuzu, orjson, pytest, pandas, importlinter' 2>/dev/null; then
    echo "[setup] installing circuit-atlas into .venv (first run: a few minutes)"
    WHEELS=()
    [ -d ../shared/wheels ] && WHEELS=(--find-links ../shared/wheels)
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    # PYTHONWARNINGS: setuptools warns about every editable install with mapped folders (see pyproject.toml)
    PYTHONWARNINGS=ignore::UserWarning .venv/bin/python -m pip install -q --disable-pip-version-check "${WHEELS[@]}" -e '.[dev]'
fi
echo "[setup] ready: .venv/bin/circuit-atlas"
