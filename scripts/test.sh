#!/usr/bin/env bash
# Set up and run the whole test suite: .venv, redis-server (for the worker tests), Neo4j's Cypher
# linter (npm, offline, for the Neo4j lint test). Extra arguments go to pytest.
# Set NEO4J_URI (and NEO4J_USER / NEO4J_PASSWORD) to run the Neo4j half of the suite too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v redis-server >/dev/null; then
    echo "[test] installing redis-server"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server >/dev/null
fi
if command -v npm >/dev/null && [ ! -d tools/cypher-lint/node_modules ] && [ -f tools/cypher-lint/package.json ]; then
    echo "[test] installing Neo4j's Cypher linter (npm)"
    (cd tools/cypher-lint && npm ci --silent --no-audit --no-fund 2>/dev/null || npm install --silent --no-audit --no-fund)
fi
exec .venv/bin/python -m pytest -q -ra "$@"
