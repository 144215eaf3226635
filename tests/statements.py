"""Every Cypher statement the project can send, gathered from the packages that own them (the store
knows none of its callers): the store's own and its schema's, the audit's (audit.cypher.STATEMENTS),
and the query library's files (queries/cypher/*.cypher, one statement per file; a line
`// backends: embedded` restricts a file to the listed backends, e.g. Kùzu-only syntax).
For the Neo4j linter (test_cypher_lint) and the registry checks.
"""
from __future__ import annotations

import re

from circuit_atlas.store.statements import Statement
from tests.conftest import REPO


def all_statements() -> list[Statement]:
    from circuit_atlas import store
    from circuit_atlas.audit import cypher as audit_cypher
    from circuit_atlas.queries.registry import CYPHER_DIR

    out = store.all_statements() + list(audit_cypher.STATEMENTS.values())
    for path in sorted(CYPHER_DIR.rglob("*.cypher")):
        text = path.read_text()
        marker = re.search(r"^//\s*backends:\s*(.+)$", text, re.MULTILINE)
        backends = tuple(b.strip() for b in marker.group(1).split(",")) if marker else ("embedded", "neo4j")
        out.append(Statement(f"file:{path.relative_to(REPO)}", text, f"library query {path.name}", backends))
    return out
