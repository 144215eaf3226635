"""The graph store's schema, declared once and spelled as DDL for each backend.

Labels and relationship types are declared here as typed property lists. The embedded engine needs
typed tables with a primary key; Neo4j needs uniqueness constraints and indexes. Both are generated
from the same declaration, so the two backends can never disagree on a name or a key. Every label the
project writes is declared here, so a store opened by any command has all of them.

Property types are the embedded engine's (Kùzu): STRING, INT64, DOUBLE, FLOAT, BOOL, STRING[].
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Label:
    name: str
    key: str                                   # primary key / uniqueness constraint
    properties: dict[str, str]                 # name -> type, key first; the COPY column order
    indexed: tuple[str, ...] = ()              # extra Neo4j indexes (the embedded engine indexes only the key)


@dataclass(frozen=True)
class Rel:
    name: str
    source: str
    target: str
    properties: dict[str, str] = field(default_factory=dict)


LABELS: dict[str, Label] = {}
RELS: dict[str, Rel] = {}


def add_label(label: Label) -> Label:
    LABELS[label.name] = label
    return label


def add_rel(rel: Rel) -> Rel:
    RELS[rel.name] = rel
    return rel


GRAPH = add_label(Label("Graph", "id", {
    "id": "STRING",               # content hash, circuit_atlas.graph.Graph.id
    "slug": "STRING", "prompt": "STRING", "model": "STRING", "transcoder_set": "STRING",
    "n_layers": "INT64", "n_nodes": "INT64", "n_edges": "INT64",
    "node_threshold": "DOUBLE", "edge_threshold": "DOUBLE",
    "created": "STRING",          # ISO-8601 UTC time of ingest (portable: no datetime type on both)
    "prompt_tokens": "STRING[]",  # part of the graph id, so get_graph round-trips exactly
    "meta": "STRING",             # JSON {generator, extra, scores}: file metadata for faithful export
}))
NODE = add_label(Label("Node", "uid", {
    "uid": "INT64",               # store-wide number given at ingest (a compact key); (gid, node_id) names it
    "gid": "STRING", "node_id": "STRING", "kind": "STRING",
    "layer": "INT64", "pos": "INT64", "feature": "INT64",
    "fkey": "STRING",             # global feature key, null for non-features
    "token_id": "INT64", "token": "STRING",
    "activation": "DOUBLE", "influence": "DOUBLE", "logit_prob": "DOUBLE", "label": "STRING",
}, indexed=("gid", "fkey")))
FEATURE = add_label(Label("Feature", "key", {
    "key": "STRING", "transcoder_set": "STRING", "layer": "INT64", "feature": "INT64", "label": "STRING",
}, indexed=("layer",)))
TAG = add_label(Label("Tag", "id", {"id": "STRING", "key": "STRING", "value": "STRING"}, indexed=("key",)))

HAS_NODE = add_rel(Rel("HAS_NODE", "Graph", "Node"))
OF_FEATURE = add_rel(Rel("OF_FEATURE", "Node", "Feature"))
EFFECT = add_rel(Rel("EFFECT", "Node", "Node", {"weight": "FLOAT"}))
TAGGED = add_rel(Rel("TAGGED", "Graph", "Tag"))

# Supernodes (queries/supernodes.py): features that play the same role across graphs.
SUPERNODE = add_label(Label("Supernode", "id", {
    "id": "STRING",               # "auto/<hash of members>" or "np/<graph id>/<index>"
    "name": "STRING", "source": "STRING",   # source: "proposed" | "neuronpedia"
    "gid": "STRING",              # the graph of a manual supernode; "" for proposals
    "node_ids": "STRING",         # space-separated member node ids of a manual supernode
    "coherence": "DOUBLE", "n_graphs": "INT64", "influence": "DOUBLE", "n_members": "INT64",
}, indexed=("source",)))
HAS_MEMBER = add_rel(Rel("HAS_MEMBER", "Supernode", "Feature"))

# Audits (audit/): which features an audit flagged, and the graphs it analysed.
AUDIT = add_label(Label("Audit", "id", {
    "id": "STRING",               # "<UTC yyyymmdd-hhmmss>-<6 hex>"
    "created": "STRING",          # ISO-8601 UTC
    "model": "STRING", "transcoder_set": "STRING",
    "target_tokens": "STRING",    # " | "-joined target tokens ("" when none was given or inferred)
    "n_suspect": "INT64", "n_control": "INT64", "n_generic": "INT64",
    "report": "STRING",           # the audit's directory (audit.json, report.html, ...)
}, indexed=("created",)))
FLAGGED = add_rel(Rel("FLAGGED", "Audit", "Feature", {
    "rank": "INT64",              # position in the fused ranking, 1 = first
    "score": "DOUBLE",            # reciprocal-rank fusion score
    "analysis": "STRING",         # the analyses that support it, e.g. "enrichment+drivers"
}))
AUDITED = add_rel(Rel("AUDITED", "Audit", "Graph", {"set": "STRING"}))

# Feature labels (queries/labels.py): every label of a feature with its source; Feature.label holds the
# one shown (a user's label over a graph file's clerp over the automatic one).
FEATURE_LABEL = add_label(Label("FeatureLabel", "id", {
    "id": "STRING",               # "<feature key>|<source>": one label per feature and source
    "fkey": "STRING",
    "source": "STRING",           # "auto", or where a user's label came from: "neuronpedia:<file>", "csv:<file>"
    "text": "STRING",             # the label
    "inputs": "STRING",           # auto: prompt tokens it sits on most, with counts ('"Dallas" x3, ...')
    "logits": "STRING",           # auto: logit tokens its direct edges drive most, signed summed weight
    "promotes": "STRING",         # auto: tokens its decoder promotes through the unembedding ("" without a model)
    "created": "STRING",          # ISO-8601 UTC
}, indexed=("fkey", "source")))
HAS_LABEL = add_rel(Rel("HAS_LABEL", "Feature", "FeatureLabel"))


def embedded_ddl() -> list[str]:
    """CREATE NODE/REL TABLE IF NOT EXISTS statements: idempotent, run at every read-write open."""
    out = []
    for lab in LABELS.values():
        cols = ", ".join(f"{name} {typ}" for name, typ in lab.properties.items())
        out.append(f"CREATE NODE TABLE IF NOT EXISTS {lab.name}({cols}, PRIMARY KEY({lab.key}))")
    for rel in RELS.values():
        cols = "".join(f", {name} {typ}" for name, typ in rel.properties.items())
        out.append(f"CREATE REL TABLE IF NOT EXISTS {rel.name}(FROM {rel.source} TO {rel.target}{cols})")
    return out


def neo4j_ddl() -> list[str]:
    """Uniqueness constraints on every key plus the declared indexes, all IF NOT EXISTS."""
    out = []
    for lab in LABELS.values():
        low = lab.name.lower()
        out.append(f"CREATE CONSTRAINT {low}_{lab.key} IF NOT EXISTS FOR (x:{lab.name}) REQUIRE x.{lab.key} IS UNIQUE")
        out += [f"CREATE INDEX {low}_{prop} IF NOT EXISTS FOR (x:{lab.name}) ON (x.{prop})" for prop in lab.indexed]
    return out
