"""Neo4j driver values as plain Python, shared by the store (neo4j.py) and its query process
(query_process.py) without either importing the other."""
from __future__ import annotations


def plain(value):
    """Driver values -> JSON-friendly Python (nodes and relationships become property dicts)."""
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        return {"_label": ":".join(sorted(value.labels)), **dict(value)}
    if isinstance(value, Relationship):
        return {"_label": value.type, **dict(value)}
    if isinstance(value, Path):
        return {"nodes": [plain(n) for n in value.nodes], "rels": [plain(r) for r in value.relationships]}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
