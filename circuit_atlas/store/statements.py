"""Every Cypher statement the store sends, by name. The same text runs on both backends.

Only the portable subset of Cypher is used (see docs/store.md): explicit property lists instead of
`SET n += map`, no CALL {} subqueries, no functions missing from the embedded engine. The registry
at the bottom also collects other areas' statements so one linter test can check them all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable


@dataclass(frozen=True)
class Statement:
    name: str
    cypher: str
    doc: str
    backends: tuple[str, ...] = ("embedded", "neo4j")   # where this text may be sent


_REGISTRY: dict[str, Statement] = {}
_PROVIDERS: list[Callable[[], Iterable[Statement]]] = []


def statement(name: str, doc: str, cypher: str, backends: tuple[str, ...] = ("embedded", "neo4j")) -> str:
    """Register a named statement and return its text (so modules keep using plain constants)."""
    _REGISTRY[name] = Statement(name, cypher.strip(), doc, backends)
    return cypher.strip()


def register_statements(provider: Callable[[], Iterable[Statement]]) -> None:
    """Let another area (queries, audit, ...) expose its statements to `all_statements()`."""
    _PROVIDERS.append(provider)


# Modules outside the store that define named statements with `statement(...)`.
STATEMENT_MODULES = ("circuit_atlas.audit.cypher",)


def all_statements() -> list[Statement]:
    """Every statement the project can send: the store's (schema included), the registered
    providers', and each `queries/**/*.cypher` file of the repository (one statement per file; a
    line `// backends: embedded` restricts a file to the listed backends, e.g. Kùzu-only syntax)."""
    import importlib

    from circuit_atlas.store import schema

    for module in STATEMENT_MODULES:     # they register their statements when imported
        importlib.import_module(module)
    out = list(_REGISTRY.values())
    out += [Statement(f"schema.neo4j.{i}", s, "schema (Neo4j)", ("neo4j",)) for i, s in enumerate(schema.neo4j_ddl())]
    out += [Statement(f"schema.embedded.{i}", s, "schema (embedded)", ("embedded",))
            for i, s in enumerate(schema.embedded_ddl())]
    for provider in _PROVIDERS:
        out += list(provider())
    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / "queries").rglob("*.cypher")):
        text = path.read_text()
        marker = re.search(r"^//\s*backends:\s*(.+)$", text, re.MULTILINE)
        backends = tuple(b.strip() for b in marker.group(1).split(",")) if marker else ("embedded", "neo4j")
        out.append(Statement(f"file:{path.relative_to(root)}", text, f"library query {path.name}", backends))
    return out


# --- graphs -----------------------------------------------------------------------------------

EXISTING_GRAPHS = statement("existing_graphs", "Which of the ids $ids are stored already.", """
UNWIND $ids AS id
MATCH (g:Graph {id: id})
RETURN g.id AS id
""")

INSERT_GRAPHS = statement("insert_graphs", "Create Graph nodes (callers check they are new).", """
UNWIND $rows AS r
CREATE (g:Graph {id: r.id, slug: r.slug, prompt: r.prompt, model: r.model, transcoder_set: r.transcoder_set,
                 n_layers: r.n_layers, n_nodes: r.n_nodes, n_edges: r.n_edges,
                 node_threshold: r.node_threshold, edge_threshold: r.edge_threshold,
                 created: r.created, prompt_tokens: r.prompt_tokens, meta: r.meta})
""")

LAST_UID = statement("last_uid", "The highest Node.uid in the store (no row when it is empty); new nodes are numbered after it.", """
MATCH (n:Node)
WHERE n.uid >= 0
RETURN n.uid AS uid
ORDER BY uid DESC
LIMIT 1
""")

INSERT_NODES = statement("insert_nodes", "Create node occurrences and link them to their graph (Neo4j bulk path).", """
UNWIND $rows AS r
MATCH (g:Graph {id: r.gid})
CREATE (g)-[:HAS_NODE]->(n:Node {uid: r.uid, gid: r.gid, node_id: r.node_id, kind: r.kind, layer: r.layer,
                                 pos: r.pos, feature: r.feature, fkey: r.fkey, token_id: r.token_id,
                                 token: r.token, activation: r.activation, influence: r.influence,
                                 logit_prob: r.logit_prob, label: r.label})
