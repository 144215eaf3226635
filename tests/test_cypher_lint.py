"""Every Cypher statement the project can send to Neo4j passes Neo4j's own linter.

`tests.statements.all_statements()` gathers them from their packages: the store's schema and statements,
the audit's, and the library queries (queries/cypher/*.cypher). The linter is the npm package
@neo4j-cypher/language-support (offline); install it with `npm ci --prefix tools/cypher-lint`.
Undeclared parameters are the only diagnostic allowed (the linter knows no parameter values).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO
from tests.statements import all_statements

LINT = REPO / "tools/cypher-lint"
ALLOWED = re.compile(r"^Parameter \$\w+ is not defined\.$")


@pytest.fixture(scope="module")
def lint():
    if not (LINT / "node_modules/@neo4j-cypher/language-support").is_dir():
        pytest.skip("the Cypher linter is not installed: npm ci --prefix tools/cypher-lint")
    if not shutil.which("node"):
        pytest.skip("node is not installed (Node 20+ runs the Cypher linter)")

    def run(statements: list[dict]) -> dict[str, list[dict]]:
        out = subprocess.run(["node", str(LINT / "lint.mjs")], input=json.dumps(statements), capture_output=True,
                             text=True, timeout=300, check=True)
        return {r["name"]: r["diagnostics"] for r in json.loads(out.stdout)}
    return run


def test_every_neo4j_statement_lints_clean(lint):
    statements = [s for s in all_statements() if "neo4j" in s.backends]
    names = {s.name for s in statements}
    assert len(statements) >= 20          # schema + store statements at least
    assert "audit.create" in names and any(n.startswith("file:queries/") for n in names)
    results = lint([{"name": s.name, "cypher": s.cypher} for s in statements])
    problems = [f"{name}: line {d['line']} col {d['column']}: {d['message']}"
                for name, diags in results.items() for d in diags if not ALLOWED.match(d["message"])]
    assert not problems, "\n".join(problems)


def test_the_linter_catches_errors(lint):
    results = lint([{"name": "bad", "cypher": "MATCH (n:Node RETURN n"},
                    {"name": "kuzu-only", "cypher": "RETURN list_transform([1, 2], x -> x + 1)"},
                    {"name": "good", "cypher": "MATCH (n:Node {uid: $uid}) RETURN n.label"}])
    assert results["bad"] and results["kuzu-only"]
    assert [d["message"] for d in results["good"]] == ["Parameter $uid is not defined."]
