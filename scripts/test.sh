#!/usr/bin/env bash
# Set up and run the whole test suite: .venv, redis-server (for the worker tests), Neo4j's Cypher
# linter (npm, offline, for the Neo4j lint test). Extra arguments go to pytest.
# The Neo4j half of the suite runs on a Neo4j server the tests start themselves (Java 17 and Maven,
# installed here if missing; Neo4j itself comes from Maven Central into ~/.cache/circuit-atlas), or
# on NEO4J_URI (with NEO4J_USER / NEO4J_PASSWORD) if set: a throwaway server, the tests wipe it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v redis-server >/dev/null; then
    echo "[test] installing redis-server"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server >/dev/null
fi
if [ -z "${NEO4J_URI:-}" ]; then
    if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
        echo "[test] installing Java 17 and Maven (to run Neo4j)"
        if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
    fi
    .venv/bin/python -m circuit_atlas.store.neo4j_server resolve >/dev/null   # fetched once, says so
fi
if command -v npm >/dev/null && [ ! -d tools/cypher-lint/node_modules ] && [ -f tools/cypher-lint/package.json ]; then
    echo "[test] installing Neo4j's Cypher linter (npm)"
    npm ci --prefix tools/cypher-lint --silent --no-audit --no-fund
fi
echo "[test] import contracts (pyproject.toml [tool.importlinter])"
.venv/bin/python scripts/lint_imports.py
exec .venv/bin/python -m pytest -q -ra --durations=20 "$@"