""")

MERGE_FEATURES = statement("merge_features", "Create global features not seen before (Neo4j bulk path).", """
UNWIND $rows AS r
MERGE (f:Feature {key: r.key})
ON CREATE SET f.transcoder_set = r.transcoder_set, f.layer = r.layer, f.feature = r.feature, f.label = r.label
""")

LINK_FEATURES = statement("link_features", "Link occurrences to their global feature (Neo4j bulk path).", """
UNWIND $rows AS r
MATCH (n:Node {uid: r.src})
MATCH (f:Feature {key: r.dst})
CREATE (n)-[:OF_FEATURE]->(f)
""")

INSERT_EFFECTS = statement("insert_effects", "Create EFFECT edges between occurrences, by uid (Neo4j bulk path).", """
UNWIND $rows AS r
MATCH (a:Node {uid: r.src})
MATCH (b:Node {uid: r.dst})
CREATE (a)-[:EFFECT {weight: r.weight}]->(b)
""")

MERGE_EFFECT_NAIVE = statement("merge_effect_naive", "One edge per statement: the baseline bench/ingest.py measures against.", """
MATCH (a:Node {uid: $src})
MATCH (b:Node {uid: $dst})
MERGE (a)-[e:EFFECT]->(b)
ON CREATE SET e.weight = $weight
""")

MERGE_TAGS = statement("merge_tags", "Create the tags $rows (unique ids) not seen before.", """
UNWIND $rows AS r
MERGE (t:Tag {id: r.id})
ON CREATE SET t.key = r.key, t.value = r.value
""")

LINK_TAGS = statement("link_tags", "Tag graphs; tags only accumulate (re-ingesting with new tags adds them).", """
UNWIND $rows AS r
MATCH (g:Graph {id: r.gid})
MATCH (t:Tag {id: r.id})
MERGE (g)-[:TAGGED]->(t)
""")
# Two statements, not one: on the embedded engine, MERGE of a node and a relationship to it in one
# UNWIND linked rows to the wrong Tag (a graph got "lang=en" twice instead of "set=s").

# --- reading a graph back ---------------------------------------------------------------------

GET_GRAPH = statement("get_graph", "A graph's own properties.", """
MATCH (g:Graph {id: $id})
RETURN g.slug AS slug, g.prompt AS prompt, g.model AS model, g.transcoder_set AS transcoder_set,
       g.n_layers AS n_layers, g.node_threshold AS node_threshold, g.edge_threshold AS edge_threshold,
       g.prompt_tokens AS prompt_tokens, g.meta AS meta
""")

GET_NODES = statement("get_nodes", "A graph's node occurrences.", """
MATCH (:Graph {id: $id})-[:HAS_NODE]->(n:Node)
RETURN n.node_id AS node_id, n.kind AS kind, n.layer AS layer, n.pos AS pos, n.feature AS feature,
       n.token_id AS token_id, n.token AS token, n.activation AS activation, n.influence AS influence,
       n.logit_prob AS logit_prob, n.label AS label
""")

GET_EDGES = statement("get_edges", "A graph's edges as (source node_id, target node_id, weight).", """
MATCH (:Graph {id: $id})-[:HAS_NODE]->(a:Node)-[e:EFFECT]->(b:Node)
RETURN a.node_id AS source, b.node_id AS target, e.weight AS weight
""")

GET_TAGS = statement("get_tags", "A graph's tags.", """
MATCH (:Graph {id: $id})-[:TAGGED]->(t:Tag)
RETURN t.key AS key, t.value AS value
""")

# --- integrity check (circuit_atlas.store.check) ----------------------------------------------

CHECK_NODE_COUNTS = statement("check.node_counts", "Each graph's recorded n_nodes / n_edges and its node count.", """
MATCH (g:Graph)
OPTIONAL MATCH (g)-[:HAS_NODE]->(n:Node)
RETURN g.id AS gid, g.n_nodes AS n_nodes, g.n_edges AS n_edges, count(n) AS nodes
ORDER BY gid
""")

CHECK_EDGE_COUNTS = statement("check.edge_counts", "Each graph's number of EFFECT edges (graphs without any: no row).", """
MATCH (g:Graph)-[:HAS_NODE]->(:Node)-[e:EFFECT]->(:Node)
RETURN g.id AS gid, count(e) AS edges
""")

CHECK_DANGLING_NODES = statement("check.dangling_nodes", "Nodes that do not belong to exactly one graph, by gid.", """
MATCH (n:Node)
OPTIONAL MATCH (g:Graph)-[:HAS_NODE]->(n)
WITH n, count(g) AS owners
WHERE owners <> 1
RETURN n.gid AS gid, count(n) AS n
""")

CHECK_WRONG_GID = statement("check.wrong_gid", "Nodes whose gid is not the id of the graph that holds them.", """
MATCH (g:Graph)-[:HAS_NODE]->(n:Node)
WHERE n.gid IS NULL OR n.gid <> g.id
RETURN g.id AS gid, count(n) AS n
""")

CHECK_CROSS_EDGES = statement("check.cross_edges", "EFFECT edges joining nodes held by two different graphs.", """
MATCH (g:Graph)-[:HAS_NODE]->(:Node)-[e:EFFECT]->(:Node)<-[:HAS_NODE]-(h:Graph)
WHERE g.id <> h.id
RETURN g.id AS gid, count(e) AS n
""")

CHECK_BAD_WEIGHTS = statement("check.bad_weights", "EFFECT edges whose weight is NaN, infinite or missing (NaN <> NaN).", """
MATCH (a:Node)-[e:EFFECT]->(:Node)
WHERE e.weight IS NULL OR e.weight <> e.weight OR abs(e.weight) > 3.4028235e38
RETURN a.gid AS gid, count(e) AS n
""")

CHECK_BAD_VALUES = statement("check.bad_values", "Nodes with a NaN or infinite activation, influence or logit probability.", """
MATCH (n:Node)
WHERE n.activation <> n.activation OR abs(n.activation) > 3.4028235e38
   OR n.influence <> n.influence OR abs(n.influence) > 3.4028235e38
   OR n.logit_prob <> n.logit_prob OR n.logit_prob < 0 OR n.logit_prob > 1
RETURN n.gid AS gid, count(n) AS n
""")

CHECK_FEATURE_LINKS = statement("check.feature_links", "Feature occurrences not linked to exactly one Feature with their key.", """
MATCH (n:Node)
WHERE n.fkey IS NOT NULL
OPTIONAL MATCH (n)-[:OF_FEATURE]->(f:Feature {key: n.fkey})
WITH n, count(f) AS links
WHERE links <> 1
RETURN n.gid AS gid, count(n) AS n
""")
