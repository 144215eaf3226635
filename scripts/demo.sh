#!/usr/bin/env bash
# Set up and run the main job on the embedded store: trace an organism's multilingual prompts,
# store the graphs, and print what the query library finds across them. Extra arguments go to
# `circuit-atlas demo` (see `circuit-atlas demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/circuit-atlas demo "$@"
