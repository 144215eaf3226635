#!/usr/bin/env bash
# A Neo4j 5.26 Community server on 127.0.0.1 without Docker (Java 17 and Maven needed; the first start
# fetches Neo4j from Maven Central into ~/.cache/circuit-atlas). Examples:
#   export NEO4J_PASSWORD=changeme123
#   scripts/neo4j.sh start --port 7687        # data, config and logs in ./.neo4j (--dir to choose)
#   scripts/neo4j.sh status
#   scripts/neo4j.sh stop
# See circuit_atlas/store/neo4j_server.py and README "Running on Neo4j".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=${PYTHON:-python3}
exec "$PY" -m circuit_atlas.store.neo4j_server "$@"
