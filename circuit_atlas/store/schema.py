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
    "features": "STRING",         # the graph's contribution to each Feature aggregate (aggregates.py)
    "n_paths": "INT64",           # its strong paths stored as Path nodes; -1: too many, none stored
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
    # Cross-graph aggregates over every stored graph, kept exact by each write in the same transaction
    # (circuit_atlas/store/aggregates.py): the sum over graphs of each graph's contribution (Graph.features).
    "n_graphs": "INT64",          # graphs it occurs in
    "n_occurrences": "INT64",     # occurrences (positions) over all graphs
    "act_sum": "DOUBLE", "act_n": "INT64",       # sum / count of its non-null activations
    "position_sum": "DOUBLE",     # sum over graphs of occurrences / prompt positions
    "on_bos": "INT64",            # graphs where it sits on position 0
    "importance": "DOUBLE",       # sum of 1 - influence over occurrences with an influence
    "infl_graphs": "INT64",       # graphs where some occurrence has an influence
    "best_influence": "DOUBLE",   # smallest influence of any occurrence (null: none)
    "abs_weight": "DOUBLE",       # sum of |weight| over edges into or out of its occurrences
    "n_edges": "INT64",           # those edges (an edge between two occurrences counts for each)
    "edge_graphs": "INT64",       # graphs where an occurrence has an edge
}, indexed=("layer",)))
TAG = add_label(Label("Tag", "id", {"id": "STRING", "key": "STRING", "value": "STRING"}, indexed=("key",)))

# Strong paths (common-paths): every embedding -> feature(s) -> logit path of 2-4 edges whose edges all
# have |weight| >= aggregates.PATH_MIN_WEIGHT, one row per path occurrence, written with its graph.
PATH = add_label(Label("Path", "id", {
    "id": "STRING",               # "<graph id>/<n>"
    "gid": "STRING", "hops": "INT64",
    "start_token": "STRING", "f1": "STRING", "f2": "STRING", "f3": "STRING",   # f2/f3 null when shorter
    "end_token": "STRING",
    "signs": "STRING",            # "+" or "-" per edge
    "strength": "DOUBLE",         # product of the signed weights
    "bottleneck": "DOUBLE",       # smallest |weight| on the path
}, indexed=("gid", "hops")))

HAS_NODE = add_rel(Rel("HAS_NODE", "Graph", "Node"))
# OF_FEATURE carries copies of its occurrence's graph id, activation and influence (never changed after
# ingest): a feature's occurrences are then read from its own adjacency list, in sequence, instead of one
# random read per occurrence across the Node table (feature-profile, feature-graphs: 120,000 occurrences
# of a feature in all of 10,000 graphs took seconds; docs/queries.md, "Speed").
OF_FEATURE = add_rel(Rel("OF_FEATURE", "Node", "Feature", {"gid": "STRING", "activation": "DOUBLE", "influence": "DOUBLE"}))
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
# Interventions (tracer/interventions.py, queries/interventions.py): causal evidence, one node per run.
INTERVENTION = add_label(Label("Intervention", "id", {
    "id": "STRING",               # content hash of model, transcoders, prompt, interventions, settings
    "created": "STRING",          # ISO-8601 UTC
    "prompt": "STRING", "model": "STRING", "transcoder_set": "STRING",
    "kind": "STRING",             # ablate | set | scale | add | steer (several ops)
    "value": "DOUBLE",            # the op's argument when there is one op (ablate: 0), else null
    "description": "STRING",      # what was done, e.g. "ablate supernode tag/country=zot; 2/117@all×6"
    "freeze_attention": "BOOL",
    "constrained_layers": "STRING",   # "0,1,2" or "" (none)
    "target_token": "STRING",     # the measured token (the first target)
    "logit_before": "DOUBLE", "logit_after": "DOUBLE", "logit_change": "DOUBLE",
    "prob_before": "DOUBLE", "prob_after": "DOUBLE", "prob_change": "DOUBLE",
    "top_before": "STRING", "top_after": "STRING", "top_changed": "BOOL",
    "effects": "STRING",          # JSON: every target's change, the top tokens, the continuations
    "job": "STRING",              # the workers job that ran it, "" when run directly
}, indexed=("prompt", "model")))
INTERVENED_ON = add_rel(Rel("INTERVENED_ON", "Intervention", "Feature", {"op": "STRING", "value": "DOUBLE"}))
ON_SUPERNODE = add_rel(Rel("ON_SUPERNODE", "Intervention", "Supernode", {"role": "STRING"}))  # suppress | inject | ...
ON_GRAPH = add_rel(Rel("ON_GRAPH", "Intervention", "Graph"))  # the stored graph of the same prompt


# Per (feature, direction, neighbour) aggregates over every stored graph (aggregates.neighbour_contributions),
# kept exact by each write like the Feature ones: what feature-upstream / -downstream read. Integer keys
# (a string key per row made them cost 4x the edges to write and store): each neighbour identity is
# numbered once, store-wide, at its first ingest (like Node.uid: the embedded writer numbers them, Neo4j
# writers reserve numbers from a counter node), and a row's id packs the numbers of its feature and its
# neighbour with the direction (aggregates.neighbour_id).
NEIGHBOUR_END = add_label(Label("NeighbourEnd", "id", {   # keyed by number: the queries look up a few by id
    "key": "STRING",              # the identity: "=kind\x1f=layer\x1f=fkey\x1f=token" (aggregates.identity)
    "id": "INT64",                # its store-wide number; a feature's number is that of its own identity
    "kind": "STRING", "layer": "INT64", "fkey": "STRING", "token": "STRING",   # Node columns
}))                               # `key` unique too (Neo4j: statements.NEIGHBOUR_END_KEY_UNIQUE; embedded: one writer)
NEIGHBOUR = add_label(Label("Neighbour", "id", {
    "id": "INT64",                # aggregates.neighbour_id(feature's NeighbourEnd.id, dir, end)
    "dir": "INT64",               # 0 "up": edges into the feature's occurrences; 1 "down": edges out of them
    "end_id": "INT64",            # NeighbourEnd.id of the other end
    "weight": "DOUBLE",           # sum of the edges' weights
    "abs_weight": "DOUBLE",       # sum of their |weight|
    "n_edges": "INT64",           # how many edges
    "n_graphs": "INT64",          # graphs that have one
}))
# One link type per direction, so feature-upstream reads only the rows of edges into the feature and
# feature-downstream only those out of it (a hub feature has 61k of one and 170k of the other).
HAS_UPSTREAM = add_rel(Rel("HAS_UPSTREAM", "Feature", "Neighbour"))       # its rows with dir 0
HAS_DOWNSTREAM = add_rel(Rel("HAS_DOWNSTREAM", "Feature", "Neighbour"))   # its rows with dir 1
NEIGHBOUR_LINKS = (HAS_UPSTREAM, HAS_DOWNSTREAM)                          # by Neighbour.dir


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
